// Type definitions for vendorgate (Node). Hand-written; checked by `tsc` against
// test/types-check.ts in CI (run-tests.sh).

/// <reference types="node" />

/** A USD amount going in: a number (read through its shortest decimal form) or a decimal string. At most 6 decimals. */
export type UsdInput = number | string | bigint
/** A USD amount coming out: always a decimal string such as `"12.50"` or `"0.0083"`. */
export type Usd = string

export type Vendor = 'stripe' | 'twilio' | 'resend'

/** Every `code` a gateway refusal or failure can carry: the gateway's reason codes. */
export type ErrorCode =
  | 'missing_key'
  | 'unknown_key'
  | 'key_revoked'
  | 'key_expired'
  | 'bad_path'
  | 'bad_request'
  | 'endpoint_not_allowed'
  | 'cannot_price'
  | 'credential'
  | 'spend_cap_exceeded'
  | 'duplicate_request'
  | 'duplicate_action'
  | 'body_too_large'
  | 'vendor_not_configured'
  | 'store_error'
  | 'upstream_error'
  | 'invalid_input'
  | 'config_error'
  | 'not_found'
  | 'unauthorized'

export declare const CODES: readonly ErrorCode[]

/** `[stripe]`: where Stripe is, and the variable holding its secret key (secrets are never settings). */
export interface StripeSettings {
  /** Default https://api.stripe.com (env VENDORGATE_STRIPE_URL). */
  url?: string | URL
  /** Default `STRIPE_SECRET_KEY`. */
  secretKeyEnv?: string
}
export interface TwilioSettings {
  /** Default https://api.twilio.com (env VENDORGATE_TWILIO_URL). */
  url?: string | URL
  /** Default `TWILIO_ACCOUNT_SID`. */
  accountSidEnv?: string
  /** Default `TWILIO_AUTH_TOKEN`. */
  authTokenEnv?: string
}
export interface ResendSettings {
  /** Default https://api.resend.com (env VENDORGATE_RESEND_URL). */
  url?: string | URL
  /** Default `RESEND_API_KEY`. */
  apiKeyEnv?: string
}

/** `[[pricing.override]]`: an operation declared free, or given a fixed price. */
export type PriceOverride =
  | { vendor: Vendor; operation: string; free: true; priceUsd?: never }
  | { vendor: Vendor; operation: string; priceUsd: UsdInput; free?: false }

/** `[pricing]`: amounts in USD (numbers are sent as their decimal text). Tables merge over the defaults; their keys are used as given. */
export interface PricingSettings {
  /** Per email recipient (default 0.0009). */
  resendEmailUsd?: UsdInput
  twilioMmsUsd?: UsdInput
  twilioCallMinuteUsd?: UsdInput
  twilioCallMaxMinutes?: number
  /** Per SMS segment by E.164 calling code, e.g. `{ '44': '0.05' }`. */
  twilioSms?: Record<string, UsdInput>
  /** USD per major unit of a currency, e.g. `{ EUR: '1.10' }`. */
  fx?: Record<string, UsdInput>
  twilioCallMinuteUsdByPrefix?: Record<string, UsdInput>
  /** First month of a number by `"code:type"`, e.g. `{ '1:local': '1.15' }`. */
  twilioNumberMonthlyUsd?: Record<string, UsdInput>
  override?: PriceOverride[]
}

/**
 * `Gateway.open`'s config: the settings of the server's TOML file (README "Settings"), nested
 * the same way and in the same units, keys in camelCase (snake_case is accepted too). Each
 * overrides the environment, which overrides the default. Unknown keys and bad values reject
 * with a RangeError (`code: 'invalid_input'`, `field: 'config'`) naming the key.
 */
export interface GatewayConfig {
  stripe?: StripeSettings
  twilio?: TwilioSettings
  resend?: ResendSettings
  /** Largest request body forwarded (default 1 MiB). */
  maxBodyBytes?: number
  /** Largest vendor answer read back (default 16 MiB). */
  maxResponseBytes?: number
  /** Calls in flight to one vendor at once (default 64). */
  maxUpstreamRequests?: number
  /** Time to open a connection to the vendor (default 5000 ms). */
  connectTimeoutMs?: number
  /** Time allowed for the vendor's whole answer (default 60000 ms). */
  requestTimeoutMs?: number
  /** Longest TTL a key may be issued with (default 30 days). */
  maxKeyTtlSecs?: number
  /** How long a store operation waits for another process's lock (default 5000 ms). */
  storeBusyTimeoutMs?: number
  /** How long a money-moving action is remembered against a repeat (default 600 s; 0: off). */
  duplicateWindowSecs?: number
  pricing?: PricingSettings
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
  /**
   * How long a money-moving action is remembered: the same action again within it is refused
   * (`DuplicateRequest`, code `duplicate_action`). Seconds or `"10m"`; `0` turns the guard off;
   * default: the gateway's `duplicateWindowSecs` (600).
   */
  duplicateWindow?: number | string
  /** Budgets (by name, see `createBudget`) the key joins: a call must fit under each one's caps too. */
  budgets?: string[]
  /** Fractions of each cap (`[0.5, 0.8]`) at which a `spend.threshold_crossed` webhook fires, once per cap window. */
  alertAt?: Array<number | string>
}

export interface BudgetSpec {
  name: string
  maxUsd?: UsdInput | null
  dailyUsdCap?: UsdInput | null
  /** As `KeySpec.alertAt`, for the budget's caps. */
  alertAt?: Array<number | string>
}

export interface BudgetStatus {
  name: string
  maxUsd: Usd | null
  dailyUsdCap: Usd | null
  createdAt: string
  spentUsd: Usd
  pendingUsd: Usd
  reservedUsd: Usd
  todayUsd: Usd
  totalUsd: Usd
  remainingUsd: Usd
  /** Ids of the keys that joined it. */
  keys: string[]
  /** Early-warning thresholds, fractions of each cap. */
  alertAt: number[]
}

export interface Policy {
  vendor: Vendor
  maxUsd: Usd | null
  dailyUsdCap: Usd | null
  allowedEndpoints: string[]
  stripeAccounts: string[]
  /** Seconds a money-moving action is remembered against a repeat (0: off); null: the gateway's default. */
  duplicateWindowSecs: number | null
  /** Budgets the key joined. */
  budgets: string[]
  /** Early-warning thresholds, fractions of each cap. */
  alertAt: number[]
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
  /** 1 to 10000 (default 10000). */
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
  /** The ledger row of the call's money (a call that reserved): a duplicate-action 409 and a `spend.unknown` event name it. */
  spendId: number | null
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
  /** The key object's vendor or `{ vendor }`; null for a bare vault key (the gateway takes it from the key). */
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
  /** A budget many keys share (`issueKey({ budgets: [name] })`); at least one cap. */
  createBudget(spec: BudgetSpec): Promise<BudgetStatus>
  budget(name: string): Promise<BudgetStatus>
  budgets(): Promise<BudgetStatus[]>
  listKeys(options?: ListKeysOptions): Promise<KeyUsage[]>
  audit(options?: AuditOptions): Promise<AuditRow[]>
  /** Issue a key, run `fn`, revoke the key when `fn` settles (resolved or thrown). */
  withRun<T>(spec: KeySpec, fn: (key: VaultKey) => Promise<T> | T): Promise<T>
  client(key: VaultKey | string, options?: { vendor?: Vendor }): Client
  /**
   * Serve this embedded gateway over HTTP for the official vendor SDKs; resolves with the base
   * URL (e.g. `http://127.0.0.1:43121`). The server runs on the addon's threads and does not by
   * itself keep the Node process alive; stop it with `close()`. One server per gateway: a
   * second call while it runs resolves with the same URL (its options are not applied).
   */
  serve(options?: ServeOptions): Promise<string>
  /** Stop the server started by serve(). */
  close(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** Base class of every error the gateway reports. */
export declare class VendorgateError extends Error {
  /** The gateway's reason code. */
  readonly code: ErrorCode
  /** The same as `code` (kept for compatibility). */
  readonly reason: string
  /** The HTTP status the gateway answers with for this refusal. */
  readonly status: number | null
  readonly keyId: string | null
  readonly details: Record<string, unknown>
}
/** The gateway refused the request; nothing was forwarded. */
export declare class Denied extends VendorgateError {}
/** A key or token was not accepted (401): a bad admin token, or a 401 this version does not know. */
export declare class Unauthorized extends Denied {
  readonly code: 'unauthorized' | 'missing_key' | 'unknown_key' | 'key_revoked' | 'key_expired'
}
/** No vault key, or one this gateway did not issue. */
export declare class UnknownKey extends Unauthorized {
  readonly code: 'missing_key' | 'unknown_key'
}
export declare class KeyRevoked extends Unauthorized {
  readonly code: 'key_revoked'
}
export declare class KeyExpired extends Unauthorized {
  readonly code: 'key_expired'
}
export declare class EndpointNotAllowed extends Denied {
  readonly code: 'endpoint_not_allowed' | 'credential'
}
export declare class SpendCapExceeded extends Denied {
  readonly code: 'spend_cap_exceeded'
  readonly capUsd: Usd
  readonly spentUsd: Usd
  readonly estimateUsd: Usd
  readonly window: 'run' | 'daily'
}
export declare class DuplicateRequest extends Denied {
  readonly code: 'duplicate_request' | 'duplicate_action'
}
export declare class BadRequest extends Denied {
  readonly code: 'bad_path' | 'bad_request' | 'cannot_price' | 'body_too_large'
}
export declare class UpstreamError extends VendorgateError {
  readonly code: 'upstream_error'
}
export declare class StoreError extends VendorgateError {
  readonly code: 'store_error'
}
export declare class ConfigError extends VendorgateError {
  readonly code: 'config_error' | 'vendor_not_configured'
}
export declare class NotFound extends VendorgateError {
  readonly code: 'not_found'
}
/** What a bad argument throws: the built-in TypeError (wrong type) or RangeError (wrong value) with these fields. */
export interface InvalidInputError extends Error {
  readonly code: 'invalid_input'
  /** The argument or option at fault, camelCase (`'config'` for Gateway.open's config). */
  readonly field?: string
}
