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
  // `vendorgate-sim listening on URL {"url":…,"env":{…}}`: env is what points a gateway at it.
  const { url, env } = await new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /listening on (http:\/\/\S+)(?: (\{.*\}))?$/.exec(line)
      if (!m) return
      if (m[2]) resolve(JSON.parse(m[2]))
      else reject(new Error(`vendorgate sim printed no environment (an older binary? rebuild it): ${line}`))
    })
    child.on('exit', (code) => reject(new Error(`vendorgate sim exited with ${code}`)))
  })
  Object.assign(process.env, {
    STRIPE_SECRET_KEY: env.STRIPE_SECRET_KEY,
    VENDORGATE_STRIPE_URL: env.VENDORGATE_STRIPE_URL,
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
