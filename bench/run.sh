#!/usr/bin/env bash
# Side-by-side benchmark: direct upstream vs nginx proxy_pass vs vendorgate, pass-through GET
# and money POST, on one machine in one run. Writes docs/BENCHMARKS.md.
# Needs nginx and wrk (apt-get install nginx-light wrk). Usage: bench/run.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DUR=${1:-10}
CONN=${2:-32}
WORK=$(mktemp -d)
UP=18081; PX=18082; VG=18083; BARE=18084
cleanup() { [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; [ -n "${VGPID:-}" ] && kill "$VGPID" 2>/dev/null || true; [ -n "${BAREPID:-}" ] && kill "$BAREPID" 2>/dev/null || true; }
trap cleanup EXIT

VG_BIN=${VG_BIN:-}
if [ -z "$VG_BIN" ]; then
  cargo build --release -q -p vendorgate-server
  VG_BIN=target/release/vendorgate
fi
# The floor: the same HTTP stack (axum + reqwest, one runtime per core) forwarding with a
# header swap and nothing else.
cargo build --release -q -p vendorgate-server --example bare_proxy
PER_CORE=1 target/release/examples/bare_proxy 127.0.0.1:$BARE http://127.0.0.1:$UP > /dev/null 2>&1 &
BAREPID=$!
sed -e "s#@DIR@#$WORK#g" -e "s#@UPSTREAM@#$UP#g" -e "s#@PROXY@#$PX#g" bench/nginx.conf.tmpl > "$WORK/nginx.conf"
nginx -c "$WORK/nginx.conf" -p "$WORK"
sleep 0.5

export VENDORGATE_ADMIN_TOKEN=bench-admin STRIPE_SECRET_KEY=sk_test_bench VENDORGATE_STRIPE_URL=http://127.0.0.1:$UP
RUST_LOG=warn "$VG_BIN" serve --listen 127.0.0.1:$VG --db "$WORK/bench.db" > "$WORK/vg.out" 2> "$WORK/vg.err" &
VGPID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$VG/healthz" >/dev/null && break; sleep 0.1; done
VK=$(curl -s -X POST "http://127.0.0.1:$VG/v1/keys" -H "Authorization: Bearer bench-admin" \
  -d '{"vendor":"stripe","max_usd":"1000000000","allowed_endpoints":["POST /v1/payment_intents","GET /v1/customers/*"],"expires_in":"1d"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["vault_key"])')
export VK
rss() { awk '/VmRSS/ {print $2}' "/proc/$VGPID/status"; }
RSS_IDLE=$(rss)

run() { # name url script
  local out
  out=$(wrk -t2 -c"$CONN" -d"${DUR}s" -s "bench/$3" "$2" | grep RESULT)
  echo "$1 $out"
}
RESULTS=$WORK/results.txt
: > "$RESULTS"
run direct-get   "http://127.0.0.1:$UP/v1/customers/cus_1" get.lua  | tee -a "$RESULTS"
run nginx-get    "http://127.0.0.1:$PX/v1/customers/cus_1" get.lua  | tee -a "$RESULTS"
run bare-get     "http://127.0.0.1:$BARE/v1/customers/cus_1" get.lua | tee -a "$RESULTS"
run vg-get       "http://127.0.0.1:$VG/v1/customers/cus_1" get.lua  | tee -a "$RESULTS"
run direct-post  "http://127.0.0.1:$UP/v1/payment_intents" post.lua | tee -a "$RESULTS"
run nginx-post   "http://127.0.0.1:$PX/v1/payment_intents" post.lua | tee -a "$RESULTS"
run bare-post    "http://127.0.0.1:$BARE/v1/payment_intents" post.lua | tee -a "$RESULTS"
run vg-post      "http://127.0.0.1:$VG/v1/payment_intents" post.lua | tee -a "$RESULTS"

# Latency at a fixed moderate rate: 10 connections x 1 request / 10 ms = about 1,000 req/s.
rate() { # name url method
  local out
  out=$(METHOD=$3 DELAY_MS=10 wrk -t2 -c10 -d"${DUR}s" -s bench/rate.lua "$2" | grep RESULT)
  echo "$1 $out"
}
rate nginx-get-rate "http://127.0.0.1:$PX/v1/customers/cus_1" GET  | tee -a "$RESULTS"
rate vg-get-rate    "http://127.0.0.1:$VG/v1/customers/cus_1" GET  | tee -a "$RESULTS"
rate nginx-post-rate "http://127.0.0.1:$PX/v1/payment_intents" POST | tee -a "$RESULTS"
rate vg-post-rate    "http://127.0.0.1:$VG/v1/payment_intents" POST | tee -a "$RESULTS"

# Memory with 1,000 concurrent connections (pass-through GETs).
wrk -t2 -c1000 -d5s -s bench/get.lua "http://127.0.0.1:$VG/v1/customers/cus_1" > /dev/null &
WRK=$!
sleep 4
RSS_1K=$(rss)
wait $WRK || true

# Revocation: how many requests after the DELETE returns still pass (goal: 0).
KEY2=$(curl -s -X POST "http://127.0.0.1:$VG/v1/keys" -H "Authorization: Bearer bench-admin" \
  -d '{"vendor":"stripe","max_usd":"1000","allowed_endpoints":["GET /v1/customers/*"]}')
VK2=$(echo "$KEY2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vault_key"])')
ID2=$(echo "$KEY2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key_id"])')
# Revoke while another key's money calls keep the gateway busy.
wrk -t2 -c"$CONN" -d4s -s bench/post.lua "http://127.0.0.1:$VG/v1/payment_intents" > /dev/null &
WRK=$!
sleep 2
T0=$(date +%s%N)
curl -s -o /dev/null -X DELETE "http://127.0.0.1:$VG/v1/keys/$ID2" -H "Authorization: Bearer bench-admin"
T1=$(date +%s%N)
AFTER=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$VG/v1/customers/cus_1" -H "Authorization: Bearer $VK2")
wait $WRK || true
REVOKE_MS=$(( (T1 - T0) / 1000 ))

python3 bench/report.py "$RESULTS" "$RSS_IDLE" "$RSS_1K" "$REVOKE_MS" "$AFTER" "$DUR" "$CONN" > "$WORK/table.md"
cat "$WORK/table.md"
[ -n "${NO_DOC:-}" ] || python3 bench/report.py --write-doc "$WORK/table.md" docs/BENCHMARKS.md
