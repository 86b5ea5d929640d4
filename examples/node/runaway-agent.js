'use strict'
// A runaway agent: a buggy retry loop that keeps charging a customer $25. Its vault key has a
// $100 cap for the run, so the gateway refuses the 5th charge before Stripe ever sees it — the
// agent cannot spend a cent more, whatever its loop does. The key is revoked when the run ends.
// (The key turns the duplicate guard off to show the cap: with the default 10-minute
// duplicateWindow the 2nd identical charge would already be refused, code duplicate_action.)
//
//   node runaway-agent.js          (uses the offline simulator unless STRIPE_SECRET_KEY is set)

const os = require('node:os')
const path = require('node:path')
const fs = require('node:fs')
const { Gateway } = require('vendorgate')
const { ensureUpstream } = require('./upstream.js')

async function main() {
  const upstream = await ensureUpstream()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vendorgate-example-'))
  try {
    const gw = await Gateway.open(path.join(dir, 'gateway.db'))
    const runId = `runaway-${Date.now()}`
    let charged = 0
    let refused = null

    await gw.withRun(
      { vendor: 'stripe', maxUsd: 100, allowedEndpoints: ['POST /v1/charges'], expiresIn: '10m', runId, duplicateWindow: 0 },
      async (key) => {
        const stripe = gw.client(key) // the agent only ever holds key.vaultKey, never sk_…
        for (let attempt = 1; attempt <= 50; attempt++) {
          try {
            const r = await stripe.request('POST', '/v1/charges', {
              form: { amount: 2500, currency: 'usd', source: 'tok_visa', description: `retry #${attempt}` },
            })
            charged += 1
            console.log(`attempt ${String(attempt).padStart(2)}: HTTP ${r.status}, cost $${r.costUsd}, $${r.remainingUsd} left on the key`)
          } catch (e) {
            if (e.code !== 'spend_cap_exceeded') throw e
            refused = e
            console.log(`attempt ${String(attempt).padStart(2)}: REFUSED (${e.code}, cap $${e.capUsd}, counted $${e.spentUsd})`)
            break // a real agent would see this error from its tool call
          }
        }
        const u = await gw.usage(key)
        console.log(`\nspent $${u.spentUsd} of $${u.policy.maxUsd}; remaining $${u.remainingUsd}`)
      },
    )

    console.log('\naudit log of the run:')
    const rows = await gw.audit({ runId })
    console.table(rows.map((r) => ({ time: r.time.slice(11, 23), endpoint: `${r.method} ${r.endpoint}`, decision: r.decision, status: r.status, cost: r.costUsd })))

    const [key] = await gw.listKeys({ runId })
    console.log(`key ${key.keyId} revoked after the run: ${key.revoked}`)
    // The example doubles as a smoke test: fail loudly if the brake did not fire.
    if (charged !== 4 || !refused || !key.revoked) {
      throw new Error(`expected 4 charges then a refusal and a revoked key; got ${charged} charges, refused=${!!refused}, revoked=${key.revoked}`)
    }
  } finally {
    await upstream.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
