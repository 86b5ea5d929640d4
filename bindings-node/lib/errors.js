'use strict'
// Errors: the classes the package raises, and the conversion of a native error into one. The
// class of every error is decided by the core (`Error::class`), named in src/error.rs, and
// arrives with the error; nothing here maps reason codes to classes.

const native = require('./addon.js')

/** Prefix of the message of every error the native layer throws (src/error.rs). */
const ERROR_MARKER = '__vendorgate_error__'

/** Every reason code the gateway can answer with: the `code` of a refusal or failure. */
const CODES = Object.freeze(native.reasonClassesJs().map(([reason]) => reason))

/** Base class of every error the gateway reports. `code` is the gateway's reason code. */
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
    /** The same as `code` (kept for compatibility: `code` used to fold some reasons). */
    this.reason = props.reason ?? props.code
    this.status = props.status ?? null
    this.keyId = props.keyId ?? null
    for (const [k, v] of Object.entries(props)) {
      if (!(k in this)) this[k] = v
    }
  }
}
/** The gateway refused the request (nothing was forwarded). A refusal reason this version does not know is a plain `Denied`. */
class Denied extends VendorgateError {}
/** A key or token was not accepted (401): a bad admin token (`unauthorized`), or a 401 this version does not know. */
class Unauthorized extends Denied {}
/** No vault key (`missing_key`), or one this gateway did not issue (`unknown_key`). */
class UnknownKey extends Unauthorized {}
/** The vault key was revoked (`key_revoked`). */
class KeyRevoked extends Unauthorized {}
/** The vault key expired (`key_expired`). */
class KeyExpired extends Unauthorized {}
/** Not in the key's allowlist (`endpoint_not_allowed`), or an operation whose answer is a credential (`credential`). */
class EndpointNotAllowed extends Denied {}
/** Carries `capUsd`, `spentUsd`, `estimateUsd` (decimal strings) and `window` (`run`/`daily`). */
class SpendCapExceeded extends Denied {}
/** An Idempotency-Key reused with another request, or still in flight (`duplicate_request`); or the same money-moving action again within the key's duplicate window (`duplicate_action`). */
class DuplicateRequest extends Denied {}
/** The request cannot be checked or priced safely (`bad_path`, `bad_request`, `cannot_price`, `body_too_large`). */
class BadRequest extends Denied {}
/** The vendor (or the remote gateway) failed or timed out (`upstream_error`). */
class UpstreamError extends VendorgateError {}
/** The store cannot answer; nothing was forwarded (`store_error`). */
class StoreError extends VendorgateError {}
/** The gateway is misconfigured (`config_error`, `vendor_not_configured`). */
class ConfigError extends VendorgateError {}
/** No such key (revoke / usage of an id the gateway does not know; `not_found`). */
class NotFound extends VendorgateError {}

/** The class for each name src/error.rs `js_class` gives (RangeError: the built-in, for a bad argument). */
const CLASS_BY_NAME = Object.freeze({
  Denied,
  Unauthorized,
  UnknownKey,
  KeyRevoked,
  KeyExpired,
  EndpointNotAllowed,
  SpendCapExceeded,
  DuplicateRequest,
  BadRequest,
  UpstreamError,
  StoreError,
  ConfigError,
  NotFound,
  RangeError,
})

/** snake_case → camelCase. */
const camel = (s) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase())

function inputError(ErrorClass, field, message) {
  const e = new ErrorClass(field ? `invalid ${field}: ${message}` : message)
  e.code = 'invalid_input'
  if (field) e.field = field
  return e
}
const typeError = (field, message) => inputError(TypeError, field, message)
const rangeError = (field, message) => inputError(RangeError, field, message)

/** Turn an error thrown by the native layer into the public shape (other errors pass through). */
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
  const ErrorClass = Object.prototype.hasOwnProperty.call(CLASS_BY_NAME, info.class) ? CLASS_BY_NAME[info.class] : VendorgateError
  if (ErrorClass === RangeError) {
    // A bad argument found by the core (an allowlist pattern, a cap over 1e12, a config key):
    // the built-in RangeError, its field named as the caller wrote it (camelCase).
    const snake = details.field || undefined
    const field = snake && camel(snake)
    const text = snake && message.startsWith(`invalid ${snake}:`) ? `invalid ${field}:${message.slice(`invalid ${snake}:`.length)}` : message
    const out = new RangeError(text)
    out.code = 'invalid_input'
    if (field) out.field = field
    return out
  }
  const props = {
    code: info.reason,
    reason: info.reason,
    status: info.status ?? null,
    keyId: ctx.keyId ?? null,
    details,
  }
  if (ErrorClass === SpendCapExceeded) {
    props.capUsd = details.cap_usd ?? null
    props.spentUsd = details.spent_usd ?? null
    props.estimateUsd = details.estimate_usd ?? null
    props.window = details.window ?? null
  }
  return new ErrorClass(message, props)
}

/** Await a native promise, converting its error. */
async function call(promise, ctx) {
  try {
    return await promise
  } catch (e) {
    throw convertError(e, ctx)
  }
}

module.exports = {
  ERROR_MARKER,
  CODES,
  CLASS_BY_NAME,
  VendorgateError,
  Denied,
  Unauthorized,
  UnknownKey,
  KeyRevoked,
  KeyExpired,
  EndpointNotAllowed,
  SpendCapExceeded,
  DuplicateRequest,
  BadRequest,
  UpstreamError,
  StoreError,
  ConfigError,
  NotFound,
  camel,
  typeError,
  rangeError,
  convertError,
  call,
}
