'use strict'
// Gateways: `Gateway` (embedded or connected; the same methods) and the `VaultKey` it issues.

const util = require('node:util')
const crypto = require('node:crypto')
const native = require('./addon.js')
const { call, typeError, rangeError } = require('./errors.js')
const {
  typeName,
  isPlainObject,
  options,
  optString,
  nonEmptyString,
  toMs,
  positiveInt,
  usdText,
  camelize,
  keyRef,
  keyIdOf,
  specToJson,
  configToJson,
  fractionList,
} = require('./input.js')
const { Client } = require('./client.js')

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
   * Open an embedded gateway on a SQLite file (created if missing). `config` is the settings
   * of the server's TOML file (README "Settings"), nested the same way, keys in camelCase or
   * snake_case: `{ stripe: { url, secretKeyEnv }, requestTimeoutMs, pricing: { fx: { EUR: '1.2' } } }`.
   * It overrides the environment (VENDORGATE_STRIPE_URL, …), which overrides the defaults.
   * Credentials are read from the environment variables the settings name (default
   * STRIPE_SECRET_KEY, …). A bad key or value rejects with RangeError (code 'invalid_input',
   * field 'config') naming it; a bad environment with ConfigError.
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

  /**
   * Create a budget many keys can share (`issueKey({ ..., budgets: [name] })`): a call of any
   * member key must also fit under its caps. `{ name, maxUsd?, dailyUsdCap?, alertAt? }`, at
   * least one cap; `alertAt: [0.5, 0.8]` sends `spend.threshold_crossed` webhooks.
   */
  async createBudget(spec) {
    const o = options('spec', spec, ['name', 'maxUsd', 'dailyUsdCap', 'alertAt'])
    const body = { name: o.name }
    const alertAt = fractionList('alertAt', o.alertAt)
    if (alertAt !== undefined) body.alert_at = alertAt
    const mx = usdText('maxUsd', o.maxUsd)
    if (mx !== undefined) body.max_usd = mx
    const dc = usdText('dailyUsdCap', o.dailyUsdCap)
    if (dc !== undefined) body.daily_usd_cap = dc
    await call(this._native.createBudget(JSON.stringify(body)))
    return this.budget(o.name)
  }

  /** A budget's caps, what its keys have counted (`spentUsd`, `todayUsd`, `remainingUsd`, …) and its `keys`. */
  async budget(name) {
    return camelize(JSON.parse(await call(this._native.budget(name))))
  }

  /** Every budget, by name. */
  async budgets() {
    return camelize(JSON.parse(await call(this._native.budgets())))
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

  /** Audit rows (camelCase keys), oldest first: the newest `limit` (1 to 10,000; default 10,000, the core's), or those after `afterId`. */
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
   * HTTP, so the official vendor SDKs can use it. Resolves with the base URL. One server per
   * gateway: calling it again while it runs resolves with the same URL (the options of the
   * later call are not applied) until `close()`.
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

  /** Stop the server started by `serve()` (in-flight requests finish). The gateway itself stays usable. */
  async close() {
    await call(this._native.closeServers())
  }

  [Symbol.asyncDispose]() {
    return this.close()
  }
}

module.exports = { Gateway, VaultKey }
