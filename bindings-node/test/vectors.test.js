'use strict'
// The scenarios of tests/binding-vectors.json, shared with the Python suite so the two
// bindings cannot drift apart. Each runs in embedded mode and in connect mode.

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Gateway, VendorgateError } = require('..')
const { startSim, startServer, useSimEnv, dbPath } = require('../test-support/harness.js')

const VECTORS = path.resolve(__dirname, '..', '..', 'tests', 'binding-vectors.json')
const scenarios = JSON.parse(fs.readFileSync(VECTORS, 'utf8')).filter((s) => !('_format' in s))

/** Decimal USD text → micro-USD as a BigInt, so "100" equals "100.00". */
function micros(text) {
  const [int, frac = ''] = String(text).split('.')
  assert.ok(/^\d+$/.test(int) && /^\d{0,6}$/.test(frac.replace(/0+$/, '')), `not a decimal amount: ${text}`)
  return BigInt(int) * 1000000n + BigInt((frac.replace(/0+$/, '') + '000000').slice(0, 6))
}
const sameUsd = (actual, expected, what) => assert.equal(micros(actual), micros(expected), `${what}: ${actual} != ${expected}`)

const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase())
const fill = (v, saved) => (typeof v === 'string' ? v.replace(/\{(\w+)\}/g, (_, n) => {
  assert.ok(n in saved, `placeholder {${n}} not saved`)
  return saved[n]
}) : v)

async function runScenario(gw, sc) {
  const spec = { vendor: sc.vendor }
  for (const [k, v] of Object.entries(sc.key)) spec[camel(k)] = v
  const key = await gw.issueKey(spec)
  const client = gw.client(key)
  const saved = {}
  for (const [i, step] of sc.steps.entries()) {
    const where = `${sc.name}, step ${i + 1}`
    if (step.action === 'revoke') {
      await gw.revoke(key)
      continue
    }
    if (step.action === 'usage') {
      const u = await gw.usage(key)
      for (const [k, v] of Object.entries(step.expect)) {
        const got = u[camel(k)]
        if (k.endsWith('_usd')) sameUsd(got, v, `${where} ${k}`)
        else assert.deepEqual(got, v, `${where} ${k}`)
      }
      continue
    }
    assert.ok(step.method && step.path, `${where}: unknown step ${JSON.stringify(step)}`)
    const opts = {}
    if (step.form !== undefined) opts.form = step.form
    if (step.json !== undefined) opts.json = step.json
    if (step.idempotency_key !== undefined) opts.idempotencyKey = step.idempotency_key
    const pending = client.request(step.method, fill(step.path, saved), opts)
    const exp = step.expect
    if (exp.error) {
      const err = await pending.then(
        (r) => assert.fail(`${where}: expected ${exp.error}, got HTTP ${r.status} ${r.text}`),
        (e) => e,
      )
      assert.ok(err instanceof VendorgateError, `${where}: ${err && err.stack}`)
      // `reason` is the gateway's reason code (Python's `.code`); Node's `.code` folds
      // bad_path/cannot_price/body_too_large into bad_request.
      assert.equal(err.reason, exp.error, `${where}: ${err.message}`)
      if (exp.status !== undefined) assert.equal(err.status, exp.status, where)
      assert.equal(err.keyId, key.keyId)
      continue
    }
    const r = await pending
    assert.equal(r.status, exp.status, `${where}: ${r.text}`)
    if (exp.cost_usd !== undefined) sameUsd(r.costUsd, exp.cost_usd, `${where} cost`)
    const body = r.json()
    for (const [k, v] of Object.entries(exp.json || {})) assert.deepEqual(body[k], fill(v, saved), `${where} json.${k}`)
    for (const [name, field] of Object.entries(step.save || {})) saved[name] = body[field]
  }
}

let sim
let server
before(async () => {
  ;[sim, server] = await Promise.all([startSim(), startServer()])
  useSimEnv(sim.url)
})
after(async () => {
  await Promise.all([sim?.stop(), server?.stop()])
})

test('the shared vectors file has scenarios', () => {
  assert.ok(scenarios.length >= 5, `${scenarios.length} scenarios in ${VECTORS}`)
})

for (const mode of ['embedded', 'connect']) {
  describe(`vectors, ${mode} mode`, () => {
    let gw
    before(async () => {
      gw = mode === 'embedded' ? await Gateway.open(dbPath('vectors')) : await Gateway.connect(server.url, { adminToken: server.adminToken })
    })
    for (const sc of scenarios) {
      test(sc.name, () => runScenario(gw, sc))
    }
  })
}
