'use strict'
// serve() on an embedded gateway, driven by the official Stripe, Twilio and Resend Node SDKs.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { Gateway } = require('..')
const { startSim, useSimEnv, dbPath, SIM } = require('../test-support/harness.js')

let sim
let gw
let url

before(async () => {
  sim = await startSim()
  useSimEnv(sim.url)
  gw = await Gateway.open(dbPath('sdk'))
  url = await gw.serve({ port: 0 })
})

after(async () => {
  await gw?.close()
  await sim?.stop()
})

test('stripe-node: charges go through the gateway; a refusal is a Stripe error', async () => {
  const Stripe = require('stripe')
  const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 30, allowedEndpoints: ['POST /v1/charges', 'GET /v1/charges/*'] })
  const { port } = new URL(url)
  const stripe = new Stripe(key.vaultKey, { host: '127.0.0.1', port: Number(port), protocol: 'http', maxNetworkRetries: 2 })

  const ch = await stripe.charges.create({ amount: 2000, currency: 'usd', source: 'tok_visa', description: 'sdk test' })
  assert.equal(ch.object, 'charge')
  assert.equal(ch.amount, 2000)
  assert.equal((await stripe.charges.retrieve(ch.id)).id, ch.id)

  const err = await stripe.charges.create({ amount: 1500, currency: 'usd', source: 'tok_visa' }).catch((e) => e)
  assert.ok(err instanceof Stripe.errors.StripeError, String(err))
  assert.equal(err.code, 'vendorgate_spend_cap_exceeded')
  assert.equal(err.statusCode, 402)
  assert.match(err.message, /spend cap/)

  const u = await gw.usage(key)
  assert.equal(u.spentUsd, '20.00')
  // The SDK retries idempotent requests with the same Idempotency-Key; the sim saw the real key.
  const seen = (await sim.seen()).filter((s) => s.vendor === 'stripe')
  assert.ok(seen.length >= 2)
  for (const s of seen) assert.equal(s.authorization, `Bearer ${SIM.STRIPE_SECRET_KEY}`)
  // Not allowed: listing customers.
  const denied = await stripe.customers.list().catch((e) => e)
  assert.equal(denied.code, 'vendorgate_endpoint_not_allowed')
  assert.equal(denied.statusCode, 403)
})

test('twilio-node: an SMS through the gateway; a refusal is a RestException', async () => {
  const twilio = require('twilio')
  const key = await gw.issueKey({ vendor: 'twilio', maxUsd: '0.01', allowedEndpoints: ['POST /2010-04-01/Accounts/*/Messages.json'] })
  const client = twilio('AC' + '0'.repeat(32), key.vaultKey)
  client.api.baseUrl = url + '/twilio'

  const msg = await client.messages.create({ to: '+15551230000', from: '+15550009999', body: 'hi from the agent' })
  assert.match(msg.sid, /^SM/)
  assert.equal(msg.body, 'hi from the agent')

  const err = await client.messages.create({ to: '+15551230000', from: '+15550009999', body: 'one more' }).catch((e) => e)
  assert.equal(err.status, 402, String(err))
  assert.equal(err.code, 'vendorgate_spend_cap_exceeded')
  assert.match(err.message, /spend cap/)

  const u = await gw.usage(key)
  // Twilio answers 'queued' without a price: the estimate stays counted as pending.
  assert.equal(u.spentUsd, '0.00')
  assert.ok(Number(u.pendingUsd) > 0 && Number(u.totalUsd) <= 0.01, JSON.stringify(u))
  const seen = (await sim.seen()).filter((s) => s.vendor === 'twilio')
  assert.ok(seen.every((s) => !s.authorization.includes(key.vaultKey)))
})

test('resend-node: an email through the gateway; a refusal is a Resend error', async () => {
  const { Resend } = require('resend')
  const key = await gw.issueKey({ vendor: 'resend', maxUsd: '0.001', allowedEndpoints: ['POST /emails'] })
  const resend = new Resend(key.vaultKey, { baseUrl: url + '/resend' })

  const sent = await resend.emails.send({ from: 'agent@example.com', to: 'someone@example.com', subject: 'Hello', text: 'hi' })
  assert.equal(sent.error, null, JSON.stringify(sent.error))
  assert.ok(sent.data.id)

  const origError = console.error
  console.error = () => {} // resend-node logs failed calls
  let refused
  try {
    refused = await resend.emails.send({ from: 'agent@example.com', to: 'someone@example.com', subject: 'Again', text: 'hi' })
  } finally {
    console.error = origError
  }
  assert.equal(refused.data, null)
  assert.equal(refused.error.name, 'vendorgate_spend_cap_exceeded')
  assert.equal(refused.error.statusCode, 402)
  assert.equal((await gw.usage(key)).spentUsd, '0.0009')
})

test('resend-node: RESEND_BASE_URL works too', async () => {
  const key = await gw.issueKey({ vendor: 'resend', maxUsd: '0.01', allowedEndpoints: ['POST /emails'] })
  const saved = process.env.RESEND_BASE_URL
  process.env.RESEND_BASE_URL = url + '/resend'
  try {
    const { Resend } = require('resend')
    const r = await new Resend(key.vaultKey).emails.send({ from: 'a@example.com', to: ['b@example.com', 'c@example.com'], subject: 's', text: 't' })
    assert.equal(r.error, null, JSON.stringify(r.error))
  } finally {
    if (saved === undefined) delete process.env.RESEND_BASE_URL
    else process.env.RESEND_BASE_URL = saved
  }
  assert.equal((await gw.usage(key)).spentUsd, '0.0018')
})
