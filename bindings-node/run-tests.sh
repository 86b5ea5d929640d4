#!/usr/bin/env bash
# Build and test the Node package `vendorgate`:
#   1. npm install          → builds the native addon (napi build --release via the install
#                              script) and installs the devDependencies: the official stripe,
#                              twilio and resend SDKs, typescript and @types/node
#   2. the vendorgate binary → `cargo build -p vendorgate-server` (vendor simulator + server
#                              for the tests), unless VENDORGATE_BIN points at one
#   3. tsc --noEmit          → the shipped index.d.ts against test/types-check.ts
#   4. examples/node         → npm install there (stripe + a link to this package)
#   5. node --test test/     → the suite: embedded and connect modes, every error code, the
#                              shared tests/binding-vectors.json, official SDKs, and both
#                              examples as smoke tests (test/examples.test.js)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$here"

echo "== npm install (builds the native addon)"
npm install --no-audit --no-fund --loglevel=error

if [ -z "${VENDORGATE_BIN:-}" ]; then
  echo "== cargo build -p vendorgate-server (simulator and server for the tests)"
  (cd "$root" && cargo build -q -p vendorgate-server)
  export VENDORGATE_BIN="$root/target/debug/vendorgate"
fi

echo "== tsc --noEmit (index.d.ts against test/types-check.ts)"
npx --no-install tsc --noEmit -p test/tsconfig.json

echo "== examples/node: npm install (stripe + a link to this package)"
(cd "$root/examples/node" && npm install --no-audit --no-fund --loglevel=error --ignore-scripts)

echo "== node --test test/ (includes test/examples.test.js: both examples as smoke tests)"
node --test test/
