#!/usr/bin/env bash
# Short fuzz smoke (CI): each cargo-fuzz target for SECONDS (default 15). A crash fails.
# cargo-fuzz needs nightly compiler features: RUSTC_BOOTSTRAP=1 enables them on stable. If the
# tool cannot be installed or the targets cannot be built on this machine, say so and stop
# without failing: the same properties run as proptests in core/tests/robustness.rs.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${1:-15}
export RUSTC_BOOTSTRAP=1
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked --quiet || { echo "fuzz smoke SKIPPED: cargo-fuzz could not be installed"; exit 0; }
fi
cargo fuzz build -O >/dev/null 2>&1 || { echo "fuzz smoke SKIPPED: the fuzz targets do not build here (need a sanitizer-capable toolchain)"; exit 0; }
fail=0
for t in $(cargo fuzz list); do
  if cargo fuzz run -O "$t" -- -max_total_time="$SECS" -print_final_stats=1 >"/tmp/fuzz-$t.log" 2>&1; then
    echo "fuzz $t: $(grep -m1 -oE 'stat::number_of_executed_units: [0-9]+' "/tmp/fuzz-$t.log" || echo ok)"
  else
    echo "fuzz $t: FAILED (see the artifact under fuzz/artifacts/$t)"; tail -30 "/tmp/fuzz-$t.log"; fail=1
  fi
done
exit $fail
