// End to end: the `vendorgate` binary in front of its simulator, driven by the official Node
// SDKs for Stripe, Twilio and Resend with only base URL and key changed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Stripe from 'stripe';
import twilio from 'twilio';
import { Resend } from 'resend';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.VENDORGATE_BIN || path.join(root, 'target', 'debug', 'vendorgate');
const ADMIN = 'e2e-node-admin-9a7b';

// Resolves with the URL after `prefix` on the first stdout line and `info`, the JSON object
// after it if any (`vendorgate sim`: { url, env }, env being what points a gateway at it).
function start(args, env, prefix) {
  return new Promise((resolve, reject) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(STRIPE_|TWILIO_|RESEND_|VENDORGATE_)/.test(k)));
    const child = spawn(BIN, args, { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr.resume();
    const rl = createInterface({ input: child.stdout });
    rl.once('line', (line) => {
      if (!line.startsWith(prefix)) return reject(new Error(line));
      const rest = line.slice(prefix.length);
      const space = rest.indexOf(' ');
      if (space < 0) return resolve({ child, url: rest, info: {} });
      resolve({ child, url: rest.slice(0, space), info: JSON.parse(rest.slice(space + 1)) });
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited ${code}`)));
  });
}

let sim, gw;
before(async () => {
  sim = await start(['sim', '--listen', '127.0.0.1:0'], {}, 'vendorgate-sim listening on ');
  const dir = mkdtempSync(path.join(tmpdir(), 'vg-e2e-'));
  // The simulator's credentials and URLs, as it printed them.
  gw = await start(['serve', '--listen', '127.0.0.1:0', '--db', path.join(dir, 'gw.db')], {
    VENDORGATE_ADMIN_TOKEN: ADMIN,
    ...sim.info.env,
  }, 'vendorgate listening on ');
});
after(() => {
  gw?.child.kill('SIGTERM');
  sim?.child.kill('SIGTERM');
});

async function issue(spec) {
  const r = await fetch(`${gw.url}/v1/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(spec) });
  assert.equal(r.status, 201);
  return r.json();
}

async function seenAuth() {
  const rows = await (await fetch(`${sim.url}/__sim/seen`)).json();
  return rows.map((r) => r.authorization || '');
}

function assertNoVaultKeyUpstream(auths) {
  for (const a of auths) {
    const decoded = a.startsWith('Basic ') ? Buffer.from(a.slice(6), 'base64').toString() : '';
    assert.ok(!a.includes('vk_') && !decoded.includes('vk_'), a);
  }
}

test('stripe-node (host/port, no path prefix): charge, then refusal as a Stripe error', async () => {
  const key = await issue({ vendor: 'stripe', max_usd: '30', allowed_endpoints: ['POST /v1/payment_intents'] });
  const { hostname, port } = new URL(gw.url);
  const stripe = new Stripe(key.vault_key, { host: hostname, port: Number(port), protocol: 'http', maxNetworkRetries: 0 });
  const pi = await stripe.paymentIntents.create({ amount: 2500, currency: 'usd', confirm: true, payment_method: 'pm_card_visa' });
  assert.equal(pi.status, 'succeeded');
  // The same charge again is a repeat (the duplicate guard), another one is over the cap.
  await assert.rejects(stripe.paymentIntents.create({ amount: 2500, currency: 'usd', confirm: true, payment_method: 'pm_card_visa' }), (e) => {
    assert.equal(e.statusCode, 409);
    assert.equal(e.code, 'vendorgate_duplicate_action');
    return true;
  });
  await assert.rejects(stripe.paymentIntents.create({ amount: 2600, currency: 'usd', confirm: true, payment_method: 'pm_card_visa' }), (e) => {
    assert.equal(e.statusCode, 402);
    assert.equal(e.code, 'vendorgate_spend_cap_exceeded');
    return true;
  });
  await assert.rejects(stripe.refunds.create({ payment_intent: pi.id }), (e) => e.statusCode === 403 && e.code === 'vendorgate_endpoint_not_allowed');
  assertNoVaultKeyUpstream(await seenAuth());
});

test('twilio-node: message, then refusal as a RestException', async () => {
  const key = await issue({ vendor: 'twilio', max_usd: '0.01', allowed_endpoints: ['POST /2010-04-01/Accounts/*/Messages.json'] });
  const client = twilio('AC' + '2'.repeat(32), key.vault_key);
  client.api.baseUrl = `${gw.url}/twilio`;
  const msg = await client.messages.create({ to: '+14155550100', from: '+14155550199', body: 'hi' });
  assert.equal(msg.status, 'queued');
  await assert.rejects(client.messages.create({ to: '+14155550100', from: '+14155550199', body: 'again' }), (e) => {
    assert.equal(e.status, 402);
    assert.equal(e.code, 'vendorgate_spend_cap_exceeded');
    return true;
  });
  assertNoVaultKeyUpstream(await seenAuth());
});

test('resend-node: email, then refusal in the { error } result', async () => {
  const key = await issue({ vendor: 'resend', max_usd: '0.001', allowed_endpoints: ['POST /emails'] });
  const resend = new Resend(key.vault_key, { baseUrl: `${gw.url}/resend` });
  const ok = await resend.emails.send({ from: 'a@example.com', to: 'b@example.com', subject: 's', text: 't' });
  assert.equal(ok.error, null);
  assert.ok(ok.data.id);
  const again = await resend.emails.send({ from: 'a@example.com', to: 'b@example.com', subject: 's', text: 't' });
  assert.equal(again.data, null);
  assert.equal(again.error.name, 'vendorgate_duplicate_action');
  const refused = await resend.emails.send({ from: 'a@example.com', to: 'b@example.com', subject: 's', text: 'another' });
  assert.equal(refused.data, null);
  assert.equal(refused.error.name, 'vendorgate_spend_cap_exceeded');
  assertNoVaultKeyUpstream(await seenAuth());
});
