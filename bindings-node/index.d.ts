// Type definitions for vendorgate (Node). Hand-written; checked by `tsc` against
// test/types-check.ts in CI (run-tests.sh).

/// <reference types="node" />

/** A USD amount going in: a number (read through its shortest decimal form) or a decimal string. At most 6 decimals. */
export type UsdInput = number | string | bigint
/** A USD amount coming out: always a decimal string such as `"12.50"` or `"0.0083"`. */
export type Usd = string

export type Vendor = 'stripe' | 'twilio' | 'resend'

/** Every `code` a gateway refusal or failure can carry. */
export type ErrorCode =
  | 'unauthorized'
  | 'key_revoked'
  | 'key_expired'
  | 'unknown_key'
  | 'endpoint_not_allowed'
  | 'spend_cap_exceeded'
  | 'duplicate_request'
  | 'upstream_error'
  | 'store_error'
  | 'config_error'
  | 'bad_request'
  | 'not_found'

export declare const CODES: readonly ErrorCode[]

/** Options of `Gateway.open`; each overrides the matching environment variable or default. */
export interface GatewayConfig {
  /** Upstream base URL for Stripe (default https://api.stripe.com, env VENDORGATE_STRIPE_URL). */
  stripeUrl?: string | URL
  twilioUrl?: string | URL
  resendUrl?: string | URL
  /** Real credentials (default: env STRIPE_SECRET_KEY, TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN, RESEND_API_KEY). */
  stripeSecretKey?: string
  twilioAccountSid?: string
  twilioAuthToken?: string
  resendApiKey?: string
  /** Largest request body forwarded (default 1 MiB). */
  maxBodyBytes?: number
  /** Largest vendor answer read back (default 16 MiB). */
  maxResponseBytes?: number
  /** Time allowed for the vendor's whole answer (default 60 s). */
  requestTimeoutSecs?: number
  connectTimeoutSecs?: number
  /** Longest TTL a key may be issued with (default 30 days). */
  maxKeyTtlSecs?: number
}

export interface ConnectOptions {
  /** Admin token of the server (default: env VENDORGATE_ADMIN_TOKEN). */
  adminToken?: string
}

export interface KeySpec {
  vendor: Vendor
  /** Cap over the key's whole life (the run). */
  maxUsd?: UsdInput | null
  /** Cap per UTC calendar day. A key with neither cap may move no money. */
  dailyUsdCap?: UsdInput | null
  /** `"METHOD /path"` or `"/path"`; `*` = one segment, `**` = the rest. Empty = allow nothing. */
  allowedEndpoints?: string[]
  /** Seconds, or a duration such as `"15m"`, `"2h"`, `"7d"` (default 1 hour). */
  expiresIn?: number | string
  runId?: string | null
  metadata?: Record<string, unknown> | null
  /** Stripe connected accounts (`acct_…`) the key may act as via Stripe-Account. */
  stripeAccounts?: string[]
}

export interface Policy {
  vendor: Vendor
  maxUsd: Usd | null
  dailyUsdCap: Usd | null
  allowedEndpoints: string[]
  stripeAccounts: string[]
}

/** Anything that names a key: the key object, its id (`key_…`) or its vault key (`vk_…`). */
export type KeyLike = VaultKey | KeyUsage | { keyId: string } | string

/** An issued key. `vaultKey` is shown only here. Disposing it (`await using`) revokes it. */
export declare class VaultKey {
  private constructor()
  readonly vaultKey: string
  readonly keyId: string
  readonly vendor: Vendor
  /** RFC 3339 UTC time. */
  readonly expiresAt: string
  readonly createdAt: string | null
  readonly runId: string | null
  readonly metadata: Record<string, unknown> | null
  readonly policy: Policy
  revoke(): Promise<void>
  usage(): Promise<KeyUsage>
  [Symbol.asyncDispose](): Promise<void>
}

export interface KeyUsage {
  keyId: string
  vendor: Vendor
  runId: string | null
  metadata: Record<string, unknown> | null
  policy: Policy
  createdAt: string
  expiresAt: string
  revoked: boolean
  revokedAt: string | null
  expired: boolean
  active: boolean
  /** Settled cost of calls that moved money. */
  spentUsd: Usd
  /** Calls whose money state is pending or unknown (counted against the caps). */
  pendingUsd: Usd
  /** Reservations of calls still in flight. */
  reservedUsd: Usd
  /** Everything counted in the current UTC day. */
  todayUsd: Usd
  totalUsd: Usd
  /** Room left under the tighter cap. */
  remainingUsd: Usd
  [extra: string]: unknown
}

export interface ListKeysOptions {
  runId?: string
  /** Only keys neither revoked nor expired. */
  active?: boolean
}

export interface AuditOptions {
  runId?: string
  keyId?: string | VaultKey
  /** A Date, milliseconds since the epoch, or an ISO 8601 string. */
  since?: Date | number | string
  afterId?: number
  /** 1 to 10000 (default 100). */
  limit?: number
}

export interface AuditRow {
  id: number
  time: string
  keyId: string | null
  runId: string | null
  vendor: Vendor | null
  method: string
  /** Canonical path. */
  endpoint: string
  /** `forwarded` or the refusal reason. */
  decision: string
  /** HTTP status returned to the agent. */
  status: number
  upstreamStatus: number | null
  estimateUsd: Usd
  costUsd: Usd
  moneyState: string | null
  latencyMs: number
  upstreamLatencyMs: number | null
  idempotencyKey: string | null
  vendorRequestId: string | null
  message: string | null
  [extra: string]: unknown
}

export interface RequestOptions {
  /** Form fields; nested objects and arrays are encoded Stripe-style (`a[b]=`, `a[0]=`). */
  form?: Record<string, unknown>
  /** A JSON body. */
  json?: unknown
  /** A raw body. */
  body?: string | Uint8Array | ArrayBuffer
  headers?: Record<string, string | number> | Array<[string, string]> | Iterable<[string, string]>
  /** Sent as the Idempotency-Key header: the same key and body are one spend, not two. */
  idempotencyKey?: string
}

export interface ServeOptions {
  /** 0 (default) picks a free port. */
  port?: number
  /** Default 127.0.0.1. */
  host?: string
  /** Also serve the admin API with this token; without one it answers 503. */
  adminToken?: string
}

/** A vendor's answer (any status): the gateway forwarded the request. */
export declare class VendorResponse {
  private constructor()
  readonly status: number
  readonly ok: boolean
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Record<string, string>
  readonly body: Buffer
  readonly text: string
  json<T = any>(): T
  /** What this call was counted at. */
  readonly costUsd: Usd
  /** Room left under the key's tighter cap after this call (null when unknown). */
  readonly remainingUsd: Usd | null
}

export declare class Client {
  private constructor()
  readonly gateway: Gateway
  readonly keyId: string | null
  readonly vendor: Vendor | null
  request(method: string, path: string, options?: RequestOptions): Promise<VendorResponse>
  get(path: string, options?: RequestOptions): Promise<VendorResponse>
  post(path: string, options?: RequestOptions): Promise<VendorResponse>
  delete(path: string, options?: RequestOptions): Promise<VendorResponse>
}

export declare class Gateway {
  private constructor()
  /** Embedded: the pipeline runs in this process on a local SQLite file. */
  static open(path: string | URL, config?: GatewayConfig): Promise<Gateway>
  /** Connect to a running `vendorgate serve`. */
  static connect(url: string | URL, options?: ConnectOptions): Promise<Gateway>
  readonly mode: 'embedded' | 'connect'
  readonly path?: string
  readonly url?: string
  issueKey(spec: KeySpec): Promise<VaultKey>
  revoke(key: KeyLike): Promise<void>
  usage(key: KeyLike): Promise<KeyUsage>
  listKeys(options?: ListKeysOptions): Promise<KeyUsage[]>
  audit(options?: AuditOptions): Promise<AuditRow[]>
  /** Issue a key, run `fn`, revoke the key when `fn` settles (resolved or thrown). */
  withRun<T>(spec: KeySpec, fn: (key: VaultKey) => Promise<T> | T): Promise<T>
  client(key: VaultKey | string, options?: { vendor?: Vendor }): Client
  /**
   * Serve this embedded gateway over HTTP for the official vendor SDKs; resolves with the base
   * URL (e.g. `http://127.0.0.1:43121`). The server runs on the addon's threads and does not by
   * itself keep the Node process alive; stop it with `close()`.
   */
  serve(options?: ServeOptions): Promise<string>
  /** Stop the servers started by serve(). */
  close(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** Base class of every error the gateway reports. */
export declare class VendorgateError extends Error {
  readonly code: ErrorCode
  /** The gateway's own reason code (e.g. `cannot_price` for code `bad_request`). */
  readonly reason: string
  /** The HTTP status the gateway answers with for this refusal. */
  readonly status: number | null
  readonly keyId: string | null
  readonly details: Record<string, unknown>
}
export declare class Denied extends VendorgateError {}
export declare class Unauthorized extends Denied {
  readonly code: 'unauthorized' | 'key_revoked' | 'key_expired' | 'unknown_key'
}
export declare class EndpointNotAllowed extends Denied {
  readonly code: 'endpoint_not_allowed'
}
export declare class SpendCapExceeded extends Denied {
  readonly code: 'spend_cap_exceeded'
  readonly capUsd: Usd
  readonly spentUsd: Usd
  readonly estimateUsd: Usd
  readonly window: 'run' | 'daily'
}
export declare class DuplicateRequest extends Denied {
  readonly code: 'duplicate_request'
}
export declare class BadRequest extends Denied {
  readonly code: 'bad_request'
}
export declare class UpstreamError extends VendorgateError {
  readonly code: 'upstream_error'
}
export declare class StoreError extends VendorgateError {
  readonly code: 'store_error'
}
export declare class ConfigError extends VendorgateError {
  readonly code: 'config_error'
}
export declare class NotFound extends VendorgateError {
  readonly code: 'not_found'
}
