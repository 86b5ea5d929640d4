'use strict'
// Every error class and code, in embedded mode and in connect mode against the real `vendorgate serve`.

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const vg = require('..')
const { Gateway, CODES } = vg
const { startSim, startServer, useSimEnv, dbPath, tmpDir, closedPort, charge } = require('../test-support/harness.js')

let sim
let server
const gateways = []

before(async () => {
  ;[sim, server] = await Promise.all([startSim(), startServer()])
  useSimEnv(sim.url)
})

after(async () => {
  for (const g of gateways) await g.close()
  await Promise.all([sim?.stop(), server?.stop()])
})

/** Assert `promise` rejects with a gateway error of `code` (and the right class and status). */
async function rejectsWith(promise, code, extra = {}) {
  const err = await promise.then(
    (v) => assert.fail(`expected ${code}, got a result: ${require('node:util').inspect(v)}`),
    (e) => e,
  )
  assert.ok(err instanceof vg.VendorgateError, `expected a VendorgateError with ${code}, got ${err && err.stack}`)
  assert.ok(err instanceof Error)
  assert.equal(err.code, code, err.message)
  assert.ok(CODES.includes(err.code))
  assert.equal(typeof err.message, 'string')
  assert.ok(err.message.length > 10)
  for (const [k, v] of Object.entries(extra)) assert.deepEqual(err[k], v, `${k} of ${code}`)
  return err
}

const modes = {
  embedded: async () => {
    const g = await Gateway.open(dbPath('errors'))
    gateways.push(g)
    return g
  },
  connect: async () => Gateway.connect(server.url, { adminToken: server.adminToken }),
}

for (const [mode, make] of Object.entries(modes)) {
  describe(`${mode} mode`, () => {
    let gw
    before(async () => {
      gw = await make()
      assert.equal(gw.mode, mode)
    })

    test('unknown_key: a vault key the gateway never issued', async () => {
      const c = gw.client('vk_' + 'A'.repeat(43), { vendor: 'stripe' })
      const err = await rejectsWith(c.request('GET', '/v1/balance'), 'unknown_key', { status: 401 })
      assert.ok(err instanceof vg.UnknownKey)
      assert.ok(err instanceof vg.Unauthorized)
      // Without { vendor }, the gateway decides from the key (here: it does not know it).
      await rejectsWith(gw.client('vk_' + 'A'.repeat(43)).request('GET', '/v1/balance'), 'unknown_key', { status: 401 })
    })

    test('key_revoked', async () => {
      const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 5, allowedEndpoints: ['GET /v1/balance'] })
      await gw.revoke(key)
      const err = await rejectsWith(gw.client(key).request('GET', '/v1/balance'), 'key_revoked', { status: 401, keyId: key.keyId })
      assert.ok(err instanceof vg.KeyRevoked)
      assert.ok(err instanceof vg.Unauthorized)
    })

    test('key_expired', async () => {
      const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 5, allowedEndpoints: ['GET /v1/balance'], expiresIn: 1 })
      await new Promise((r) => setTimeout(r, 1100))
      const err = await rejectsWith(gw.client(key).request('GET', '/v1/balance'), 'key_expired', { status: 401 })
      assert.ok(err instanceof vg.KeyExpired)
      assert.ok(err instanceof vg.Unauthorized)
      assert.ok(err instanceof vg.Denied)
    })

    test('endpoint_not_allowed', async () => {
      const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 5, allowedEndpoints: ['POST /v1/charges'] })
      const err = await rejectsWith(gw.client(key).request('POST', '/v1/refunds', { form: { charge: 'ch_1' } }), 'endpoint_not_allowed', { status: 403, keyId: key.keyId })
      assert.ok(err instanceof vg.EndpointNotAllowed)
      assert.match(err.message, /\/v1\/refunds/)
      // Default deny: a key with no allowlist may call nothing.
      const none = await gw.issueKey({ vendor: 'stripe', maxUsd: 5 })
      await rejectsWith(gw.client(none).request('GET', '/v1/balance'), 'endpoint_not_allowed')
    })

    test('spend_cap_exceeded with capUsd and spentUsd', async () => {
      const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 25, allowedEndpoints: ['POST /v1/charges'] })
      const c = gw.client(key)
      await c.request('POST', '/v1/charges', { form: charge(20) })
      const err = await rejectsWith(c.request('POST', '/v1/charges', { form: charge(10) }), 'spend_cap_exceeded', {
        status: 402,
        keyId: key.keyId,
        capUsd: '25.00',
        spentUsd: '20.00',
        estimateUsd: '10.00',
        window: 'run',
      })
      assert.ok(err instanceof vg.SpendCapExceeded)
      // A key with no cap at all moves no money.
      const capless = await gw.issueKey({ vendor: 'stripe', allowedEndpoints: ['POST /v1/charges'] })
      await rejectsWith(gw.client(capless).request('POST', '/v1/charges', { form: charge(1) }), 'spend_cap_exceeded', { capUsd: '0.00' })
    })

    test('duplicate_request: an idempotency key reused for a different request', async () => {
      const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 50, allowedEndpoints: ['POST /v1/charges'] })
      const c = gw.client(key)
      await c.request('POST', '/v1/charges', { form: charge(5), idempotencyKey: `dup-${mode}` })
      const err = await rejectsWith(c.request('POST', '/v1/charges', { form: charge(7), idempotencyKey: `dup-${mode}` }), 'duplicate_request', { status: 409 })
      assert.ok(err instanceof vg.DuplicateRequest)
      assert.equal((await gw.usage(key)).spentUsd, '5.00')
    })

    test('BadRequest: a path that cannot be checked (bad_path), a call that cannot be priced (cannot_price), a method override (bad_request)', async () => {
      const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 50, allowedEndpoints: ['POST /v1/charges', 'GET /v1/**'] })
      const c = gw.client(key)
      const badPath = await rejectsWith(c.request('GET', '/v1/charges%2F..%2Fbalance'), 'bad_path', { status: 400, reason: 'bad_path' })
      assert.ok(badPath instanceof vg.BadRequest)
      const unpriced = await rejectsWith(c.request('POST', '/v1/charges', { form: { amount: 500, currency: 'xts', source: 'tok_visa' } }), 'cannot_price', { status: 400, reason: 'cannot_price' })
      assert.ok(unpriced instanceof vg.BadRequest)
      await rejectsWith(c.request('POST', '/v1/charges', { form: charge(1), headers: { 'X-HTTP-Method-Override': 'DELETE' } }), 'bad_request', { reason: 'bad_request' })
    })

    test('upstream_error: the vendor connection breaks', async () => {
      const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 50, allowedEndpoints: ['POST /v1/charges'] })
      const c = gw.client(key)
      const err = await rejectsWith(c.request('POST', '/v1/charges', { form: charge(4), headers: { 'X-Sim-Fault': 'reset' } }), 'upstream_error', { status: 502 })
      assert.ok(err instanceof vg.UpstreamError)
      // Nothing proves the charge did not happen: it stays counted.
      const u = await gw.usage(key)
      assert.equal(u.remainingUsd, '46.00')
    })

    test('unauthorized: a wrong admin token', async () => {
      let url = server.url
      if (mode === 'embedded') url = await gw.serve({ adminToken: 'right-token' })
      const wrong = await Gateway.connect(url, { adminToken: 'wrong-token' })
      const err = await rejectsWith(wrong.issueKey({ vendor: 'stripe' }), 'unauthorized', { status: 401 })
      assert.ok(err instanceof vg.Unauthorized)
      await rejectsWith(wrong.listKeys(), 'unauthorized')
    })

    test('not_found: revoking or reading a key that does not exist', async () => {
      const err = await rejectsWith(gw.revoke('key_000000000000000000000000'), 'not_found', { status: 404 })
      assert.ok(err instanceof vg.NotFound)
      await rejectsWith(gw.usage('key_000000000000000000000000'), 'not_found')
    })

    test('ConfigError: serve() needs an embedded gateway (config_error); a vendor with no credentials (vendor_not_configured); a bad environment', async () => {
      if (mode === 'connect') {
        const err = await rejectsWith(gw.serve(), 'config_error')
        assert.ok(err instanceof vg.ConfigError)
        return
      }
      const saved = process.env.RESEND_API_KEY
      delete process.env.RESEND_API_KEY
      let bare
      try {
        bare = await Gateway.open(dbPath('no-resend'))
      } finally {
        process.env.RESEND_API_KEY = saved
      }
      const key = await bare.issueKey({ vendor: 'resend', maxUsd: 1, allowedEndpoints: ['POST /emails'] })
      const err = await rejectsWith(bare.client(key).request('POST', '/emails', { json: { from: 'a@example.com', to: 'b@example.com', subject: 's', text: 't' } }), 'vendor_not_configured', { status: 503, reason: 'vendor_not_configured' })
      assert.ok(err instanceof vg.ConfigError)
      // A bad URL in the environment is a ConfigError; the same in `config` is a bad argument.
      const savedUrl = process.env.VENDORGATE_STRIPE_URL
      process.env.VENDORGATE_STRIPE_URL = 'ftp://example.com'
      try {
        const bad = await rejectsWith(Gateway.open(dbPath('bad-env-url')), 'config_error')
        assert.ok(bad instanceof vg.ConfigError)
      } finally {
        process.env.VENDORGATE_STRIPE_URL = savedUrl
      }
      await assert.rejects(Gateway.open(dbPath('bad-url'), { stripe: { url: 'ftp://example.com' } }), (e) => {
        assert.ok(e instanceof RangeError, String(e))
        assert.equal(e.code, 'invalid_input')
        assert.equal(e.field, 'config')
        assert.match(e.message, /stripe\.url/)
        return true
      })
    })
  })
}

test('connect mode: upstream_error when the server cannot be reached', async () => {
  const port = await closedPort()
  const gw = await Gateway.connect(`http://127.0.0.1:${port}`, { adminToken: 't' })
  await rejectsWith(gw.issueKey({ vendor: 'stripe' }), 'upstream_error')
  await rejectsWith(gw.client('vk_' + 'B'.repeat(43), { vendor: 'stripe' }).request('GET', '/v1/balance'), 'upstream_error')
})

test('embedded mode: upstream_error when the vendor is down (nothing sent, nothing counted)', async () => {
  const port = await closedPort()
  const gw = await Gateway.open(dbPath('down'), { stripe: { url: `http://127.0.0.1:${port}` } })
  const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 10, allowedEndpoints: ['POST /v1/charges'] })
  await rejectsWith(gw.client(key).request('POST', '/v1/charges', { form: charge(4) }), 'upstream_error', { status: 502 })
  assert.equal((await gw.usage(key)).remainingUsd, '10.00')
})

test('embedded mode: upstream_error on a vendor timeout keeps the reservation counted', async () => {
  const gw = await Gateway.open(dbPath('timeout'), { requestTimeoutMs: 1000 })
  const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 10, allowedEndpoints: ['POST /v1/charges'] })
  // While the call waits on the vendor, Node's event loop keeps running.
  let ticks = 0
  const timer = setInterval(() => ticks++, 10)
  const started = Date.now()
  const err = await rejectsWith(gw.client(key).request('POST', '/v1/charges', { form: charge(3), headers: { 'X-Sim-Fault': 'timeout' } }), 'upstream_error', { status: 504 })
  clearInterval(timer)
  const waited = Date.now() - started
  assert.ok(waited >= 900 && waited < 10000, `waited ${waited} ms`)
  assert.ok(ticks >= waited / 10 / 3, `only ${ticks} timer ticks in ${waited} ms: the event loop was blocked`)
  assert.match(err.message, /did not answer in time/)
  assert.equal((await gw.usage(key)).remainingUsd, '7.00')
})

test('embedded mode: store_error when the database cannot be used', async () => {
  const dir = tmpDir()
  await rejectsWith(Gateway.open(`${dir}/no/such/dir/x.db`), 'store_error', { status: 503 })
  const notADb = `${dir}/not-a-db.db`
  fs.writeFileSync(notADb, 'this is not a SQLite database, just text that is long enough to have a header '.repeat(100))
  const err = await Gateway.open(notADb).then(
    async (g) => g.issueKey({ vendor: 'stripe' }),
    (e) => e,
  )
  assert.ok(err instanceof vg.StoreError, String(err))
  assert.equal(err.code, 'store_error')
})
