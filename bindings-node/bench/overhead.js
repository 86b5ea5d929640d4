'use strict'
// Per-call cost of `client.request` in embedded mode, next to the same loop run inside Rust.
//
//   node bench/overhead.js [calls=2000]
//
// Every call is a free `GET /v1/balance` through the whole pipeline (authenticate, allowlist,
// price, forward to `vendorgate sim` over loopback HTTP, audit row in SQLite), one after
// another. Three loops over the same gateway and key:
//   rust   — `Handle::request` called from Rust in a loop (the core alone; no JS per call)
//   node   — `client.request()` from JavaScript (core + napi + the JS wrapper per call)
//   direct — Node's fetch straight to the simulator (no gateway; the loopback HTTP floor)
// node − rust is what the binding adds per call.

const os = require('node:os')
const path = require('node:path')
const fs = require('node:fs')
const { Gateway } = require('..')
const { startSim, useSimEnv, SIM } = require('../test-support/harness.js')

const N = Number(process.argv[2] || 2000)

async function main() {
  const sim = await startSim()
  useSimEnv(sim.url)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vendorgate-bench-'))
  try {
    const gw = await Gateway.open(path.join(dir, 'bench.db'))
    const key = await gw.issueKey({ vendor: 'stripe', maxUsd: 1, allowedEndpoints: ['GET /v1/balance'], expiresIn: '1h' })
    const client = gw.client(key)

    const rust = async (n) => (await gw._native.benchRequests(key.vaultKey, 'stripe', 'GET', '/v1/balance', n)) * 1e6
    const node = async (n) => {
      const t = process.hrtime.bigint()
      for (let i = 0; i < n; i++) {
        const r = await client.request('GET', '/v1/balance')
        if (r.status !== 200) throw new Error(`status ${r.status}`)
      }
      return Number(process.hrtime.bigint() - t) / 1e3
    }
    const direct = async (n) => {
      const t = process.hrtime.bigint()
      for (let i = 0; i < n; i++) {
        const r = await fetch(`${sim.url}/stripe/v1/balance`, { headers: { authorization: `Bearer ${SIM.STRIPE_SECRET_KEY}` } })
        await r.arrayBuffer()
        if (r.status !== 200) throw new Error(`status ${r.status}`)
      }
      return Number(process.hrtime.bigint() - t) / 1e3
    }

    // Warm up connections, caches and the JIT.
    await rust(200)
    await node(200)
    await direct(200)

    const rows = []
    for (const round of [1, 2, 3, 4, 5]) {
      for (const [name, fn] of [['rust', rust], ['node', node], ['direct', direct]]) {
        const cpu0 = process.cpuUsage()
        const us = await fn(N)
        const cpu = process.cpuUsage(cpu0)
        rows.push({
          round,
          loop: name,
          calls: N,
          total_ms: +(us / 1e3).toFixed(1),
          us_per_call: +(us / N).toFixed(1),
          // CPU time of this process (all threads) per call: less sensitive than wall time to
          // other load on the machine. The simulator runs in its own process and is not counted.
          cpu_us_per_call: +((cpu.user + cpu.system) / N).toFixed(1),
        })
      }
    }
    console.table(rows)
    const median = (name, col) => {
      const v = rows.filter((r) => r.loop === name).map((r) => r[col]).sort((a, b) => a - b)
      return v[Math.floor(v.length / 2)]
    }
    for (const [col, what] of [['us_per_call', 'wall'], ['cpu_us_per_call', 'CPU']]) {
      const [r, n, d] = [median('rust', col), median('node', col), median('direct', col)]
      console.log(`median ${what} µs per call: rust core ${r}, node client.request ${n}, direct fetch to the sim ${d}; binding overhead (node − rust) ${(n - r).toFixed(1)} µs`)
    }
    await gw.close()
  } finally {
    await sim.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
