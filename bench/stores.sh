#!/usr/bin/env bash
# The stores side by side, in one run, against the same fake vendor (nginx): money calls per
# second and p50/p99 for one instance on SQLite, one on PostgreSQL, three on one PostgreSQL
# (behind an nginx round-robin balancer, as a cluster runs them); then the same single
# instances again after 1M audit rows and 100k spends were added to the benchmark key's
# history (the cost of a call must not grow with it). Each call is a distinct action (another
# customer), so the duplicate-action guard, on by default, passes it; two rows turn the guard
# off to show what it costs.
# PostgreSQL runs with its durable defaults (fsync, synchronous_commit on).
# Needs nginx, wrk and PostgreSQL (apt-get install nginx-light wrk postgresql).
# Usage: bench/stores.sh [seconds] [connections]. Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
CONN=${2:-32}
WORK=$(mktemp -d)
chmod 755 "$WORK"
UP=18091; LB=18092; PORTS=(18093 18094 18095 18096)
PGPORT=18097
PGBIN="$(pg_config --bindir)"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  [ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT

VG_BIN=${VG_BIN:-}
if [ -z "$VG_BIN" ]; then
  cargo build --release -q -p vendorgate-server
  VG_BIN=target/release/vendorgate
fi

# The fake vendor, and a round-robin balancer over instances 2..4 (PostgreSQL).
cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream gateways { server 127.0.0.1:${PORTS[1]}; server 127.0.0.1:${PORTS[2]}; server 127.0.0.1:${PORTS[3]}; keepalive 96; }
    server {
        listen 127.0.0.1:$UP reuseport;
        default_type application/json;
        location = /v1/payment_intents {
            return 200 '{"object":"payment_intent","id":"pi_\$request_id","status":"succeeded","amount":100,"amount_received":100,"amount_capturable":0,"currency":"usd"}';
        }
        location / { return 200 '{"object":"customer","id":"cus_bench"}'; }
    }
    server {
        listen 127.0.0.1:$LB reuseport;
        location / {
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK"

# A durable PostgreSQL 15 in the temp dir.
mkdir -p "$WORK/pg" && chown postgres:postgres "$WORK/pg" 2>/dev/null || true
as_pg "$PGBIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $WORK/pg -c max_connections=200 ${PGOPTS:-}" start >/dev/null
PG="postgres://postgres@127.0.0.1:$PGPORT"
psql -q -h 127.0.0.1 -p $PGPORT -U postgres -c "CREATE DATABASE bench" >/dev/null

export VENDORGATE_ADMIN_TOKEN=bench-admin STRIPE_SECRET_KEY=sk_test_bench VENDORGATE_STRIPE_URL=http://127.0.0.1:$UP
# PG_CONFIG: a TOML config file for the PostgreSQL instances (e.g. `[postgres]` options).
serve() { # port db [config]
  RUST_LOG=warn "$VG_BIN" serve --listen "127.0.0.1:$1" --db "$2" ${3:+--config "$3"} > "$WORK/vg-$1.out" 2> "$WORK/vg-$1.err" &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return; sleep 0.1; done
  echo "instance on $1 did not start: $(cat "$WORK/vg-$1.err")" >&2; exit 1
}
serve "${PORTS[0]}" "$WORK/bench.db"
for p in "${PORTS[@]:1}"; do serve "$p" "$PG/bench" "${PG_CONFIG:-}"; done

key() { # port [duplicate_window] [extra JSON fields] -> "vault_key key_id"; the guard is on (10m) unless given
  curl -s -X POST "http://127.0.0.1:$1/v1/keys" -H "Authorization: Bearer bench-admin" \
    -d '{"vendor":"stripe","max_usd":"100000000","allowed_endpoints":["POST /v1/payment_intents"],"expires_in":"1d","duplicate_window":"'"${2:-10m}"'"'"${3:-}"'}' \
    | python3 -c 'import json,sys; k=json.load(sys.stdin); print(k["vault_key"], k["key_id"])'
}
run() { # label url [script]
  local out
  out=$(wrk -t2 -c"$CONN" -d"${DUR}s" -s "bench/${3:-post.lua}" "$2/v1/payment_intents" | grep RESULT)
  echo "$1 $out"
}
keys() { # port count -> vault keys, space-separated
  local out=""
  for _ in $(seq "$2"); do out="$out $(key "$1" | cut -d' ' -f1)"; done
  echo "$out"
}
RESULTS=$WORK/results.txt
read -r VK_SQLITE ID_SQLITE < <(key "${PORTS[0]}")
read -r VK_PG ID_PG < <(key "${PORTS[1]}")
VK=$VK_SQLITE run sqlite-1 "http://127.0.0.1:${PORTS[0]}" | tee -a "$RESULTS"
VK=$VK_PG run postgres-1 "http://127.0.0.1:${PORTS[1]}" | tee -a "$RESULTS"
VK=$VK_PG run postgres-3 "http://127.0.0.1:$LB" | tee -a "$RESULTS"
# The duplicate-action guard's cost: the same calls with the guard off for the key.
VK=$(key "${PORTS[0]}" 0 | cut -d' ' -f1) run sqlite-1-noguard "http://127.0.0.1:${PORTS[0]}" | tee -a "$RESULTS"
VK=$(key "${PORTS[1]}" 0 | cut -d' ' -f1) run postgres-1-noguard "http://127.0.0.1:${PORTS[1]}" | tee -a "$RESULTS"
# Warnings: the key in a budget, both with alert_at (the caps are far away: this is the cost
# of the checks on every call, not of writing events).
for p in "${PORTS[0]}" "${PORTS[1]}"; do
  curl -sf -X POST "http://127.0.0.1:$p/v1/budgets" -H "Authorization: Bearer bench-admin" \
    -d '{"name":"bench-team-'"$p"'","max_usd":"100000000","alert_at":[0.5,0.8]}' >/dev/null
done
VK=$(key "${PORTS[0]}" 10m ',"alert_at":[0.5,0.8],"budgets":["bench-team-'"${PORTS[0]}"'"]' | cut -d' ' -f1) run sqlite-1-alerts "http://127.0.0.1:${PORTS[0]}" | tee -a "$RESULTS"
VK=$(key "${PORTS[1]}" 10m ',"alert_at":[0.5,0.8],"budgets":["bench-team-'"${PORTS[1]}"'"]' | cut -d' ' -f1) run postgres-1-alerts "http://127.0.0.1:${PORTS[1]}" | tee -a "$RESULTS"
# Many runs at once: the same calls spread over 64 keys.
VKS=$(keys "${PORTS[0]}" 64) run sqlite-1-keys "http://127.0.0.1:${PORTS[0]}" post_keys.lua | tee -a "$RESULTS"
VKS_PG=$(keys "${PORTS[1]}" 64)
VKS=$VKS_PG run postgres-1-keys "http://127.0.0.1:${PORTS[1]}" post_keys.lua | tee -a "$RESULTS"
VKS=$VKS_PG run postgres-3-keys "http://127.0.0.1:$LB" post_keys.lua | tee -a "$RESULTS"

# History: 1M audit rows and 100k settled spends on the benchmark key, in each store.
python3 - "$WORK/bench.db" "$ID_SQLITE" <<'PY'
import sqlite3, sys
db, key = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db, timeout=30)
c.execute("BEGIN IMMEDIATE")
c.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100000)
  INSERT INTO spends (key_id, day, state, estimate, amount, object_id, created_at_ms, updated_at_ms)
  SELECT ?, '2026-01-01', 'moved', 100, 100, 'pi_hist_' || i, 0, 0 FROM n""", (key,))
c.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000000)
  INSERT INTO audit (time_ms, key_id, vendor, method, endpoint, decision, status, estimate, cost, latency_us)
  SELECT i, ?, 'stripe', 'POST', '/v1/payment_intents', 'forwarded', 200, 100, 100, 100 FROM n""", (key,))
c.commit()
PY
psql -q -h 127.0.0.1 -p $PGPORT -U postgres -d bench >/dev/null <<SQL
INSERT INTO spends (key_id, day, state, estimate, amount, object_id, created_at_ms, updated_at_ms)
  SELECT '$ID_PG', '2026-01-01', 'moved', 100, 100, 'pi_hist_' || i, 0, 0 FROM generate_series(1, 100000) i;
INSERT INTO audit (time_ms, key_id, vendor, method, endpoint, decision, status, estimate, cost, latency_us)
  SELECT i, '$ID_PG', 'stripe', 'POST', '/v1/payment_intents', 'forwarded', 200, 100, 100, 100 FROM generate_series(1, 1000000) i;
VACUUM ANALYZE;
SQL
VK=$VK_SQLITE run sqlite-1-history "http://127.0.0.1:${PORTS[0]}" | tee -a "$RESULTS"
VK=$VK_PG run postgres-1-history "http://127.0.0.1:${PORTS[1]}" | tee -a "$RESULTS"

python3 - "$RESULTS" "$DUR" "$CONN" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
label = {
    "sqlite-1": "1 instance, SQLite",
    "postgres-1": "1 instance, PostgreSQL",
    "postgres-3": "3 instances, one PostgreSQL (nginx round robin)",
    "sqlite-1-noguard": "1 instance, SQLite, duplicate guard off for the key",
    "postgres-1-noguard": "1 instance, PostgreSQL, duplicate guard off for the key",
    "sqlite-1-alerts": "1 instance, SQLite, key in a budget, alert_at on both",
    "postgres-1-alerts": "1 instance, PostgreSQL, key in a budget, alert_at on both",
    "sqlite-1-keys": "1 instance, SQLite, calls spread over 64 keys",
    "postgres-1-keys": "1 instance, PostgreSQL, calls spread over 64 keys",
    "postgres-3-keys": "3 instances, one PostgreSQL, calls spread over 64 keys",
    "sqlite-1-history": "1 instance, SQLite, +1M audit rows, +100k spends on the key",
    "postgres-1-history": "1 instance, PostgreSQL, +1M audit rows, +100k spends on the key",
}
print(f"Money calls (confirmed PaymentIntent), wrk -t2 -c{sys.argv[3]} -d{sys.argv[2]}s:\n")
print("| setup | calls/s | p50 | p99 | errors |")
print("|---|---|---|---|---|")
for r in rows:
    f = dict(kv.split("=") for kv in r[2:])
    print(f"| {label[r[0]]} | {int(f['rps']):,} | {int(f['p50_us'])/1000:.2f} ms | {int(f['p99_us'])/1000:.2f} ms | {int(f['errors'])+int(f['non2xx'])} |")
PY
