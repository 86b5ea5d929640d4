'use strict'
/**
 * vendorgate for Node: spend caps, endpoint allowlists and per-run vault keys between AI
 * agents and Stripe, Twilio and Resend. `Gateway.open(path, config)` runs the gateway in this
 * process on a local SQLite file; `Gateway.connect(url, { adminToken })` talks to a running
 * `vendorgate serve`; both have the same methods (issueKey, client(key).request, usage,
 * audit, …) and return Promises. Refusals reject with a `VendorgateError` subclass whose
 * `code` is the gateway's reason code; bad arguments throw TypeError / RangeError with
 * `code: 'invalid_input'`.
 *
 * This file only gathers the public API. The idiomatic layer lives in lib/ (errors.js: the
 * error classes; input.js: argument checks and conversions; client.js: vendor requests;
 * gateway.js: the gateway and its keys); the work is done by the native addon (`native.js`,
 * built from src/*.rs by `napi build` at install time), which also decides every error's class.
 */

const errors = require('./lib/errors.js')
const { Client, VendorResponse } = require('./lib/client.js')
const { Gateway, VaultKey } = require('./lib/gateway.js')

module.exports = {
  Gateway,
  Client,
  VaultKey,
  VendorResponse,
  VendorgateError: errors.VendorgateError,
  Denied: errors.Denied,
  Unauthorized: errors.Unauthorized,
  UnknownKey: errors.UnknownKey,
  KeyRevoked: errors.KeyRevoked,
  KeyExpired: errors.KeyExpired,
  EndpointNotAllowed: errors.EndpointNotAllowed,
  SpendCapExceeded: errors.SpendCapExceeded,
  DuplicateRequest: errors.DuplicateRequest,
  BadRequest: errors.BadRequest,
  UpstreamError: errors.UpstreamError,
  StoreError: errors.StoreError,
  ConfigError: errors.ConfigError,
  NotFound: errors.NotFound,
  CODES: errors.CODES,
}
