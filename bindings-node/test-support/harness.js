'use strict'
// Shared test plumbing: the real `vendorgate` binary as vendor simulator and as server.
// Lives outside test/ so `node --test test/` does not run it as a test file.

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')

const BIN = process.env.VENDORGATE_BIN
  ? path.resolve(process.env.VENDORGATE_BIN)
  : path.resolve(__dirname, '..', '..', 'target', 'debug', 'vendorgate')

/**
 * Credentials the simulator accepts (sim/credentials.json), by the environment variable the
 * gateway reads each from: { STRIPE_SECRET_KEY, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, RESEND_API_KEY }.
 */
const SIM = (() => {
  const c = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'sim', 'credentials.json'), 'utf8'))
  return Object.fromEntries(Object.entries(c.env).map(([name, field]) => [name, c[field]]))
})()

const children = new Set()
process.on('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL')
    } catch {}
  }
})

/** Start the binary with `args`; resolve with the URL from its first `… listening on URL` line. */
function startBinary(args, env = {}) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`vendorgate binary not found at ${BIN}: run \`cargo build -p vendorgate-server\` or set VENDORGATE_BIN`)
  }
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, {
      env: { ...process.env, RUST_LOG: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.add(child)
    let stderr = ''
    child.stderr.on('data', (d) => {
      stderr += d
      if (stderr.length > 20000) stderr = stderr.slice(-20000)
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${path.basename(BIN)} ${args.join(' ')} printed no URL within 30 s; stderr:\n${stderr}`))
    }, 30000)
    const lines = readline.createInterface({ input: child.stdout })
    lines.on('line', (line) => {
      const m = /listening on (http:\/\/\S+)/.exec(line)
      if (m) {
        clearTimeout(timer)
        resolve({
          url: m[1],
          child,
          stop: () => stop(child),
        })
      }
    })
    child.on('exit', (code) => {
      children.delete(child)
      clearTimeout(timer)
      reject(new Error(`${path.basename(BIN)} ${args.join(' ')} exited with ${code}; stderr:\n${stderr}`))
    })
  })
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 3000).unref()
  })
}

/** `vendorgate sim` on a free port. `seen()` lists the requests it received. */
async function startSim() {
  const p = await startBinary(['sim', '--listen', '127.0.0.1:0'])
  return {
    ...p,
    async seen() {
      const r = await fetch(`${p.url}/__sim/seen`)
      return r.json()
    },
    async reset() {
      await fetch(`${p.url}/__sim/reset`, { method: 'POST' })
    },
  }
}

/** `vendorgate serve --upstream sim` on a free port with its own database and admin token. */
async function startServer({ adminToken = 'test-admin-token-' + process.pid } = {}) {
  const db = path.join(tmpDir(), 'server.db')
  const p = await startBinary(['serve', '--listen', '127.0.0.1:0', '--db', db, '--upstream', 'sim'], {
    VENDORGATE_ADMIN_TOKEN: adminToken,
  })
  return { ...p, adminToken, db }
}

/** Point the embedded gateway (Gateway.open reads the environment) at a simulator. */
function useSimEnv(simUrl) {
  Object.assign(process.env, SIM, {
    VENDORGATE_STRIPE_URL: `${simUrl}/stripe`,
    VENDORGATE_TWILIO_URL: `${simUrl}/twilio`,
    VENDORGATE_RESEND_URL: `${simUrl}/resend`,
  })
}

let tmp
function tmpDir() {
  if (!tmp) {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vendorgate-node-test-'))
    process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }))
  }
  return tmp
}

let dbCounter = 0
function dbPath(name = 'gw') {
  return path.join(tmpDir(), `${name}-${++dbCounter}.db`)
}

/** A free TCP port nobody listens on (bound then released). */
async function closedPort() {
  const net = require('node:net')
  return new Promise((resolve) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** A Stripe charge form for `usd` whole dollars. */
function charge(usd, extra = {}) {
  return { amount: Math.round(usd * 100), currency: 'usd', source: 'tok_visa', ...extra }
}

module.exports = { BIN, SIM, startBinary, startSim, startServer, useSimEnv, tmpDir, dbPath, closedPort, charge }
