'use strict'
// Budgets shared by many keys, in both modes: the keys' calls together stay under the budget's
// caps, the refusal names the budget, and a key can only join a budget that exists.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
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

for (const mode of ['embedded', 'connect']) {
  test(`${mode}: two keys share a $150 budget`, async () => {
    const gw = mode === 'embedded' ? await Gateway.open(dbPath('budgets')) : await Gateway.connect(server.url, { adminToken: server.adminToken })
    const name = `team-${crypto.randomBytes(4).toString('hex')}`
    const b = await gw.createBudget({ name, maxUsd: 150 })
    assert.equal(b.maxUsd, '150.00')
    const spec = { vendor: 'stripe', maxUsd: 500, allowedEndpoints: ['POST /v1/charges'], budgets: [name] }
    const [k1, k2] = [await gw.issueKey(spec), await gw.issueKey(spec)]
    assert.deepEqual(k1.policy.budgets, [name])
    await gw.client(k1).request('POST', '/v1/charges', { form: charge(100) })
    await assert.rejects(gw.client(k2).request('POST', '/v1/charges', { form: charge(100) }), (e) => {
      assert.equal(e.code, 'spend_cap_exceeded')
      assert.match(e.message, new RegExp(name))
      return true
    })
    const st = await gw.budget(name)
    assert.equal(st.totalUsd, '100.00')
    assert.deepEqual([...st.keys].sort(), [k1.keyId, k2.keyId].sort())
    await assert.rejects(gw.issueKey({ ...spec, budgets: ['no-such-budget'] }), (e) => e.code === 'invalid_input' && /no-such-budget/.test(e.message))
    assert.ok((await gw.budgets()).some((x) => x.name === name))
  })
}

for (const mode of ['embedded', 'connect']) {
  test(`${mode}: alert thresholds round-trip exactly`, async () => {
    const gw = mode === 'embedded' ? await Gateway.open(dbPath('alerts')) : await Gateway.connect(server.url, { adminToken: server.adminToken })
    const name = `warn-${crypto.randomBytes(4).toString('hex')}`
    const b = await gw.createBudget({ name, maxUsd: 100, alertAt: [0.5, '0.95'] })
    assert.deepEqual(b.alertAt, [0.5, 0.95])
    const k = await gw.issueKey({ vendor: 'stripe', maxUsd: 10, alertAt: [0.8, 0.125], budgets: [name] })
    assert.deepEqual(k.policy.alertAt, [0.125, 0.8])
    await assert.rejects(gw.issueKey({ vendor: 'stripe', maxUsd: 10, alertAt: [1.5] }), (e) => e instanceof RangeError && e.field === 'alertAt' && /at most 1/.test(e.message))
    await assert.rejects(gw.issueKey({ vendor: 'stripe', maxUsd: 10, alertAt: 0.5 }), TypeError)
  })
}
