#!/usr/bin/env bash
# Run every fuzz target for SECONDS (default 600) and record executions and findings.
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 lets the stable toolchain build them.
#   cargo install cargo-fuzz && fuzz/run-all.sh 600
set -uo pipefail
cd "$(dirname "$0")"
SECS=${1:-600}
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O >/dev/null 2>&1 || { echo "cargo fuzz build failed"; exit 1; }
out=results.md
echo "| target | seconds | executions | crashes | corpus |" > "$out"
echo "|---|---:|---:|---:|---:|" >> "$out"
for t in $(cargo fuzz list); do
  log=$(mktemp)
  cargo fuzz run -O "$t" -- -max_total_time="$SECS" -print_final_stats=1 > "$log" 2>&1
  rc=$?
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  crashes=$(ls "artifacts/$t" 2>/dev/null | grep -cE "^(crash|leak|oom|timeout)-")
  corpus=$(ls "corpus/$t" 2>/dev/null | wc -l)
  echo "| $t | $SECS | ${execs:-?} | $crashes (exit $rc) | $corpus |" | tee -a "$out"
  rm -f "$log"
done
