// Compiled (never run) by `tsc --noEmit -p test/tsconfig.json`: the shipped index.d.ts must
// describe the API as documented, and reject obvious misuse.
import {
  Gateway,
  VaultKey,
  KeyUsage,
  AuditRow,
  VendorResponse,
  VendorgateError,
  SpendCapExceeded,
  Unauthorized,
  UnknownKey,
  KeyRevoked,
  BadRequest,
  GatewayConfig,
  ErrorCode,
  CODES,
  Usd,
} from 'vendorgate'
import vendorgateDefault = require('vendorgate')

async function main(): Promise<void> {
  const config: GatewayConfig = {
    stripe: { url: 'http://127.0.0.1:1/stripe', secretKeyEnv: 'MY_STRIPE_KEY' },
    twilio: { url: new URL('http://127.0.0.1:1/twilio'), accountSidEnv: 'SID', authTokenEnv: 'TOKEN' },
    maxBodyBytes: 1024,
    requestTimeoutMs: 5000,
    maxKeyTtlSecs: 86400,
    pricing: {
      resendEmailUsd: 0.002,
      fx: { EUR: '1.2' },
      twilioNumberMonthlyUsd: { '1:local': '1.15' },
      override: [{ vendor: 'stripe', operation: 'POST /v1/things', free: true }, { vendor: 'twilio', operation: 'GET /x', priceUsd: '0.5' }],
    },
  }
  const gw: Gateway = await Gateway.open('./vendorgate.db', config)
  const remote: Gateway = await Gateway.connect('http://127.0.0.1:8080', { adminToken: 't' })
  const mode: 'embedded' | 'connect' = remote.mode

  const key: VaultKey = await gw.issueKey({
    vendor: 'stripe',
    maxUsd: 50,
    dailyUsdCap: '20.50',
    allowedEndpoints: ['POST /v1/charges'],
    expiresIn: '15m',
    runId: 'run-1',
    metadata: { agent: 'a' },
  })
  const vaultKey: string = key.vaultKey
  const maxUsd: Usd | null = key.policy.maxUsd
  await key[Symbol.asyncDispose]()

  const u: KeyUsage = await gw.usage(key)
  const spent: string = u.spentUsd
  const figures: string[] = [u.pendingUsd, u.reservedUsd, u.todayUsd, u.remainingUsd]
  await gw.usage(key.keyId)
  await gw.revoke(key.vaultKey)

  const rows: AuditRow[] = await gw.audit({ runId: 'run-1', since: new Date(), limit: 10 })
  const decision: string = rows[0].decision
  const keys: KeyUsage[] = await gw.listKeys({ runId: 'run-1', active: true })

  const n: number = await gw.withRun({ vendor: 'twilio', maxUsd: '1' }, async (k) => {
    const r: VendorResponse = await gw.client(k).request('POST', '/2010-04-01/Accounts/AC0/Messages.json', {
      form: { To: '+15550000000', Body: 'hi' },
      headers: { 'X-Trace': '1' },
      idempotencyKey: 'idem-1',
    })
    const cost: string = r.costUsd
    const left: string | null = r.remainingUsd
    const body: { sid: string } = r.json()
    const text: string = r.text
    return r.status
  })

  const url: string = await gw.serve({ port: 0, adminToken: 'x' })
  await gw.close()

  try {
    await gw.client(key).request('POST', '/v1/charges', { json: { amount: 1 } })
  } catch (e) {
    if (e instanceof SpendCapExceeded) {
      const cap: string = e.capUsd
      const s: string = e.spentUsd
      const c: 'spend_cap_exceeded' = e.code
    } else if (e instanceof KeyRevoked) {
      const c: 'key_revoked' = e.code
      const u: Unauthorized = e
    } else if (e instanceof UnknownKey) {
      const c: 'missing_key' | 'unknown_key' = e.code
    } else if (e instanceof BadRequest) {
      const c: 'bad_path' | 'bad_request' | 'cannot_price' | 'body_too_large' = e.code
    } else if (e instanceof VendorgateError) {
      const code: ErrorCode = e.code
      const status: number | null = e.status
      const id: string | null = e.keyId
    }
  }
  const all: readonly ErrorCode[] = CODES
  const same: typeof Gateway = vendorgateDefault.Gateway

  // @ts-expect-error: vendor must be one of the three
  await gw.issueKey({ vendor: 'paypal' })
  // @ts-expect-error: unknown option
  await gw.issueKey({ vendor: 'stripe', maxUSD: 5 })
  // @ts-expect-error: config keys are checked
  await Gateway.open('x.db', { stripeURL: 'http://x' })
  // @ts-expect-error: the old flat keys are gone (secrets are never settings)
  await Gateway.open('x.db', { stripeSecretKey: 'sk_x' })
  // @ts-expect-error: durations are in the unit their name ends with
  await Gateway.open('x.db', { requestTimeoutSecs: 5 })
  // @ts-expect-error: money out is a string, not a number
  const wrong: number = u.spentUsd
  // @ts-expect-error: the constructor is private
  new Gateway()
  void [mode, vaultKey, maxUsd, spent, figures, decision, keys, n, url, all, same, wrong]
}

void main
