'use strict'
// The official stripe-node SDK, unchanged, behind vendorgate: the agent gets a vault key in
// place of its Stripe key and the gateway's URL as host. Everything the SDK does is checked
// against the key's allowlist and cap; a refusal surfaces as an ordinary Stripe error with
// code `vendorgate_<reason>`.
//
//   node stripe-sdk-dropin.js      (uses the offline simulator unless STRIPE_SECRET_KEY is set)

const os = require('node:os')
const path = require('node:path')
const fs = require('node:fs')
const Stripe = require('stripe')
const { Gateway } = require('vendorgate')
const { ensureUpstream } = require('./upstream.js')

async function main() {
  const upstream = await ensureUpstream()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vendorgate-example-'))
  const gw = await Gateway.open(path.join(dir, 'gateway.db'))
  try {
    const url = new URL(await gw.serve({ port: 0 })) // the gateway's HTTP face, in-process
    const key = await gw.issueKey({
      vendor: 'stripe',
      maxUsd: 50,
      allowedEndpoints: ['POST /v1/payment_intents', 'GET /v1/payment_intents/*'],
      expiresIn: '10m',
    })

    // The only change from plain stripe-node: the vault key and the gateway's address.
    const stripe = new Stripe(key.vaultKey, { host: url.hostname, port: Number(url.port), protocol: 'http' })

    const pi = await stripe.paymentIntents.create({ amount: 3000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true })
    console.log(`PaymentIntent ${pi.id}: ${pi.status}, $${(pi.amount / 100).toFixed(2)}`)
    console.log(`  retrieved again: ${(await stripe.paymentIntents.retrieve(pi.id)).status}`)

    let refusal
    try {
      await stripe.paymentIntents.create({ amount: 4000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true })
    } catch (e) {
      refusal = e
      console.log(`second payment refused: ${e.type} ${e.statusCode} ${e.code}\n  ${e.message}`)
    }
    try {
      await stripe.refunds.create({ payment_intent: pi.id })
    } catch (e) {
      console.log(`refund refused (not in the allowlist): ${e.statusCode} ${e.code}`)
    }

    const u = await gw.usage(key)
    console.log(`\nkey usage: spent $${u.spentUsd}, remaining $${u.remainingUsd}`)
    await gw.revoke(key)
    if (!refusal || refusal.code !== 'vendorgate_spend_cap_exceeded' || u.spentUsd !== '30.00') {
      throw new Error('expected one $30 payment and a vendorgate_spend_cap_exceeded refusal')
    }
  } finally {
    await gw.close()
    await upstream.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
