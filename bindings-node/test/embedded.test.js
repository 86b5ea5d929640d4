'use strict'
// Embedded mode: the pipeline in this process, the real simulator binary as upstream.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { Gateway, VaultKey, SpendCapExceeded, Unauthorized } = require('..')
const { startSim, useSimEnv, dbPath, charge, SIM } = require('../test-support/harness.js')

let sim
let gw

before(async () => {
  sim = await startSim()
  useSimEnv(sim.url)
  gw = await Gateway.open(dbPath())
})

after(async () => {
  await gw?.close()
  await sim?.stop()
})

test('issueKey returns the key, its policy and money as decimal strings', async () => {
  const key = await gw.issueKey({
    vendor: 'stripe',
    maxUsd: 50,
    dailyUsdCap: '20.5',
    allowedEndpoints: ['POST /v1/charges'],
    expiresIn: '15m',
    runId: 'run-issue',
    metadata: { agent: 'billing-bot', nested_key: 1 },
  })
  assert.ok(key instanceof VaultKey)
  assert.match(key.vaultKey, /^vk_[A-Za-z0-9_-]{43,}$/)
  assert.match(key.keyId, /^key_/)
  assert.equal(key.vendor, 'stripe')
  assert.equal(key.runId, 'run-issue')
  assert.deepEqual(key.metadata, { agent: 'billing-bot', nested_key: 1 })
  assert.deepEqual(key.policy, {
    vendor: 'stripe',
    maxUsd: '50.00',
    dailyUsdCap: '20.50',
    allowedEndpoints: ['POST /v1/charges'],
    stripeAccounts: [],
    duplicateWindowSecs: null,
    budgets: [],
    alertAt: [],
  })
  const ttl = Date.parse(key.expiresAt) - Date.now()
  assert.ok(ttl > 14 * 60e3 && ttl <= 15 * 60e3, `expiresAt ${key.expiresAt}`)
  // The vault key does not show up when the key is logged.
  assert.ok(!require('node:util').inspect(key).includes(key.vaultKey.slice(3)))
})

test('a Stripe charge is forwarded with the real key, priced, and counted', async () => {
  const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 50, allowedEndpoints: ['POST /v1/charges'], runId: 'run-charge' })
  const stripe = gw.client(key)
  const r = await stripe.request('POST', '/v1/charges', { form: charge(20, { metadata: { order: 'o-1' } }) })
  assert.equal(r.status, 200)
  assert.equal(r.ok, true)
  assert.equal(r.costUsd, '20.00')
  assert.equal(r.remainingUsd, '30.00')
  const body = r.json()
  assert.equal(body.object, 'charge')
  assert.equal(body.amount, 2000)
  assert.equal(body.metadata.order, 'o-1')
  assert.equal(r.headers['vendorgate-cost-usd'], '20.00')
  assert.equal(typeof r.text, 'string')

  const u = await gw.usage(key)
  assert.equal(u.spentUsd, '20.00')
  assert.equal(u.remainingUsd, '30.00')
  assert.equal(u.pendingUsd, '0.00')
  assert.equal(u.reservedUsd, '0.00')
  assert.equal(u.todayUsd, '20.00')
  assert.equal(u.revoked, false)
  assert.equal(u.expiresAt, key.expiresAt)

  // The vendor saw the real credential, never the vault key.
  const seen = (await sim.seen()).filter((s) => s.path === '/v1/charges')
  assert.ok(seen.length >= 1)
  for (const s of seen) {
    assert.equal(s.authorization, `Bearer ${SIM.STRIPE_SECRET_KEY}`)
    assert.ok(!JSON.stringify(s).includes(key.vaultKey))
  }
})

test('a confirmed PaymentIntent is priced from its amount and currency', async () => {
  const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 100, allowedEndpoints: ['POST /v1/payment_intents'] })
  const r = await gw.client(key).request('POST', '/v1/payment_intents', {
    form: { amount: 1000, currency: 'eur', confirm: true, payment_method: 'pm_card_visa' },
  })
  assert.equal(r.status, 200, r.text)
  assert.equal(r.json().status, 'succeeded')
  assert.equal(r.costUsd, '11.00') // 10 EUR at the default 1.10 rate
})

test('config: camelCase settings keys are converted, table keys (currency codes) are not', async () => {
  const eur = await Gateway.open(dbPath('fx'), { requestTimeoutMs: 30000, pricing: { fx: { EUR: 1.5 }, resendEmailUsd: 0.001 } })
  const key = await eur.issueKey({ vendor: 'stripe', maxUsd: 100, allowedEndpoints: ['POST /v1/payment_intents'] })
  const r = await eur.client(key).request('POST', '/v1/payment_intents', {
    form: { amount: 1000, currency: 'eur', confirm: true, payment_method: 'pm_card_visa' },
  })
  assert.equal(r.status, 200, r.text)
  assert.equal(r.costUsd, '15.00') // 10 EUR at the configured 1.5
  const mail = await eur.issueKey({ vendor: 'resend', maxUsd: 1, allowedEndpoints: ['POST /emails'] })
  const m = await eur.client(mail).request('POST', '/emails', { json: { from: 'a@example.com', to: ['b@example.com', 'c@example.com'], subject: 's', text: 't' } })
  assert.equal(m.costUsd, '0.002')
})

test('Twilio: Basic auth with the vault key, SID rewritten, cost from the answer', async () => {
  const key = await gw.issueKey({ vendor: 'twilio', maxUsd: 1, allowedEndpoints: ['POST /2010-04-01/Accounts/*/Messages.json'] })
  const r = await gw.client(key).request('POST', '/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json', {
    form: { To: '+15551234567', From: '+15550001111', Body: 'hello from the agent' },
  })
  assert.ok(r.status === 200 || r.status === 201, r.text)
  assert.equal(r.json().body, 'hello from the agent')
  assert.ok(Number(r.costUsd) > 0, r.costUsd)
  const seen = (await sim.seen()).filter((s) => s.vendor === 'twilio' && s.method === 'POST')
  const last = seen[seen.length - 1]
  assert.match(last.path, new RegExp(`/Accounts/${SIM.TWILIO_ACCOUNT_SID}/Messages.json`))
  const basic = Buffer.from(SIM.TWILIO_ACCOUNT_SID + ':' + SIM.TWILIO_AUTH_TOKEN).toString('base64')
  assert.equal(last.authorization, `Basic ${basic}`)
})

test('Resend: a JSON body, priced per recipient', async () => {
  const key = await gw.issueKey({ vendor: 'resend', maxUsd: '0.01', allowedEndpoints: ['POST /emails'] })
  const r = await gw.client(key).request('POST', '/emails', {
    json: { from: 'agent@example.com', to: ['a@example.com', 'b@example.com'], subject: 'Hi', text: 'hello' },
  })
  assert.equal(r.status, 200, r.text)
  assert.ok(r.json().id)
  assert.equal(r.costUsd, '0.0018')
  assert.equal((await gw.usage(key)).spentUsd, '0.0018')
})

test('a key can be named by object, key id or vault key', async () => {
  const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 5, allowedEndpoints: ['GET /v1/balance'] })
  for (const ref of [key, key.keyId, key.vaultKey]) {
    const u = await gw.usage(ref)
    assert.equal(u.keyId, key.keyId)
  }
  // A client from the bare vault key: the gateway takes the vendor from the key.
  const c = gw.client(key.vaultKey)
  const r = await c.get('/v1/balance')
  assert.equal(r.status, 200)
  assert.equal(r.costUsd, '0.00')
  assert.equal(c.vendor, null)
  await gw.revoke(key.keyId)
  assert.equal((await gw.usage(key.vaultKey)).revoked, true)
})

test('audit rows are camelCase and filter by run, key and since', async () => {
  const runId = 'run-audit-' + Date.now()
  const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 30, allowedEndpoints: ['POST /v1/charges'], runId })
  const c = gw.client(key)
  const t0 = new Date()
  await c.request('POST', '/v1/charges', { form: charge(10), idempotencyKey: 'idem-audit-1' })
  await assert.rejects(c.request('POST', '/v1/charges', { form: charge(25) }), { code: 'spend_cap_exceeded' })
  await assert.rejects(c.request('GET', '/v1/balance'), { code: 'endpoint_not_allowed' })

  const rows = await gw.audit({ runId })
  assert.equal(rows.length, 3)
  const [ok, capped, denied] = rows // oldest first
  assert.equal(ok.decision, 'forwarded')
  assert.equal(ok.status, 200)
  assert.equal(ok.upstreamStatus, 200)
  assert.equal(ok.costUsd, '10.00')
  assert.equal(ok.estimateUsd, '10.00')
  assert.equal(ok.keyId, key.keyId)
  assert.equal(ok.runId, runId)
  assert.equal(ok.vendor, 'stripe')
  assert.equal(ok.method, 'POST')
  assert.equal(ok.endpoint, '/v1/charges')
  assert.equal(ok.idempotencyKey, 'idem-audit-1')
  assert.equal(typeof ok.latencyMs, 'number')
  assert.ok('upstreamLatencyMs' in ok && 'moneyState' in ok && 'vendorRequestId' in ok)
  // The forwarded call reserved money: its ledger row; the refusals reserved none.
  assert.equal(typeof ok.spendId, 'number')
  assert.deepEqual([capped.spendId, denied.spendId], [null, null])
  assert.equal(capped.decision, 'spend_cap_exceeded')
  assert.equal(capped.status, 402)
  assert.equal(denied.decision, 'endpoint_not_allowed')
  assert.equal(denied.status, 403)
  for (const row of rows) assert.ok(!Object.keys(row).some((k) => k.includes('_')), Object.keys(row).join())

  assert.equal((await gw.audit({ keyId: key.keyId, limit: 2 })).length, 2)
  assert.equal((await gw.audit({ keyId: key })).length, 3)
  assert.equal((await gw.audit({ runId, since: t0 })).length, 3)
  assert.equal((await gw.audit({ runId, since: Date.now() + 60e3 })).length, 0)
  assert.equal((await gw.audit({ runId, since: new Date(Date.now() + 60e3).toISOString() })).length, 0)
})

test('listKeys filters by run and by active', async () => {
  const runId = 'run-list-' + Date.now()
  const a = await gw.issueKey({ vendor: 'stripe', runId })
  const b = await gw.issueKey({ vendor: 'resend', runId })
  await gw.revoke(a)
  const all = await gw.listKeys({ runId })
  assert.deepEqual(all.map((k) => k.keyId).sort(), [a.keyId, b.keyId].sort())
  const active = await gw.listKeys({ runId, active: true })
  assert.deepEqual(active.map((k) => k.keyId), [b.keyId])
  assert.equal(active[0].active, true)
  assert.equal(active[0].spentUsd, '0.00')
  assert.ok(!('vaultKey' in active[0]))
})

test('withRun revokes the key when the run returns', async () => {
  let seen
  const out = await gw.withRun({ vendor: 'stripe', maxUsd: 10, allowedEndpoints: ['POST /v1/charges'] }, async (key) => {
    seen = key
    assert.match(key.runId, /^run_/)
    const r = await gw.client(key).request('POST', '/v1/charges', { form: charge(3) })
    return r.costUsd
  })
  assert.equal(out, '3.00')
  const u = await gw.usage(seen)
  assert.equal(u.revoked, true)
  assert.equal(u.spentUsd, '3.00')
  await assert.rejects(gw.client(seen).request('POST', '/v1/charges', { form: charge(1) }), { code: 'key_revoked' })
})

test('withRun revokes the key when the run throws, and rethrows', async () => {
  let seen
  const boom = new Error('agent crashed')
  await assert.rejects(
    gw.withRun({ vendor: 'stripe', maxUsd: 10, allowedEndpoints: ['POST /v1/charges'], runId: 'run-throws' }, async (key) => {
      seen = key
      await gw.client(key).request('POST', '/v1/charges', { form: charge(2) })
      throw boom
    }),
    (e) => e === boom,
  )
  assert.equal(seen.runId, 'run-throws')
  assert.equal((await gw.usage(seen)).revoked, true)
  await assert.rejects(gw.client(seen).request('POST', '/v1/charges', { form: charge(1) }), (e) => {
    assert.ok(e instanceof Unauthorized)
    assert.equal(e.code, 'key_revoked')
    assert.equal(e.status, 401)
    assert.equal(e.keyId, seen.keyId)
    return true
  })
})

test('Symbol.asyncDispose on a key revokes it (await using)', async () => {
  const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 1 })
  assert.equal(typeof key[Symbol.asyncDispose], 'function')
  await key[Symbol.asyncDispose]()
  assert.equal((await gw.usage(key)).revoked, true)
  await key.revoke() // twice is fine
})

test('a spend cap refusal carries the figures as decimal strings', async () => {
  const key = await gw.issueKey({ vendor: 'stripe', maxUsd: '12.5', allowedEndpoints: ['POST /v1/charges'] })
  const c = gw.client(key)
  await c.request('POST', '/v1/charges', { form: charge(10) })
  const err = await c.request('POST', '/v1/charges', { form: charge(3) }).catch((e) => e)
  assert.ok(err instanceof SpendCapExceeded, String(err))
  assert.ok(err instanceof Error)
  assert.equal(err.code, 'spend_cap_exceeded')
  assert.equal(err.status, 402)
  assert.equal(err.keyId, key.keyId)
  assert.equal(err.capUsd, '12.50')
  assert.equal(err.spentUsd, '10.00')
  assert.equal(err.estimateUsd, '3.00')
  assert.equal(err.window, 'run')
  assert.match(err.message, /spend cap/)
  // A cheaper call still fits.
  const ok = await c.request('POST', '/v1/charges', { form: charge(2.5) })
  assert.equal(ok.remainingUsd, '0.00')
})

test('daily caps are enforced too', async () => {
  const key = await gw.issueKey({ vendor: 'stripe', dailyUsdCap: 5, allowedEndpoints: ['POST /v1/charges'] })
  const c = gw.client(key)
  await c.request('POST', '/v1/charges', { form: charge(4) })
  const err = await c.request('POST', '/v1/charges', { form: charge(2) }).catch((e) => e)
  assert.equal(err.code, 'spend_cap_exceeded')
  assert.equal(err.window, 'daily')
  assert.equal(err.capUsd, '5.00')
})

test('an idempotent retry is one spend, not two', async () => {
  const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 10, allowedEndpoints: ['POST /v1/charges'] })
  const c = gw.client(key)
  const a = await c.request('POST', '/v1/charges', { form: charge(6), idempotencyKey: 'order-42' })
  const b = await c.request('POST', '/v1/charges', { form: charge(6), idempotencyKey: 'order-42' })
  assert.equal(a.json().id, b.json().id)
  assert.equal((await gw.usage(key)).spentUsd, '6.00')
})

test('raw bodies and extra headers are forwarded', async () => {
  const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 10, allowedEndpoints: ['POST /v1/charges'] })
  const r = await gw.client(key).request('POST', '/v1/charges', {
    body: 'amount=150&currency=usd&source=tok_visa',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Trace': 'abc' },
  })
  assert.equal(r.status, 200, r.text)
  assert.equal(r.costUsd, '1.50')
})

test('vendor errors come back as responses, not exceptions', async () => {
  const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 10, allowedEndpoints: ['POST /v1/charges'] })
  const r = await gw.client(key).request('POST', '/v1/charges', { form: { amount: 100, currency: 'usd' } })
  assert.equal(r.status, 400)
  assert.equal(r.ok, false)
  assert.equal(r.json().error.param, 'source')
  assert.equal((await gw.usage(key)).spentUsd, '0.00')
})

test('serve() exposes the embedded gateway over HTTP and close() stops it', async () => {
  const url = await gw.serve({ port: 0 })
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
  const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 5, allowedEndpoints: ['GET /v1/balance'] })
  const r = await fetch(`${url}/v1/balance`, { headers: { authorization: `Bearer ${key.vaultKey}` } })
  assert.equal(r.status, 200)
  assert.equal(r.headers.get('vendorgate-cost-usd'), '0.00')
  await gw.close()
  await assert.rejects(fetch(`${url}/v1/balance`))
})
