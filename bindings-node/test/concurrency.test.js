'use strict'
// Many concurrent requests racing one cap: exactly as many pass as the cap allows, in both
// modes. Each call is $100 against a $500 cap, so exactly 5 of 40 may go through.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { Gateway } = require('..')
const { startSim, startServer, useSimEnv, dbPath, charge } = require('../test-support/harness.js')

let sim
let server

before(async () => {
  ;[sim, server] = await Promise.all([startSim(), startServer()])
  useSimEnv(sim.url)
})

after(async () => {
  await Promise.all([sim?.stop(), server?.stop()])
})

async function race(gw) {
  // 40 identical charges race the cap, not the duplicate guard (which has tests of its own).
  const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 500, allowedEndpoints: ['POST /v1/charges'], duplicateWindow: 0 })
  const c = gw.client(key)
  const results = await Promise.allSettled(
    Array.from({ length: 40 }, (_, i) => c.request('POST', '/v1/charges', { form: charge(100, { description: `call ${i}` }) })),
  )
  const ok = results.filter((r) => r.status === 'fulfilled')
  const refused = results.filter((r) => r.status === 'rejected')
  for (const r of ok) assert.equal(r.value.status, 200, r.value.text)
  for (const r of refused) assert.equal(r.reason.code, 'spend_cap_exceeded', String(r.reason))
  assert.equal(ok.length, 5)
  assert.equal(refused.length, 35)
  const u = await gw.usage(key)
  assert.equal(u.spentUsd, '500.00')
  assert.equal(u.remainingUsd, '0.00')
  assert.equal(u.reservedUsd, '0.00')
  const rows = await gw.audit({ keyId: key.keyId, limit: 100 })
  assert.equal(rows.filter((r) => r.decision === 'forwarded').length, 5)
  assert.equal(rows.filter((r) => r.decision === 'spend_cap_exceeded').length, 35)
}

test('embedded: 40 concurrent $100 charges against a $500 cap → exactly 5 succeed', async () => {
  await race(await Gateway.open(dbPath('race')))
})

test('connect: 40 concurrent $100 charges against a $500 cap → exactly 5 succeed', async () => {
  await race(await Gateway.connect(server.url, { adminToken: server.adminToken }))
})

test('embedded: two gateways on one database file share the cap', async () => {
  const file = dbPath('shared')
  const [a, b] = [await Gateway.open(file), await Gateway.open(file)]
  const key = await a.issueKey({ vendor: 'stripe', maxUsd: 300, allowedEndpoints: ['POST /v1/charges'], duplicateWindow: 0 })
  const calls = []
  for (let i = 0; i < 10; i++) calls.push((i % 2 ? a : b).client(key).request('POST', '/v1/charges', { form: charge(100) }))
  const results = await Promise.allSettled(calls)
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 3)
  assert.equal((await b.usage(key)).spentUsd, '300.00')
})
