'use strict'
// Where the examples' vendor calls go. With real credentials in the environment
// (STRIPE_SECRET_KEY=sk_test_…) they go to Stripe's test mode. Without, the examples start the
// offline simulator that ships in the `vendorgate` binary (`vendorgate sim`) and point the
// embedded gateway at it, so they run anywhere with nothing to sign up for.

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const readline = require('node:readline')

async function ensureUpstream() {
  if (process.env.STRIPE_SECRET_KEY) return { stop: async () => {} }
  const bin = process.env.VENDORGATE_BIN || path.resolve(__dirname, '..', '..', 'target', 'debug', 'vendorgate')
  if (!fs.existsSync(bin)) {
    throw new Error(`set STRIPE_SECRET_KEY (a Stripe test key), or build the simulator: cargo build -p vendorgate-server (looked for ${bin})`)
  }
  const child = spawn(bin, ['sim', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const url = await new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /listening on (http:\/\/\S+)/.exec(line)
      if (m) resolve(m[1])
    })
    child.on('exit', (code) => reject(new Error(`vendorgate sim exited with ${code}`)))
  })
  Object.assign(process.env, {
    STRIPE_SECRET_KEY: 'sk_test_vendorgate_sim_51XyZ',
    VENDORGATE_STRIPE_URL: `${url}/stripe`,
  })
  console.log(`(no STRIPE_SECRET_KEY: using the offline simulator at ${url})\n`)
  return {
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', resolve)
        child.kill('SIGTERM')
      }),
  }
}

module.exports = { ensureUpstream }
