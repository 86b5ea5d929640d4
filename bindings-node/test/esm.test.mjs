// The package loads as an ES module too (index.mjs through the `exports` map).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import vendorgate, { Gateway, SpendCapExceeded, VendorgateError, UnknownKey, KeyRevoked, KeyExpired, CODES } from 'vendorgate'

const require = createRequire(import.meta.url)

test('named and default ESM exports are the CommonJS ones', () => {
  const cjs = require('vendorgate')
  assert.equal(Gateway, cjs.Gateway)
  assert.equal(vendorgate.Gateway, cjs.Gateway)
  assert.equal(typeof Gateway.open, 'function')
  assert.equal(typeof Gateway.connect, 'function')
  assert.ok(SpendCapExceeded.prototype instanceof VendorgateError)
  assert.ok(CODES.includes('spend_cap_exceeded'))
  assert.ok(CODES.includes('cannot_price'))
  assert.ok(CODES.includes('duplicate_action'))
  assert.equal(CODES.length, 20)
  assert.deepEqual([UnknownKey, KeyRevoked, KeyExpired], [cjs.UnknownKey, cjs.KeyRevoked, cjs.KeyExpired])
  assert.ok(UnknownKey.prototype instanceof cjs.Unauthorized)
})
