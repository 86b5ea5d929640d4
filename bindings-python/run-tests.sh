#!/usr/bin/env bash
# Build and test the Python package `vendorgate`:
#   1. a venv ($VENV, default bindings-python/.venv) with the package installed from source
#      (`pip install ./bindings-python`; VG_DEVELOP=1 uses `maturin develop --release` instead),
#      plus pytest, pytest-asyncio, mypy and the official stripe/twilio/resend SDKs;
#   2. the type check: mypy --strict over the package and mypy.stubtest of the native module;
#   3. pytest (bindings-python/tests) against the real `vendorgate` binary
#      ($VENDORGATE_BIN, default target/debug/vendorgate, built here if unset);
#   4. the examples in examples/python as smoke tests.
# Extra arguments go to pytest.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VENV="${VENV:-$HERE/.venv}"
PY="${PYTHON:-python3}"

step() { printf '\n== %s\n' "$*"; }

if [[ -z "${VENDORGATE_BIN:-}" ]]; then
    step "building the vendorgate binary (cargo build -p vendorgate-server)"
    (cd "$REPO" && cargo build -p vendorgate-server)
    export VENDORGATE_BIN="$REPO/target/debug/vendorgate"
fi
[[ -x "$VENDORGATE_BIN" ]] || { echo "no vendorgate binary at $VENDORGATE_BIN" >&2; exit 1; }

if [[ ! -x "$VENV/bin/python" ]]; then
    step "creating venv $VENV"
    "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"

step "installing test tools"
"$VPY" -m pip install -q --disable-pip-version-check \
    "pytest>=7" "pytest-asyncio>=0.23" "mypy>=1.8" "stripe>=8" "twilio>=9" "resend>=2"

if [[ "${VG_DEVELOP:-0}" == "1" ]]; then
    step "maturin develop --release"
    "$VPY" -m pip install -q --disable-pip-version-check "maturin>=1.9,<2"
    (cd "$HERE" && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" maturin develop --release)
else
    step "pip install ./bindings-python"
    (cd "$REPO" && "$VPY" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./bindings-python)
fi

# Run everything from outside the source tree, so the installed package is what is tested.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

step "type check: mypy --strict (package) and mypy.stubtest (native module stub)"

"$VPY" -m mypy --strict --no-incremental -p vendorgate
"$VPY" -m mypy.stubtest vendorgate._vendorgate

step "pytest"
"$VPY" -m pytest -p no:cacheprovider -q "$HERE/tests" "$@"

step "examples (smoke tests)"
"$VPY" "$REPO/examples/python/runaway_agent.py"
"$VPY" "$REPO/examples/python/stripe_sdk_dropin.py"

echo
echo "bindings-python: all checks passed"
