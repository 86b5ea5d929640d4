#!/usr/bin/env bash
# Every test: Rust (unit, integration, property), end to end with the official Python and
# Node SDKs against the real binary, the offline demo, and both language bindings.
# Needs: a Rust toolchain, python3 (venv), node + npm; PostgreSQL (apt) for its store's
# suite; chromium + chromium-driver for the dashboard test (skipped without them unless
# VENDORGATE_REQUIRE_BROWSER=1). Everything else it installs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export VENV=${VENV:-$ROOT/.venv}
export VENDORGATE_BIN=$ROOT/target/debug/vendorgate
step() { printf '\n==> %s\n' "$*"; }

step "Rust: format, lints, tests"
cargo fmt --all -- --check
python3 scripts/import_pairs.py  # no two core modules import each other
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
cargo build -p vendorgate-server

# The same store-level, pipeline and race tests against the PostgreSQL store (a throwaway
# server the tests start; see core/tests/common/pg.rs). CI sets VENDORGATE_REQUIRE_PG=1.
if command -v pg_config >/dev/null || [ -n "${VENDORGATE_PG_URL:-}" ] || [ "${VENDORGATE_REQUIRE_PG:-}" = 1 ]; then
  step "Rust: the store suite again, on PostgreSQL"
  VENDORGATE_TEST_STORE=postgres cargo test -p vendorgate --features postgres \
    --test ledger --test audit_query --test pipeline --test catalogue_pipeline --test key_pages --test duplicates --test budgets --test alerts
  VENDORGATE_TEST_STORE=postgres cargo test -p vendorgate-server --test races
else
  step "SKIP the PostgreSQL suite: no PostgreSQL here (apt-get install postgresql, or set VENDORGATE_PG_URL)"
fi

step "Python venv with the official SDKs"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r tests/e2e/requirements.txt

step "End to end: vendorgate binary + Python SDKs (stripe, twilio, resend)"
"$VENV/bin/python" -m pytest -q tests/e2e --ignore=tests/e2e/test_dashboard.py

step "Dashboard in headless Chromium (Debian chromium + chromedriver; VENDORGATE_REQUIRE_BROWSER=1 makes a missing browser fail)"
# Screenshots go under target/ here; run the test alone to refresh docs/screenshots/.
VENDORGATE_SCREENSHOT_DIR=${VENDORGATE_SCREENSHOT_DIR:-$ROOT/target/screenshots} \
  "$VENV/bin/python" -m pytest -q -rs tests/e2e/test_dashboard.py

step "End to end: vendorgate binary + Node SDKs (stripe, twilio, resend)"
(cd tests/e2e-node && npm install --no-audit --no-fund --loglevel=error && node --test)

step "Examples (smoke): Rust runaway agent"
cargo run -q -p vendorgate-examples --bin runaway-agent | tee "$ROOT/target/example-output.txt"
grep -q "with the gate (\$500 cap): 5 went through" "$ROOT/target/example-output.txt"
grep -q "with the gate (duplicate guard): 1 went through" "$ROOT/target/example-output.txt"

step "Offline demo (smoke)"
"$VENDORGATE_BIN" demo --retries 40 > "$ROOT/target/demo-output.txt"
grep -q "spend_cap_exceeded" "$ROOT/target/demo-output.txt"
grep -q "duplicate_action" "$ROOT/target/demo-output.txt"
grep -q "by the budget demo-team-" "$ROOT/target/demo-output.txt"
grep -q "spend.threshold_crossed    budget demo-team-" "$ROOT/target/demo-output.txt"
grep -q "spend.threshold_crossed    run demo-billing" "$ROOT/target/demo-output.txt"

if [ -x bindings-python/run-tests.sh ]; then
  step "Python binding"
  bindings-python/run-tests.sh
fi
if [ -x bindings-node/run-tests.sh ]; then
  step "Node binding"
  bindings-node/run-tests.sh
fi
step "All tests passed"
