'use strict'
// Bad input is refused before anything is sent, as TypeError (wrong type) or RangeError
// (wrong value), with a message that names the argument.

const { test, before } = require('node:test')
const assert = require('node:assert/strict')
const { Gateway } = require('..')
const { dbPath } = require('../test-support/harness.js')

// Secrets are never settings: the config names the variable that holds the Stripe key.
process.env.VG_INPUT_TEST_STRIPE_KEY = 'sk_unused'
const STRIPE = { url: 'http://127.0.0.1:9', secretKeyEnv: 'VG_INPUT_TEST_STRIPE_KEY' }

let gw
let key
before(async () => {
  gw = await Gateway.open(dbPath('input'), { stripe: STRIPE })
  key = await gw.issueKey({ vendor: 'stripe', maxUsd: 10, allowedEndpoints: ['POST /v1/charges'] })
})

function throwsLike(fn, ErrorClass, pattern) {
  return assert.rejects(async () => fn(), (e) => {
    assert.equal(e.constructor, ErrorClass, `expected ${ErrorClass.name}, got ${e && e.stack}`)
    assert.match(e.message, pattern)
    assert.equal(e.code, 'invalid_input')
    return true
  })
}

test('issueKey: the spec is checked field by field', async () => {
  await throwsLike(() => gw.issueKey(), TypeError, /spec.*must be an object/)
  await throwsLike(() => gw.issueKey('stripe'), TypeError, /spec/)
  await throwsLike(() => gw.issueKey({}), TypeError, /vendor.*required/)
  await throwsLike(() => gw.issueKey({ vendor: 3 }), TypeError, /vendor.*string/)
  await throwsLike(() => gw.issueKey({ vendor: 'paypal' }), RangeError, /vendor.*"paypal".*stripe, twilio, resend/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', maxUSD: 5 }), TypeError, /unknown option "maxUSD".*maxUsd/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', max_usd: 5 }), TypeError, /unknown option "max_usd"/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', maxUsd: -1 }), RangeError, /maxUsd.*negative/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', maxUsd: 0.0000001 }), RangeError, /maxUsd.*6 decimal places/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', maxUsd: '1.0000001' }), RangeError, /maxUsd.*6 decimal places/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', maxUsd: 'lots' }), RangeError, /maxUsd.*decimal USD amount/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', maxUsd: NaN }), RangeError, /maxUsd.*finite/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', maxUsd: Infinity }), RangeError, /maxUsd/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', maxUsd: 1e21 }), RangeError, /maxUsd.*too large/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', maxUsd: 2e12 }), RangeError, /maxUsd.*too large|1e12/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', dailyUsdCap: {} }), TypeError, /dailyUsdCap.*number or decimal string/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', allowedEndpoints: 'POST /v1/charges' }), TypeError, /allowedEndpoints.*array/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', allowedEndpoints: [1] }), TypeError, /allowedEndpoints.*item 0/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', allowedEndpoints: ['POST /v1/../x'] }), RangeError, /allowedEndpoints/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', expiresIn: 0 }), RangeError, /expiresIn/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', expiresIn: 1.5 }), RangeError, /expiresIn/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', expiresIn: 'soon' }), RangeError, /expiresIn/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', expiresIn: '400d' }), RangeError, /expiresIn/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', expiresIn: [] }), TypeError, /expiresIn/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', runId: 7 }), TypeError, /runId.*string/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', metadata: 'x' }), TypeError, /metadata.*object/)
  await throwsLike(() => gw.issueKey({ vendor: 'stripe', metadata: [1] }), TypeError, /metadata.*object/)
})

test('money in: numbers through their shortest form, strings exactly, bigint as dollars', async () => {
  const cases = [
    [0.1, '0.10'],
    [19.99, '19.99'],
    [0.000001, '0.000001'],
    ['7.250000', '7.25'],
    [' 3 ', '3.00'],
    [12n, '12.00'],
    [0, '0.00'],
  ]
  for (const [given, shown] of cases) {
    const k = await gw.issueKey({ vendor: 'stripe', maxUsd: given })
    assert.equal(k.policy.maxUsd, shown, `maxUsd ${String(given)}`)
  }
})

test('request: method, path and options are checked', async () => {
  const c = gw.client(key)
  await throwsLike(() => c.request(1, '/v1/charges'), TypeError, /method.*string/)
  await throwsLike(() => c.request('PO ST', '/v1/charges'), RangeError, /method/)
  await throwsLike(() => c.request('POST', 7), TypeError, /path.*string/)
  await throwsLike(() => c.request('POST', 'v1/charges'), RangeError, /path.*must start with \//)
  await throwsLike(() => c.request('POST', '/v1/charges', { from: {} }), TypeError, /unknown option "from"/)
  await throwsLike(() => c.request('POST', '/v1/charges', { form: {}, json: {} }), TypeError, /only one of form, json and body/)
  await throwsLike(() => c.request('POST', '/v1/charges', { form: 'a=b' }), TypeError, /form.*object/)
  await throwsLike(() => c.request('POST', '/v1/charges', { body: 12 }), TypeError, /body.*string, Buffer/)
  await throwsLike(() => c.request('POST', '/v1/charges', { json: () => 1 }), TypeError, /json.*JSON/)
  await throwsLike(() => c.request('POST', '/v1/charges', { headers: 'x' }), TypeError, /headers/)
  await throwsLike(() => c.request('POST', '/v1/charges', { headers: { 'X-A': {} } }), TypeError, /X-A/)
  await throwsLike(() => c.request('POST', '/v1/charges', { headers: { 'bad header': 'v' } }), RangeError, /headers/)
  await throwsLike(() => c.request('POST', '/v1/charges', { idempotencyKey: 5 }), TypeError, /idempotencyKey/)
  await throwsLike(() => c.request('POST', '/v1/charges', 'form'), TypeError, /options.*object/)
})

test('keys, clients, queries and config are checked', async () => {
  await throwsLike(() => gw.revoke(), TypeError, /key/)
  await throwsLike(() => gw.revoke(42), TypeError, /key/)
  await throwsLike(() => gw.usage(''), RangeError, /key.*empty/)
  await throwsLike(() => gw.usage({}), TypeError, /key object has neither keyId nor vaultKey/)
  await throwsLike(() => gw.usage('not a key!'), RangeError, /key/)
  assert.throws(() => gw.client(key.keyId), RangeError)
  assert.throws(() => gw.client({ keyId: key.keyId }), TypeError)
  assert.throws(() => gw.client(key, { vendor: 'paypal' }), RangeError)
  assert.throws(() => gw.client(key, { vendr: 'stripe' }), TypeError)
  await throwsLike(() => gw.audit({ run: 'x' }), TypeError, /unknown option "run"/)
  await throwsLike(() => gw.audit({ since: 'yesterday-ish' }), RangeError, /since/)
  await throwsLike(() => gw.audit({ since: true }), TypeError, /since/)
  await throwsLike(() => gw.audit({ limit: 0 }), RangeError, /limit/)
  await throwsLike(() => gw.audit({ limit: 10001 }), RangeError, /limit/)
  await throwsLike(() => gw.listKeys({ active: 'yes' }), TypeError, /active.*boolean/)
  await throwsLike(() => gw.withRun({ vendor: 'stripe' }), TypeError, /fn.*function/)
  await throwsLike(() => gw.serve({ port: 70000 }), RangeError, /port/)
  await throwsLike(() => gw.serve({ port: '80' }), TypeError, /port/)
  await throwsLike(() => Gateway.open(), TypeError, /path/)
  // Unknown settings keys are refused by the core, by name (camelCase keys are converted first).
  await throwsLike(() => Gateway.open(dbPath(), { stripeURL: 'http://x' }), RangeError, /unknown field `stripe_url`/)
  await throwsLike(() => Gateway.open(dbPath(), { stripeSecretKey: 'sk_x' }), RangeError, /unknown field `stripe_secret_key`/)
  await throwsLike(() => Gateway.open(dbPath(), { stripe: { secretKey: 'sk_x' } }), RangeError, /unknown field `secret_key`/)
  await throwsLike(() => Gateway.open(dbPath(), { maxBodyBytes: -1 }), RangeError, /maxBodyBytes/)
  await throwsLike(() => Gateway.open(dbPath(), { maxBodyBytes: 0 }), RangeError, /max_body_bytes must be positive/)
  await throwsLike(() => Gateway.open(dbPath(), { requestTimeoutMs: '5' }), TypeError, /requestTimeoutMs/)
  await throwsLike(() => Gateway.open(dbPath(), { requestTimeoutMs: NaN }), RangeError, /requestTimeoutMs/)
  await throwsLike(() => Gateway.open(dbPath(), { stripe: { url: 5 } }), TypeError, /stripe\.url/)
  await throwsLike(() => Gateway.open(dbPath(), { stripe: 'http://x' }), TypeError, /stripe must be an object/)
  await throwsLike(() => Gateway.open(dbPath(), { stripe: { secretKeyEnv: 1 } }), TypeError, /stripe\.secretKeyEnv/)
  await throwsLike(() => Gateway.open(dbPath(), 'x'), TypeError, /config must be an object/)
  await throwsLike(() => Gateway.open(dbPath(), { maxBodyBytes: 1, max_body_bytes: 2 }), TypeError, /maxBodyBytes and max_body_bytes/)
  await throwsLike(() => Gateway.open(dbPath(), { pricing: { fx: 'EUR' } }), TypeError, /pricing\.fx/)
  await throwsLike(() => Gateway.open(dbPath(), { pricing: { fx: { EUR: true } } }), TypeError, /pricing\.fx\.EUR/)
  await throwsLike(() => Gateway.open(dbPath(), { pricing: { fx: { EUR: -1 } } }), RangeError, /pricing\.fx\.EUR.*negative/)
  await throwsLike(() => Gateway.open(dbPath(), { pricing: { resendEmailUsd: NaN } }), RangeError, /pricing\.resendEmailUsd/)
  await throwsLike(() => Gateway.open(dbPath(), { pricing: { override: {} } }), TypeError, /pricing\.override/)
  await throwsLike(() => Gateway.open(dbPath(), { pricing: { override: [{ vendor: 'stripe', operation: 'GET /v1/balance', free: 'yes' }] } }), TypeError, /pricing\.override\[0\]\.free/)
  await throwsLike(() => Gateway.open(dbPath(), { pricing: { override: [{ vendor: 'stripe', operation: 'GET /v1/balance' }] } }), RangeError, /override\[0\].*exactly one of/)
  await throwsLike(() => Gateway.connect(), TypeError, /url/)
  await throwsLike(() => Gateway.connect('http://127.0.0.1:1', { token: 'x' }), TypeError, /unknown option "token".*adminToken/)
  assert.throws(() => new Gateway(), TypeError)
})

test('config overrides apply: a smaller maxBodyBytes refuses a larger body', async () => {
  const small = await Gateway.open(dbPath('small'), { maxBodyBytes: 64, stripe: STRIPE })
  const k = await small.issueKey({ vendor: 'stripe', maxUsd: 1, allowedEndpoints: ['POST /v1/charges'] })
  const err = await small.client(k).request('POST', '/v1/charges', { body: 'x'.repeat(100) }).catch((e) => e)
  assert.equal(err.code, 'body_too_large')
  assert.equal(err.reason, 'body_too_large')
  assert.equal(err.status, 413)
  // maxKeyTtlSecs bounds expiresIn.
  const short = await Gateway.open(dbPath('short-ttl'), { maxKeyTtlSecs: 3600, stripe: STRIPE })
  await short.issueKey({ vendor: 'stripe', expiresIn: '1h' })
  await throwsLike(() => short.issueKey({ vendor: 'stripe', expiresIn: '2h' }), RangeError, /expiresIn.*3600/)
})
