'use strict'
// The scenarios of tests/binding-vectors.json, shared with the Python suite so the two
// bindings cannot drift apart. Each runs in embedded mode and in connect mode. The contract
// element (error classes, settings keys, a config scenario, the defaults) is checked below.

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const vg = require('..')
const { Gateway, VendorgateError } = vg
const native = require('../native.js')
const { ERROR_MARKER, CLASS_BY_NAME, convertError } = require('../lib/errors.js')
const { startSim, startServer, useSimEnv, dbPath } = require('../test-support/harness.js')

const VECTORS = path.resolve(__dirname, '..', '..', 'tests', 'binding-vectors.json')
const vectors = JSON.parse(fs.readFileSync(VECTORS, 'utf8'))
const scenarios = vectors.filter((s) => !('_format' in s) && !('contract' in s))
const contract = vectors.find((s) => 'contract' in s).contract

/** The JS class name for a canonical class name of the contract. */
const jsName = (canonical) => (canonical === 'InvalidInput' ? 'RangeError' : canonical)
/** The JS class for a canonical class name. */
const jsClass = (canonical) => {
  const name = jsName(canonical)
  const cls = name === 'RangeError' ? RangeError : vg[name]
  assert.equal(typeof cls, 'function', `vendorgate exports no class ${name}`)
  return cls
}

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
      // `code` is the gateway's reason code (as Python's `.code`); `reason` the same.
      assert.equal(err.code, exp.error, `${where}: ${err.message}`)
      assert.equal(err.reason, exp.error, `${where}: ${err.message}`)
      if (exp.class !== undefined) assert.ok(err instanceof jsClass(exp.class), `${where}: ${err.name} is not a ${jsName(exp.class)}`)
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

// ---- the contract element ----------------------------------------------------------------------

/** An error as the native layer throws it, for `reason` at `status`, converted by lib/errors.js. */
function fromReason(reason, status) {
  const body = { class: native.classOfReason(reason, status), reason, status, message: `a ${reason} refusal`, details: {} }
  return convertError(new Error(ERROR_MARKER + JSON.stringify(body)))
}

/** The parent of a JS class, by its JS name (null: the package's base error, or Error for RangeError). */
function parentName(cls) {
  const p = Object.getPrototypeOf(cls)
  return p === VendorgateError || p === Error ? null : p.name
}

describe('contract', () => {
  test('error_classes: every reason raises the class of the contract, with its parent', () => {
    const reasons = Object.keys(contract.error_classes)
    // The native reason list is the contract's, and CODES is that list.
    assert.deepEqual(native.reasonClassesJs().map(([r]) => r).sort(), [...reasons].sort())
    assert.deepEqual([...vg.CODES].sort(), [...reasons].sort())
    for (const [reason, canonical] of Object.entries(contract.error_classes)) {
      const cls = jsClass(canonical)
      assert.equal(native.classOfReason(reason, 400), jsName(canonical), reason)
      assert.deepEqual(native.reasonClassesJs().find(([r]) => r === reason), [reason, jsName(canonical)])
      const err = fromReason(reason, 400)
      assert.ok(err instanceof cls, `${reason}: ${err.name} is not a ${cls.name}`)
      assert.equal(err.constructor, cls, reason)
      const parent = contract.class_parents[canonical]
      if (parent) assert.ok(err instanceof jsClass(parent), `${reason}: not a ${parent}`)
      if (cls === RangeError) {
        assert.equal(err.code, 'invalid_input')
      } else {
        assert.ok(err instanceof VendorgateError, reason)
        assert.equal(err.code, reason)
        assert.equal(err.reason, reason)
        assert.equal(err.status, 400)
      }
    }
  })

  test('class_parents: the JS class tree is the contract and the native errorClasses()', () => {
    const tree = native.errorClasses()
    assert.deepEqual(tree.map(([name]) => name).sort(), Object.keys(CLASS_BY_NAME).sort())
    for (const [name, parent] of tree) {
      const cls = CLASS_BY_NAME[name]
      assert.equal(cls.name, name)
      assert.equal(parentName(cls), parent ?? null, name)
      if (name === 'RangeError') {
        assert.equal(cls, RangeError)
        continue
      }
      assert.equal(vg[name], cls, `vendorgate exports ${name}`)
      assert.ok(cls.prototype instanceof VendorgateError, name)
    }
    const canonical = new Set([...Object.values(contract.error_classes), ...Object.keys(contract.class_parents), ...Object.values(contract.class_parents)])
    for (const c of canonical) {
      assert.equal(parentName(jsClass(c)), contract.class_parents[c] ? jsName(contract.class_parents[c]) : null, c)
    }
  })

  test('unknown_reason: a reason this version does not know is classed by status', () => {
    for (const row of contract.unknown_reason) {
      assert.equal(native.classOfReason(row.reason, row.status), jsName(row.class), JSON.stringify(row))
      const err = fromReason(row.reason, row.status)
      assert.equal(err.constructor, jsClass(row.class), JSON.stringify(row))
      assert.equal(err.code, row.reason)
      assert.equal(err.status, row.status)
    }
  })

  test('settings_keys: the native settings keys are the contract', () => {
    assert.deepEqual(native.settingsKeys().map(([key]) => key), contract.settings_keys)
  })

  // Settings keys → camelCase at the struct levels; the keys of tables (currency codes,
  // calling codes, "1:local") stay as they are.
  const TABLES = new Set(['twilio_sms', 'fx', 'twilio_call_minute_usd_by_prefix', 'twilio_number_monthly_usd'])
  const camelSettings = (v) => {
    if (Array.isArray(v)) return v.map(camelSettings)
    if (v === null || typeof v !== 'object') return v
    return Object.fromEntries(Object.entries(v).map(([k, val]) => [camel(k), TABLES.has(k) ? val : camelSettings(val)]))
  }

  test('config: camelCase settings open a gateway that runs the steps', async () => {
    const c = contract.config
    const settings = camelSettings(c.settings)
    assert.ok('requestTimeoutMs' in settings && 'resendEmailUsd' in settings.pricing, JSON.stringify(settings))
    const gw = await Gateway.open(dbPath('contract-config'), settings)
    await runScenario(gw, { name: 'contract config', vendor: c.vendor, key: c.key, steps: c.steps })
    // The table's keys passed unchanged: EUR is at the configured rate.
    const rate = c.settings.pricing.fx.EUR
    const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 100, allowedEndpoints: ['POST /v1/payment_intents'] })
    const r = await gw.client(key).request('POST', '/v1/payment_intents', {
      form: { amount: 1000, currency: 'eur', confirm: true, payment_method: 'pm_card_visa' },
    })
    assert.equal(r.status, 200, r.text)
    sameUsd(r.costUsd, String(10 * Number(rate)), 'EUR payment')
  })

  test('config: each rejected config is a RangeError naming the key', async () => {
    for (const r of contract.config.rejected) {
      for (const settings of [r.settings, camelSettings(r.settings)]) {
        await assert.rejects(Gateway.open(dbPath('contract-rejected'), settings), (e) => {
          assert.equal(e.constructor, jsClass('InvalidInput'), `${JSON.stringify(settings)}: ${e && e.stack}`)
          assert.equal(e.code, 'invalid_input')
          assert.equal(e.field, r.field)
          assert.ok(e.message.includes(r.message_has), `${JSON.stringify(settings)}: ${e.message}`)
          return true
        })
      }
    }
  })

  for (const mode of ['embedded', 'connect']) {
    test(`audit_default_limit: audit() with no limit returns more than 100 rows (${mode})`, async () => {
      assert.equal(native.auditDefaultLimit(), contract.audit_default_limit)
      const gw = mode === 'embedded' ? await Gateway.open(dbPath('contract-audit')) : await Gateway.connect(server.url, { adminToken: server.adminToken })
      const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 1, allowedEndpoints: ['POST /v1/charges'] })
      const c = gw.client(key)
      const n = 120
      for (let i = 0; i < n; i++) {
        await assert.rejects(c.get('/v1/balance'), { code: 'endpoint_not_allowed' })
      }
      const rows = await gw.audit()
      assert.ok(rows.length >= n && rows.length <= contract.audit_default_limit, `${rows.length} rows`)
      assert.equal(rows.filter((row) => row.keyId === key.keyId).length, n)
      assert.equal((await gw.audit({ keyId: key.keyId, limit: 100 })).length, 100)
    })
  }

  test('serve_twice: a second serve() on one gateway returns the same URL', async () => {
    assert.equal(contract.serve_twice, 'same_url')
    const gw = await Gateway.open(dbPath('contract-serve'))
    const first = await gw.serve({ port: 0 })
    const second = await gw.serve({ port: 0 })
    assert.equal(second, first)
    const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 1, allowedEndpoints: ['GET /v1/balance'] })
    const r = await fetch(`${second}/v1/balance`, { headers: { authorization: `Bearer ${key.vaultKey}` } })
    assert.equal(r.status, 200)
    await gw.close()
    await assert.rejects(fetch(`${first}/v1/balance`))
    // After close(), serve() starts a new server.
    const third = await gw.serve({ port: 0 })
    assert.equal((await fetch(`${third}/v1/balance`, { headers: { authorization: `Bearer ${key.vaultKey}` } })).status, 200)
    await gw.close()
  })

  test('connect_admin_token_env: connect() without adminToken reads the variable', async () => {
    const name = contract.connect_admin_token_env
    assert.equal(name, 'VENDORGATE_ADMIN_TOKEN')
    const saved = process.env[name]
    try {
      process.env[name] = server.adminToken
      const gw = await Gateway.connect(server.url)
      const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 1 })
      assert.match(key.keyId, /^key_/)
      process.env[name] = 'not-the-token'
      const wrong = await Gateway.connect(server.url)
      await assert.rejects(wrong.issueKey({ vendor: 'stripe' }), (e) => e instanceof vg.Unauthorized && e.code === 'unauthorized')
      // An explicit adminToken wins over the variable.
      await (await Gateway.connect(server.url, { adminToken: server.adminToken })).issueKey({ vendor: 'stripe' })
    } finally {
      if (saved === undefined) delete process.env[name]
      else process.env[name] = saved
    }
  })
})
