'use strict'
// Vendor requests: `Client` (one vault key; from `gateway.client(key)`) and `VendorResponse`.

const util = require('node:util')
const { call, typeError, rangeError } = require('./errors.js')
const { typeName, isPlainObject, options, nonEmptyString, VENDORS } = require('./input.js')

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

/**
 * Sends vendor requests with one vault key. Get one from `gateway.client(key)`. `vendor` is
 * the key object's vendor or `{ vendor }`; for a bare vault key it is null and the gateway
 * takes the vendor from the key (nothing is looked up or guessed here).
 */
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
    // No vendor (a bare vault key): the gateway takes it from the key.
    const r = await call(
      this.gateway._native.request(this.vaultKey, this.vendor ?? '', method, path, headers, kind, payload),
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

module.exports = { Client, VendorResponse }
