'use strict'
// Arguments in, results out: type checks that throw TypeError (and RangeError for what only
// JavaScript can get wrong: NaN, Infinity), and the conversions between JavaScript's shapes
// and the core's (camelCase ↔ snake_case, numbers → exact decimal text). Values themselves
// (amounts, durations, allowlists, settings) are validated by the core, whose RangeError
// names the field in camelCase.

const util = require('node:util')
const native = require('./addon.js')
const { camel, typeError, rangeError } = require('./errors.js')

function typeName(v) {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  return typeof v === 'object' ? `an object (${v.constructor?.name ?? 'Object'})` : `${typeof v} ${util.inspect(v)}`
}

function isPlainObject(v) {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

/** Check an options object: a plain object (or undefined) with only `known` keys. */
function options(what, v, known) {
  if (v === undefined || v === null) return {}
  if (!isPlainObject(v)) throw typeError(what, `must be an object, got ${typeName(v)}`)
  for (const k of Object.keys(v)) {
    if (!known.includes(k)) {
      throw typeError(what, `unknown option ${JSON.stringify(k)}; known options are ${known.join(', ')}`)
    }
  }
  return v
}

function optString(field, v) {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw typeError(field, `must be a string, got ${typeName(v)}`)
  return v
}

function nonEmptyString(field, v) {
  if (typeof v !== 'string') throw typeError(field, `must be a string, got ${typeName(v)}`)
  if (v.trim() === '') throw rangeError(field, 'must not be empty')
  return v
}

function stringList(field, v) {
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v)) throw typeError(field, `must be an array of strings, got ${typeName(v)}`)
  v.forEach((s, i) => {
    if (typeof s !== 'string') throw typeError(field, `item ${i} must be a string, got ${typeName(s)}`)
  })
  return [...v]
}

/**
 * The decimal text of a number, without exponent: `String(n)` (its shortest form, so 0.1 is
 * "0.1"), with `1e-7` written out as "0.0000001" and `1e+21` as "1000…0". Never rounds.
 */
function plainDecimal(n) {
  const s = String(n)
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(s)
  if (!m) return s
  const [, sign, int, frac = '', exp] = m
  const digits = int + frac
  const point = int.length + Number(exp)
  let out
  if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length)
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`
  return sign + out
}

/**
 * A USD amount in: a number (its shortest decimal text), a decimal string, or a bigint (whole
 * dollars). Returns decimal text; the core checks it (sign, at most 6 decimals, at most 1e12)
 * and its error names the field. NaN and ±Infinity are refused here: JSON cannot carry them.
 */
function usdText(field, v, what = '') {
  if (v === undefined || v === null) return undefined
  if (typeof v === 'bigint') return v.toString()
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw rangeError(field, `${what}must be a finite amount of USD, got ${v}`)
    return plainDecimal(v)
  }
  if (typeof v === 'string') return v
  throw typeError(field, `${what}must be a USD amount (number or decimal string), got ${typeName(v)}`)
}

/** A TTL in: seconds (a number) or a duration string ("15m"); the core checks the value. */
function ttlValue(v) {
  return durationValue('expiresIn', v)
}

/** Seconds (a number) or a duration string, as the admin API takes it. */
function durationValue(field, v) {
  if (v === undefined || v === null) return undefined
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw rangeError(field, `must be a whole number of seconds, got ${v}`)
    return v
  }
  if (typeof v === 'string') return v
  throw typeError(field, `must be seconds (a number) or a duration string like "15m", got ${typeName(v)}`)
}

function toMs(field, v) {
  if (v === undefined || v === null) return undefined
  let ms
  if (v instanceof Date) ms = v.getTime()
  else if (typeof v === 'number') ms = v
  else if (typeof v === 'string') ms = Date.parse(v)
  else throw typeError(field, `must be a Date, milliseconds since the epoch, or an ISO 8601 string, got ${typeName(v)}`)
  if (!Number.isFinite(ms) || !Number.isInteger(ms)) {
    throw rangeError(field, `${util.inspect(v)} is not a valid point in time`)
  }
  return ms
}

function positiveInt(field, v, max) {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number') throw typeError(field, `must be a number, got ${typeName(v)}`)
  if (!Number.isInteger(v) || v <= 0 || (max !== undefined && v > max)) {
    throw rangeError(field, `must be a whole number from 1${max !== undefined ? ` to ${max}` : ''}, got ${v}`)
  }
  return v
}

/** snake_case keys → camelCase, recursively, leaving user `metadata` untouched. */
function camelize(v) {
  if (Array.isArray(v)) return v.map(camelize)
  if (v === null || typeof v !== 'object') return v
  const out = {}
  for (const [k, val] of Object.entries(v)) {
    out[camel(k)] = k === 'metadata' ? val : camelize(val)
  }
  return out
}

/** camelCase (or snake_case) → snake_case; a run of capitals is one word (`stripeURL` → `stripe_url`). */
const snake = (k) =>
  k
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase()

// ---- keys -----------------------------------------------------------------------------------

/** What a key argument names: the key id, or failing that the vault key. */
function keyRef(key) {
  if (typeof key === 'string') {
    const k = nonEmptyString('key', key).trim()
    if (!/^[A-Za-z0-9_-]+$/.test(k)) throw rangeError('key', 'must be a key id (key_…) or a vault key (vk_…)')
    return k
  }
  if (key && typeof key === 'object') {
    const ref = key.keyId ?? key.vaultKey
    if (typeof ref === 'string' && ref !== '') return ref
    throw typeError('key', 'the key object has neither keyId nor vaultKey')
  }
  throw typeError('key', `must be a key object, a key id (key_…) or a vault key (vk_…), got ${typeName(key)}`)
}

function keyIdOf(key) {
  if (key && typeof key === 'object' && typeof key.keyId === 'string') return key.keyId
  if (typeof key === 'string' && key.trim().startsWith('key_')) return key.trim()
  return null
}

const VENDORS = ['stripe', 'twilio', 'resend']
const SPEC_KEYS = ['vendor', 'maxUsd', 'dailyUsdCap', 'allowedEndpoints', 'expiresIn', 'runId', 'metadata', 'stripeAccounts', 'duplicateWindow', 'budgets', 'alertAt']

/** An issueKey spec → the admin API's JSON body (`KeySpec::from_json` in the core). */
function specToJson(spec) {
  if (!isPlainObject(spec)) throw typeError('spec', `must be an object like { vendor: 'stripe', maxUsd: 50, allowedEndpoints: [...] }, got ${typeName(spec)}`)
  options('spec', spec, SPEC_KEYS)
  if (spec.vendor === undefined) throw typeError('vendor', "is required: 'stripe', 'twilio' or 'resend'")
  if (typeof spec.vendor !== 'string') throw typeError('vendor', `must be a string, got ${typeName(spec.vendor)}`)
  if (!VENDORS.includes(spec.vendor)) {
    throw rangeError('vendor', `${JSON.stringify(spec.vendor)} is not one of ${VENDORS.join(', ')}`)
  }
  const out = { vendor: spec.vendor }
  const put = (k, v) => {
    if (v !== undefined) out[k] = v
  }
  put('max_usd', usdText('maxUsd', spec.maxUsd))
  put('daily_usd_cap', usdText('dailyUsdCap', spec.dailyUsdCap))
  put('allowed_endpoints', stringList('allowedEndpoints', spec.allowedEndpoints))
  put('expires_in', ttlValue(spec.expiresIn))
  put('run_id', optString('runId', spec.runId))
  if (spec.metadata !== undefined && spec.metadata !== null) {
    if (!isPlainObject(spec.metadata)) throw typeError('metadata', `must be a plain object, got ${typeName(spec.metadata)}`)
    out.metadata = spec.metadata
  }
  put('stripe_accounts', stringList('stripeAccounts', spec.stripeAccounts))
  put('duplicate_window', durationValue('duplicateWindow', spec.duplicateWindow))
  put('budgets', stringList('budgets', spec.budgets))
  put('alert_at', fractionList('alertAt', spec.alertAt))
  return out
}

/** `alertAt: [0.5, 0.8]` → the decimal strings the core reads exactly. */
function fractionList(field, v) {
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v)) throw typeError(field, `must be an array of fractions of each cap like [0.5, 0.8], got ${typeName(v)}`)
  return v.map((x, i) => {
    if (typeof x === 'string') return x
    if (typeof x !== 'number' || !Number.isFinite(x)) throw typeError(field, `item ${i} must be a number like 0.8, got ${typeName(x)}`)
    return plainDecimal(x)
  })
}

// ---- settings (Gateway.open's config) ----------------------------------------------------------

/**
 * The settings' shape, from the core's own list (`settingsKeys()`: dotted snake_case keys with
 * their unit): the keys of each level and the unit of each. A unit says how a JavaScript value
 * is carried: "URL" and "variable name" are strings, "USD" a decimal string, "USD by …" a
 * table of them (its keys are data, never converted), "list" the price overrides, anything
 * else a whole number.
 */
let shape
function settingsShape() {
  if (!shape) {
    const top = {}
    const sections = {}
    for (const [key, unit] of native.settingsKeys()) {
      const dot = key.indexOf('.')
      if (dot < 0) {
        top[key] = unit
      } else {
        const head = key.slice(0, dot)
        top[head] = 'section'
        ;(sections[head] ??= {})[key.slice(dot + 1)] = unit
      }
    }
    shape = { top, sections }
  }
  return shape
}
/** One `pricing.override` entry (`OverrideSettings` in the core). */
const OVERRIDE_SHAPE = { vendor: 'text', operation: 'text', free: 'boolean', price_usd: 'USD' }

const configType = (path, what, v) => typeError('config', `${path} must be ${what}, got ${typeName(v)}`)

/** One level of settings: keys to snake_case (two spellings of one key are refused), values by unit. Unknown keys pass on: the core refuses them by name. */
function settingsLevel(where, v, levelShape) {
  if (!isPlainObject(v)) throw configType(where || 'config', 'an object', v)
  const out = {}
  const given = {}
  for (const [k, val] of Object.entries(v)) {
    if (val === undefined || val === null) continue
    const key = snake(k)
    const path = where ? `${where}.${k}` : k
    if (Object.prototype.hasOwnProperty.call(given, key)) {
      throw typeError('config', `${given[key]} and ${path} are the same setting (${key}); give it once`)
    }
    given[key] = path
    out[key] = Object.prototype.hasOwnProperty.call(levelShape, key) ? settingValue(path, key, val, levelShape[key]) : val
  }
  return out
}

function settingValue(path, key, v, unit) {
  switch (unit) {
    case 'section':
      return settingsLevel(path, v, settingsShape().sections[key])
    case 'URL':
      if (v instanceof URL) return v.href
      if (typeof v !== 'string') throw configType(path, 'a URL (string)', v)
      return v
    case 'variable name':
      if (typeof v !== 'string') throw configType(path, 'the name of an environment variable (a string; secrets are never settings)', v)
      return v
    case 'text':
      if (typeof v !== 'string') throw configType(path, 'a string', v)
      return v
    case 'boolean':
      if (typeof v !== 'boolean') throw configType(path, 'a boolean', v)
      return v
    case 'USD':
      return usdText('config', v, `${path} `)
    case 'list of s':
      if (!Array.isArray(v)) throw configType(path, 'an array of whole seconds', v)
      return v.map((n, i) => settingValue(`${path}[${i}]`, key, n, 's'))
    case 'list':
      if (!Array.isArray(v)) throw configType(path, 'an array of { vendor, operation, free | priceUsd }', v)
      return v.map((entry, i) => settingsLevel(`${path}[${i}]`, entry, OVERRIDE_SHAPE))
    default:
      if (unit.startsWith('USD by')) {
        if (!isPlainObject(v)) throw configType(path, `an object of USD amounts (${unit})`, v)
        const table = {}
        for (const [k, amount] of Object.entries(v)) table[k] = usdText('config', amount, `${path}.${k} `)
        return table
      }
      // A count (bytes, ms, s, calls, minutes). The core checks the value (e.g. positive);
      // JSON would turn NaN into null (no value at all), so whole numbers are checked here.
      if (typeof v !== 'number') throw configType(path, `a number (${unit})`, v)
      if (!Number.isSafeInteger(v) || v < 0) throw rangeError('config', `${path} must be a whole number of ${unit}, got ${v}`)
      return v
  }
}

/** `Gateway.open`'s config (the settings shape, camelCase or snake_case keys) → the core's `Settings` JSON. */
function configToJson(config) {
  if (config === undefined || config === null) return {}
  return settingsLevel('', config, settingsShape().top)
}

module.exports = {
  fractionList,
  typeName,
  isPlainObject,
  options,
  optString,
  nonEmptyString,
  stringList,
  plainDecimal,
  usdText,
  ttlValue,
  toMs,
  positiveInt,
  camelize,
  snake,
  keyRef,
  keyIdOf,
  VENDORS,
  specToJson,
  configToJson,
}
