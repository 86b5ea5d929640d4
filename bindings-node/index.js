'use strict'
// vendorgate for Node: spend caps, endpoint allowlists and per-run vault keys between AI agents
// and Stripe, Twilio and Resend. This file is the idiomatic layer (camelCase, Promises, Error
// objects with a stable `code`, input checks that throw TypeError/RangeError); the work is done
// by the native addon (`native.js`, built from src/lib.rs by `napi build` at install time).

const util = require('node:util')
const crypto = require('node:crypto')
let native
try {
  native = require('./native.js')
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes('native.js')) {
    const err = new Error(
      `vendorgate: the native addon is not built (${__dirname}). Run \`npm run build\` there (needs Rust's cargo on PATH), ` +
        'or reinstall without --ignore-scripts.',
    )
    err.code = 'ERR_VENDORGATE_NOT_BUILT'
    err.cause = e
    throw err
  }
  throw e
}

const ERROR_MARKER = '__vendorgate_error__'

/** Every `code` a gateway refusal or failure can carry. */
const CODES = Object.freeze([
  'unauthorized',
  'key_revoked',
  'key_expired',
  'unknown_key',
  'endpoint_not_allowed',
  'spend_cap_exceeded',
  'duplicate_request',
  'upstream_error',
  'store_error',
  'config_error',
  'bad_request',
  'not_found',
])

// ---- errors ---------------------------------------------------------------------------------

/** Base class of every error the gateway reports. `code` is one of `CODES`. */
class VendorgateError extends Error {
  constructor(message, props = {}) {
    super(message)
    Object.defineProperty(this, 'name', {
      value: new.target.name,
      enumerable: false,
      configurable: true,
      writable: true,
    })
    this.code = props.code
    this.reason = props.reason ?? props.code
    this.status = props.status ?? null
    this.keyId = props.keyId ?? null
    for (const [k, v] of Object.entries(props)) {
      if (!(k in this)) this[k] = v
    }
  }
}
/** The gateway refused the request (nothing was forwarded). */
class Denied extends VendorgateError {}
/** Missing, unknown, expired or revoked vault key, or a bad admin token (`code` says which). */
class Unauthorized extends Denied {}
class EndpointNotAllowed extends Denied {}
/** Carries `capUsd`, `spentUsd`, `estimateUsd` (decimal strings) and `window` (`run`/`daily`). */
class SpendCapExceeded extends Denied {}
class DuplicateRequest extends Denied {}
/** The request cannot be checked or priced safely (`reason`: bad_path, bad_request, cannot_price, body_too_large). */
class BadRequest extends Denied {}
class UpstreamError extends VendorgateError {}
class StoreError extends VendorgateError {}
class ConfigError extends VendorgateError {}
/** No such key (revoke / usage of an id the gateway does not know). */
class NotFound extends VendorgateError {}

const CLASS_BY_CODE = {
  unauthorized: Unauthorized,
  key_revoked: Unauthorized,
  key_expired: Unauthorized,
  unknown_key: Unauthorized,
  endpoint_not_allowed: EndpointNotAllowed,
  spend_cap_exceeded: SpendCapExceeded,
  duplicate_request: DuplicateRequest,
  bad_request: BadRequest,
  upstream_error: UpstreamError,
  store_error: StoreError,
  config_error: ConfigError,
  not_found: NotFound,
}

/** Core reason code (core/src/error.rs REASONS) → public `code`. */
function codeForReason(reason, status) {
  switch (reason) {
    case 'missing_key':
      return 'unknown_key'
    case 'bad_path':
    case 'bad_request':
    case 'cannot_price':
    case 'body_too_large':
      return 'bad_request'
    case 'vendor_not_configured':
    case 'config_error':
      return 'config_error'
    case 'credential':
      return 'endpoint_not_allowed'
    default:
      if (Object.prototype.hasOwnProperty.call(CLASS_BY_CODE, reason)) return reason
      // A reason this version does not know (a newer server): classify by status.
      return status >= 500 ? 'upstream_error' : 'bad_request'
  }
}

function inputError(ErrorClass, field, message) {
  const e = new ErrorClass(field ? `invalid ${field}: ${message}` : message)
  e.code = 'invalid_input'
  if (field) e.field = field
  return e
}
const typeError = (field, message) => inputError(TypeError, field, message)
const rangeError = (field, message) => inputError(RangeError, field, message)

/** Turn an error thrown by the native layer into the public shape. */
function convertError(e, ctx = {}) {
  const msg = e && typeof e.message === 'string' ? e.message : ''
  if (!msg.startsWith(ERROR_MARKER)) return e
  let info
  try {
    info = JSON.parse(msg.slice(ERROR_MARKER.length))
  } catch {
    return e
  }
  const details = info.details && typeof info.details === 'object' ? info.details : {}
  const message = info.message || details.message || 'refused by the gateway'
  if (info.reason === 'invalid_input') {
    // Bad input found by the core (e.g. an allowlist pattern, a cap over 1e12): RangeError.
    const snake = details.field || undefined
    const field = snake && camel(snake)
    const text = snake && message.startsWith(`invalid ${snake}:`) ? `invalid ${field}:${message.slice(`invalid ${snake}:`.length)}` : message
    const out = new RangeError(text)
    out.code = 'invalid_input'
    if (field) out.field = field
    return out
  }
  const code = codeForReason(info.reason, info.status)
  const props = {
    code,
    reason: info.reason,
    status: info.status ?? null,
    keyId: ctx.keyId ?? null,
    details,
  }
  if (code === 'spend_cap_exceeded') {
    props.capUsd = details.cap_usd ?? null
    props.spentUsd = details.spent_usd ?? null
    props.estimateUsd = details.estimate_usd ?? null
    props.window = details.window ?? null
  }
  const ErrorClass = CLASS_BY_CODE[code] || VendorgateError
  return new ErrorClass(message, props)
}

async function call(promise, ctx) {
  try {
    return await promise
  } catch (e) {
    throw convertError(e, ctx)
  }
}

// ---- input helpers ----------------------------------------------------------------------------

function typeName(v) {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  return typeof v === 'object' ? `an object (${v.constructor?.name ?? 'Object'})` : `${typeof v} ${util.inspect(v)}`
}

function isPlainObject(v) {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

/** Check an options object: a plain object (or undefined) with only `known` keys. */
function options(what, v, known) {
  if (v === undefined || v === null) return {}
  if (!isPlainObject(v)) throw typeError(what, `must be an object, got ${typeName(v)}`)
  for (const k of Object.keys(v)) {
    if (!known.includes(k)) {
      throw typeError(what, `unknown option ${JSON.stringify(k)}; known options are ${known.join(', ')}`)
    }
  }
  return v
}

function optString(field, v) {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw typeError(field, `must be a string, got ${typeName(v)}`)
  return v
}

function nonEmptyString(field, v) {
  if (typeof v !== 'string') throw typeError(field, `must be a string, got ${typeName(v)}`)
  if (v.trim() === '') throw rangeError(field, 'must not be empty')
  return v
}

function stringList(field, v) {
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v)) throw typeError(field, `must be an array of strings, got ${typeName(v)}`)
  v.forEach((s, i) => {
    if (typeof s !== 'string') throw typeError(field, `item ${i} must be a string, got ${typeName(s)}`)
  })
  return [...v]
}

const USD_TEXT = /^\+?(\d+(\.\d*)?|\.\d+)$/

/**
 * A USD amount in: a number (read through its shortest string form, never rounded), a decimal
 * string, or a bigint (whole dollars). Returns the decimal string the core parses exactly.
 */
function usdIn(field, v) {
  if (v === undefined || v === null) return undefined
  let text
  if (typeof v === 'bigint') {
    text = v.toString()
  } else if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw rangeError(field, `must be a finite amount of USD, got ${v}`)
    text = String(v)
    if (/e/i.test(text)) {
      throw rangeError(
        field,
        Math.abs(v) >= 1
          ? `${text} USD is too large (at most 1e12 USD)`
          : `${text} has more than 6 decimal places (the gateway counts in micro-USD); pass a decimal string`,
      )
    }
  } else if (typeof v === 'string') {
    text = v.trim()
  } else {
    throw typeError(field, `must be a USD amount (number or decimal string), got ${typeName(v)}`)
  }
  if (text.startsWith('-')) throw rangeError(field, `must not be negative, got ${text}`)
  if (!USD_TEXT.test(text)) {
    throw rangeError(field, `expected a decimal USD amount such as "25" or "0.50", got ${JSON.stringify(text)}`)
  }
  const frac = text.includes('.') ? text.split('.')[1].replace(/0+$/, '') : ''
  if (frac.length > 6) {
    throw rangeError(field, `${text} has more than 6 decimal places (the gateway counts in micro-USD)`)
  }
  return text
}

function ttlIn(v) {
  if (v === undefined || v === null) return undefined
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v <= 0) {
      throw rangeError('expiresIn', `must be a positive whole number of seconds, got ${v}`)
    }
    return v
  }
  if (typeof v === 'string') {
    if (!/^\s*\d{1,9}[smhd]?\s*$/.test(v)) {
      throw rangeError('expiresIn', `must be seconds or a duration like "30s", "15m", "2h", "7d", got ${JSON.stringify(v)}`)
    }
    return v.trim()
  }
  throw typeError('expiresIn', `must be seconds (a number) or a duration string like "15m", got ${typeName(v)}`)
}

function toMs(field, v) {
  if (v === undefined || v === null) return undefined
  let ms
  if (v instanceof Date) ms = v.getTime()
  else if (typeof v === 'number') ms = v
  else if (typeof v === 'string') ms = Date.parse(v)
  else throw typeError(field, `must be a Date, milliseconds since the epoch, or an ISO 8601 string, got ${typeName(v)}`)
  if (!Number.isFinite(ms) || !Number.isInteger(ms)) {
    throw rangeError(field, `${util.inspect(v)} is not a valid point in time`)
  }
  return ms
}

function positiveInt(field, v, max) {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number') throw typeError(field, `must be a number, got ${typeName(v)}`)
  if (!Number.isInteger(v) || v <= 0 || (max !== undefined && v > max)) {
    throw rangeError(field, `must be a whole number from 1${max !== undefined ? ` to ${max}` : ''}, got ${v}`)
  }
  return v
}

// ---- output helpers -------------------------------------------------------------------------

const camel = (s) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase())

/** snake_case keys → camelCase, recursively, leaving user `metadata` untouched. */
function camelize(v) {
  if (Array.isArray(v)) return v.map(camelize)
  if (v === null || typeof v !== 'object') return v
  const out = {}
  for (const [k, val] of Object.entries(v)) {
    out[camel(k)] = k === 'metadata' ? val : camelize(val)
  }
  return out
}

/** What a key argument names: the key id, or failing that the vault key. */
function keyRef(key) {
  if (typeof key === 'string') {
    const k = nonEmptyString('key', key).trim()
    if (!/^[A-Za-z0-9_-]+$/.test(k)) throw rangeError('key', 'must be a key id (key_…) or a vault key (vk_…)')
    return k
  }
  if (key && typeof key === 'object') {
    const ref = key.keyId ?? key.vaultKey
    if (typeof ref === 'string' && ref !== '') return ref
    throw typeError('key', 'the key object has neither keyId nor vaultKey')
  }
  throw typeError('key', `must be a key object, a key id (key_…) or a vault key (vk_…), got ${typeName(key)}`)
}

function keyIdOf(key) {
  if (key && typeof key === 'object' && typeof key.keyId === 'string') return key.keyId
  if (typeof key === 'string' && key.trim().startsWith('key_')) return key.trim()
  return null
}

// ---- keys -----------------------------------------------------------------------------------

const GATEWAY = Symbol('vendorgate.gateway')

/**
 * An issued vault key. `vaultKey` is shown only here (the store keeps a hash). Disposing the
 * key (`await using key = await gw.issueKey(...)`, or `key[Symbol.asyncDispose]()`) revokes it.
 */
class VaultKey {
  constructor(gateway, data) {
    Object.defineProperty(this, GATEWAY, { value: gateway, enumerable: false })
    Object.assign(this, data)
  }

  /** Revoke this key; the next request with it is refused with `key_revoked`. */
  revoke() {
    return this[GATEWAY].revoke(this)
  }

  /** Current spend figures for this key. */
  usage() {
    return this[GATEWAY].usage(this)
  }

  [Symbol.asyncDispose]() {
    return this[GATEWAY].revoke(this)
  }

  [util.inspect.custom](depth, opts, inspect) {
    const shown = { ...this, vaultKey: typeof this.vaultKey === 'string' ? 'vk_…(redacted)' : this.vaultKey }
    return `VaultKey ${(inspect || util.inspect)(shown, opts)}`
  }
}

function keyFromJson(gateway, raw, spec) {
  const v = camelize(raw)
  const policy = v.policy || {}
  return new VaultKey(gateway, {
    vaultKey: v.vaultKey,
    keyId: v.keyId,
    vendor: v.vendor ?? policy.vendor ?? spec.vendor,
    expiresAt: v.expiresAt ?? null,
    createdAt: v.createdAt ?? null,
    runId: v.runId ?? spec.run_id ?? null,
    metadata: raw.metadata ?? spec.metadata ?? null,
    policy,
  })
}

const VENDORS = ['stripe', 'twilio', 'resend']
const SPEC_KEYS = [
  'vendor',
  'maxUsd',
  'dailyUsdCap',
  'allowedEndpoints',
  'expiresIn',
  'runId',
  'metadata',
  'stripeAccounts',
]

function specToJson(spec) {
  if (!isPlainObject(spec)) throw typeError('spec', `must be an object like { vendor: 'stripe', maxUsd: 50, allowedEndpoints: [...] }, got ${typeName(spec)}`)
  options('spec', spec, SPEC_KEYS)
  if (spec.vendor === undefined) throw typeError('vendor', "is required: 'stripe', 'twilio' or 'resend'")
  if (typeof spec.vendor !== 'string') throw typeError('vendor', `must be a string, got ${typeName(spec.vendor)}`)
  if (!VENDORS.includes(spec.vendor)) {
    throw rangeError('vendor', `${JSON.stringify(spec.vendor)} is not one of ${VENDORS.join(', ')}`)
  }
  const out = { vendor: spec.vendor }
  const put = (k, v) => {
    if (v !== undefined) out[k] = v
  }
  put('max_usd', usdIn('maxUsd', spec.maxUsd))
  put('daily_usd_cap', usdIn('dailyUsdCap', spec.dailyUsdCap))
  put('allowed_endpoints', stringList('allowedEndpoints', spec.allowedEndpoints))
  put('expires_in', ttlIn(spec.expiresIn))
  put('run_id', optString('runId', spec.runId))
  if (spec.metadata !== undefined && spec.metadata !== null) {
    if (!isPlainObject(spec.metadata)) throw typeError('metadata', `must be a plain object, got ${typeName(spec.metadata)}`)
    out.metadata = spec.metadata
  }
  put('stripe_accounts', stringList('stripeAccounts', spec.stripeAccounts))
  return out
}

// ---- responses and clients --------------------------------------------------------------------

/** A vendor's answer (any status): the gateway forwarded the request. */
class VendorResponse {
  constructor(r) {
    this.status = r.status
    const headers = {}
    for (const [k, v] of r.headers) {
      headers[k] = k in headers ? `${headers[k]}, ${v}` : v
    }
    this.headers = headers
    /** The raw body. */
    this.body = r.body
    /** What this call was counted at, decimal USD. */
    this.costUsd = r.costUsd
    /** Room left under the key's tighter cap after this call, decimal USD (null if unknown). */
    this.remainingUsd = r.remainingUsd ?? null
  }

  get ok() {
    return this.status >= 200 && this.status < 300
  }

  /** The body as UTF-8 text. */
  get text() {
    const t = this.body.toString('utf8')
    Object.defineProperty(this, 'text', { value: t, enumerable: false })
    return t
  }

  /** The body parsed as JSON. */
  json() {
    return JSON.parse(this.text)
  }

  [util.inspect.custom](depth, opts, inspect) {
    const { body, ...rest } = this
    return `VendorResponse ${(inspect || util.inspect)({ ...rest, body: `<${body.length} bytes>` }, opts)}`
  }
}

const REQUEST_KEYS = ['form', 'json', 'body', 'headers', 'idempotencyKey']
const METHOD = /^[A-Za-z]{1,16}$/

function headerPairs(h) {
  if (h === undefined || h === null) return []
  let entries
  if (Array.isArray(h)) entries = h
  else if (typeof h === 'object' && typeof h.entries === 'function' && !isPlainObject(h)) entries = [...h.entries()]
  else if (isPlainObject(h)) entries = Object.entries(h)
  else throw typeError('headers', `must be an object of name → value, got ${typeName(h)}`)
  const out = []
  for (const pair of entries) {
    if (!Array.isArray(pair) || pair.length !== 2) throw typeError('headers', 'each header must be a [name, value] pair')
    const [k, v] = pair
    if (typeof k !== 'string') throw typeError('headers', `header names must be strings, got ${typeName(k)}`)
    if (v === undefined || v === null) continue
    if (typeof v !== 'string' && typeof v !== 'number') {
      throw typeError('headers', `the value of ${k} must be a string, got ${typeName(v)}`)
    }
    out.push([k, String(v)])
  }
  return out
}

/** Sends vendor requests with one vault key. Get one from `gateway.client(key)`. */
class Client {
  constructor(gateway, key, opts) {
    this.gateway = gateway
    if (typeof key === 'string') {
      const k = nonEmptyString('key', key).trim()
      if (!k.startsWith('vk_')) {
        throw rangeError('key', 'client() needs the vault key (vk_…) or the key object from issueKey(), not a key id')
      }
      this.vaultKey = k
      this.keyId = null
      this.vendor = null
    } else if (key && typeof key === 'object') {
      if (typeof key.vaultKey !== 'string') {
        throw typeError('key', 'the key object has no vaultKey: use the object returned by issueKey() (the vault key is shown only once)')
      }
      this.vaultKey = key.vaultKey
      this.keyId = key.keyId ?? null
      this.vendor = key.vendor ?? null
    } else {
      throw typeError('key', `must be the key object from issueKey() or a vault key string, got ${typeName(key)}`)
    }
    if (opts.vendor !== undefined) {
      if (!VENDORS.includes(opts.vendor)) throw rangeError('vendor', `${util.inspect(opts.vendor)} is not one of ${VENDORS.join(', ')}`)
      this.vendor = opts.vendor
    }
    Object.defineProperty(this, 'vaultKey', { enumerable: false })
  }

  async _vendorFor(path) {
    if (this.vendor) return this.vendor
    // A bare vault key: ask the gateway which vendor it belongs to (needs admin access in
    // connect mode), else go by the path.
    try {
      const u = await this.gateway.usage(this.vaultKey)
      this.vendor = u.vendor
      this.keyId = this.keyId ?? u.keyId
      return this.vendor
    } catch {
      const guess = native.guessVendor(path.split('?')[0])
      if (guess) return guess
      throw rangeError('vendor', 'cannot tell which vendor this vault key is for: pass client(key, { vendor })')
    }
  }

  /**
   * Send one request. Resolves with the vendor's answer (any status); rejects with a
   * `VendorgateError` when the gateway refuses, or a TypeError/RangeError for bad arguments.
   */
  async request(method, path, opts) {
    if (typeof method !== 'string') throw typeError('method', `must be a string such as 'POST', got ${typeName(method)}`)
    if (!METHOD.test(method)) throw rangeError('method', `${JSON.stringify(method)} is not an HTTP method`)
    if (typeof path !== 'string') throw typeError('path', `must be a string such as '/v1/charges', got ${typeName(path)}`)
    if (!path.startsWith('/')) throw rangeError('path', `${JSON.stringify(path)} must start with /, e.g. /v1/charges`)
    const o = options('options', opts, REQUEST_KEYS)
    const given = ['form', 'json', 'body'].filter((k) => o[k] !== undefined)
    if (given.length > 1) throw typeError('options', `pass only one of form, json and body (got ${given.join(' and ')})`)
    let kind = 'empty'
    let payload
    if (o.form !== undefined) {
      if (!isPlainObject(o.form)) throw typeError('form', `must be a plain object of fields, got ${typeName(o.form)}`)
      kind = 'form'
      payload = Buffer.from(JSON.stringify(o.form))
    } else if (o.json !== undefined) {
      kind = 'json'
      let text
      try {
        text = JSON.stringify(o.json)
      } catch (e) {
        throw typeError('json', `cannot be serialized as JSON (${e.message})`)
      }
      if (text === undefined) throw typeError('json', `cannot be serialized as JSON, got ${typeName(o.json)}`)
      payload = Buffer.from(text)
    } else if (o.body !== undefined) {
      kind = 'raw'
      if (typeof o.body === 'string') payload = Buffer.from(o.body)
      else if (Buffer.isBuffer(o.body)) payload = o.body
      else if (o.body instanceof Uint8Array) payload = Buffer.from(o.body.buffer, o.body.byteOffset, o.body.byteLength)
      else if (o.body instanceof ArrayBuffer) payload = Buffer.from(o.body)
      else throw typeError('body', `must be a string, Buffer or Uint8Array, got ${typeName(o.body)}`)
    }
    const headers = headerPairs(o.headers)
    if (o.idempotencyKey !== undefined) {
      headers.push(['Idempotency-Key', nonEmptyString('idempotencyKey', o.idempotencyKey)])
    }
    const vendor = await this._vendorFor(path)
    const r = await call(
      this.gateway._native.request(this.vaultKey, vendor, method, path, headers, kind, payload),
      { keyId: this.keyId },
    )
    return new VendorResponse(r)
  }

  get(path, opts) {
    return this.request('GET', path, opts)
  }

  post(path, opts) {
    return this.request('POST', path, opts)
  }

  delete(path, opts) {
    return this.request('DELETE', path, opts)
  }
}

// ---- the gateway ------------------------------------------------------------------------------

const CONFIG_KEYS = {
  stripeUrl: 'url',
  twilioUrl: 'url',
  resendUrl: 'url',
  stripeSecretKey: 'string',
  twilioAccountSid: 'string',
  twilioAuthToken: 'string',
  resendApiKey: 'string',
  maxBodyBytes: 'int',
  maxResponseBytes: 'int',
  requestTimeoutSecs: 'int',
  connectTimeoutSecs: 'int',
  maxKeyTtlSecs: 'int',
}

function configToJson(config) {
  const c = options('config', config, Object.keys(CONFIG_KEYS))
  const out = {}
  for (const [k, v] of Object.entries(c)) {
    if (v === undefined || v === null) continue
    const snake = k.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`)
    switch (CONFIG_KEYS[k]) {
      case 'url':
        if (v instanceof URL) out[snake] = v.href
        else out[snake] = nonEmptyString(k, v)
        break
      case 'string':
        out[snake] = nonEmptyString(k, v)
        break
      default:
        out[snake] = positiveInt(k, v)
    }
  }
  return out
}

/**
 * A gateway: `Gateway.open(path)` runs the pipeline in this process on a local SQLite file;
 * `Gateway.connect(url, { adminToken })` talks to a running `vendorgate serve`. Same methods.
 */
class Gateway {
  constructor(nativeGateway, info) {
    if (!nativeGateway || typeof nativeGateway.issueKey !== 'function') {
      throw new TypeError('use Gateway.open(path) or Gateway.connect(url, { adminToken })')
    }
    Object.defineProperty(this, '_native', { value: nativeGateway, enumerable: false })
    /** `'embedded'` or `'connect'`. */
    this.mode = nativeGateway.mode
    if (info.path !== undefined) this.path = info.path
    if (info.url !== undefined) this.url = info.url
  }

  /**
   * Open an embedded gateway on a SQLite file (created if missing). Vendor credentials and
   * upstream URLs come from the environment (STRIPE_SECRET_KEY, VENDORGATE_STRIPE_URL, …);
   * `config` overrides them.
   */
  static async open(path, config) {
    if (path instanceof URL) path = require('node:url').fileURLToPath(path)
    nonEmptyString('path', path)
    const cfg = configToJson(config)
    const n = await call(native.openGateway(path, JSON.stringify(cfg)))
    return new Gateway(n, { path })
  }

  /** Connect to a running `vendorgate serve` (admin token default: $VENDORGATE_ADMIN_TOKEN). */
  static async connect(url, opts) {
    if (url instanceof URL) url = url.href
    nonEmptyString('url', url)
    const o = options('options', opts, ['adminToken'])
    const token = optString('adminToken', o.adminToken) ?? process.env.VENDORGATE_ADMIN_TOKEN ?? null
    const n = await call(native.connectGateway(url, token || null))
    return new Gateway(n, { url: url.replace(/\/+$/, '') })
  }

  /** Issue a vault key for one agent run. */
  async issueKey(spec) {
    const json = specToJson(spec)
    const raw = await call(this._native.issueKey(JSON.stringify(json)))
    return keyFromJson(this, JSON.parse(raw), json)
  }

  /** Revoke a key (key object, key id or vault key). Revoking twice is fine. */
  async revoke(key) {
    const ref = keyRef(key)
    await call(this._native.revoke(ref), { keyId: keyIdOf(key) })
  }

  /** Spend figures and state of a key: `spentUsd`, `pendingUsd`, `reservedUsd`, `todayUsd`, `remainingUsd`, … */
  async usage(key) {
    const ref = keyRef(key)
    return camelize(JSON.parse(await call(this._native.usage(ref), { keyId: keyIdOf(key) })))
  }

  /** Keys, newest first; `{ runId, active: true }` filter. */
  async listKeys(opts) {
    const o = options('options', opts, ['runId', 'active'])
    const runId = optString('runId', o.runId)
    if (o.active !== undefined && typeof o.active !== 'boolean') throw typeError('active', `must be a boolean, got ${typeName(o.active)}`)
    return camelize(JSON.parse(await call(this._native.listKeys(runId ?? null, o.active === true))))
  }

  /** Audit rows (camelCase keys), oldest first: the newest `limit` (default 100), or those after `afterId`. */
  async audit(opts) {
    const o = options('options', opts, ['runId', 'keyId', 'since', 'afterId', 'limit'])
    const q = {}
    if (o.runId !== undefined) q.run_id = optString('runId', o.runId)
    if (o.keyId !== undefined && o.keyId !== null) q.key_id = typeof o.keyId === 'object' ? keyRef(o.keyId) : optString('keyId', o.keyId)
    if (o.since !== undefined) q.since_ms = toMs('since', o.since)
    if (o.afterId !== undefined) q.after_id = positiveInt('afterId', o.afterId)
    if (o.limit !== undefined) q.limit = positiveInt('limit', o.limit, 10000)
    return camelize(JSON.parse(await call(this._native.audit(JSON.stringify(q)))))
  }

  /**
   * Issue a key, run `fn(key)`, and revoke the key when `fn` settles, whether it resolved or
   * threw. Resolves with what `fn` resolved with. A runId is generated when none is given.
   */
  async withRun(spec, fn) {
    if (typeof fn !== 'function') throw typeError('fn', `must be a function (async (key) => …), got ${typeName(fn)}`)
    const s = isPlainObject(spec) && spec.runId === undefined ? { ...spec, runId: `run_${crypto.randomUUID()}` } : spec
    const key = await this.issueKey(s)
    let result
    try {
      result = await fn(key)
    } catch (e) {
      try {
        await this.revoke(key)
      } catch (revokeError) {
        if (e && typeof e === 'object') e.revokeError = revokeError
      }
      throw e
    }
    await this.revoke(key)
    return result
  }

  /** A client that sends vendor requests with `key` (key object or vault key string). */
  client(key, opts) {
    return new Client(this, key, options('options', opts, ['vendor']))
  }

  /**
   * Serve this embedded gateway's vendor routes (and, with `adminToken`, its admin API) over
   * HTTP, so the official vendor SDKs can use it. Resolves with the base URL.
   */
  async serve(opts) {
    const o = options('options', opts, ['port', 'host', 'adminToken'])
    const port = o.port ?? 0
    if (typeof port !== 'number') throw typeError('port', `must be a number, got ${typeName(port)}`)
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw rangeError('port', `must be a whole number from 0 to 65535, got ${port}`)
    const host = o.host === undefined ? '127.0.0.1' : nonEmptyString('host', o.host)
    const token = optString('adminToken', o.adminToken)
    const addr = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`
    return call(this._native.serve(addr, token ?? null))
  }

  /** Stop the servers started by `serve()`. The gateway itself stays usable. */
  async close() {
    await call(this._native.closeServers())
  }

  [Symbol.asyncDispose]() {
    return this.close()
  }
}

module.exports = {
  Gateway,
  Client,
  VaultKey,
  VendorResponse,
  VendorgateError,
  Denied,
  Unauthorized,
  EndpointNotAllowed,
  SpendCapExceeded,
  DuplicateRequest,
  BadRequest,
  UpstreamError,
  StoreError,
  ConfigError,
  NotFound,
  CODES,
}
