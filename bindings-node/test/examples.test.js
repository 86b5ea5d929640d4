'use strict'
// examples/node run as smoke tests: each exits non-zero when the behaviour it shows is missing.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { BIN } = require('../test-support/harness.js')

const dir = path.resolve(__dirname, '..', '..', 'examples', 'node')

function run(file) {
  assert.ok(
    fs.existsSync(path.join(dir, 'node_modules', 'stripe')) && fs.existsSync(path.join(dir, 'node_modules', 'vendorgate')),
    `run \`npm install --ignore-scripts\` in ${dir} first (run-tests.sh does)`,
  )
  const env = { ...process.env, VENDORGATE_BIN: BIN }
  for (const k of ['STRIPE_SECRET_KEY', 'VENDORGATE_STRIPE_URL']) delete env[k]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60000)
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    })
  })
}

test('examples/node/runaway-agent.js: the cap stops the loop after 4 charges', async () => {
  const { code, out } = await run('runaway-agent.js')
  assert.equal(code, 0, out)
  assert.match(out, /attempt {2}5: REFUSED \(spend_cap_exceeded/)
  assert.match(out, /spent \$100\.00 of \$100\.00/)
  assert.match(out, /revoked after the run: true/)
})

test('examples/node/stripe-sdk-dropin.js: stripe-node works unchanged behind the gateway', async () => {
  const { code, out } = await run('stripe-sdk-dropin.js')
  assert.equal(code, 0, out)
  assert.match(out, /succeeded, \$30\.00/)
  assert.match(out, /vendorgate_spend_cap_exceeded/)
  assert.match(out, /403 vendorgate_endpoint_not_allowed/)
})
