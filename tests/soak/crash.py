"""Crash trials: load the gateway with $1 charges, free reads and refused calls, `kill -9` it
at a random moment, restart it on the same database, and compare what the vendor
(simulator) saw with what the ledger and the audit log recorded.

    python tests/soak/crash.py --trials 25        # prints the figures as JSON

Per trial: recorded spend < vendor-seen spend is a failure (never under-count); audit rows
lost = responses the agent received for which no audit row exists."""

import argparse
import json
import os
import pathlib
import random
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "e2e"))
from conftest import ADMIN_TOKEN, Proc, http, start_gateway  # noqa: E402


# Three kinds of call: a money call (reserved and settled synchronously), a free read and a
# refusal (both answered before their audit row commits: the row goes through the journal).
CALLS = {
    "money": ("POST", "/v1/payment_intents", b"amount=100&currency=usd&confirm=true&payment_method=pm_card_visa"),
    "free": ("GET", "/v1/customers/cus_crash", None),
    "refused": ("POST", "/v1/refunds", b"payment_intent=pi_1"),
}


def load(url, vk, stop, received, kind):
    method, path, body = CALLS[kind]
    while not stop.is_set():
        req = urllib.request.Request(f"{url}{path}", data=body, method=method)
        req.add_header("Authorization", f"Bearer {vk}")
        if body is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                r.read()
                received.append((kind, r.status))
        except urllib.error.HTTPError as e:
            e.read()
            received.append((kind, e.code))
        except Exception:
            return


def trial(tmp, sim_url, n, rng):
    gw = start_gateway(tmp, sim_url, name="crash")
    status, key, _ = http("POST", f"{gw.url}/v1/keys", {"vendor": "stripe", "max_usd": "1000000", "allowed_endpoints": ["POST /v1/payment_intents", "GET /v1/customers/*"], "run_id": f"crash-{n}"}, token=ADMIN_TOKEN)
    assert status == 201, key
    http("POST", f"{sim_url}/__sim/reset")
    stop, received = threading.Event(), []
    kinds = ["money"] * 4 + ["free"] * 2 + ["refused"] * 2
    threads = [threading.Thread(target=load, args=(gw.url, key["vault_key"], stop, received, k)) for k in kinds]
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.2, 1.5))
    os.kill(gw.p.pid, signal.SIGKILL)
    gw.p.wait()
    stop.set()
    for t in threads:
        t.join()
    seen = [r for r in http("GET", f"{sim_url}/__sim/seen")[1] if r["path"].endswith("/v1/payment_intents")]
    # Restart on the same database and read what survived.
    gw2 = start_gateway(tmp, sim_url, name="crash")
    try:
        usage = http("GET", f"{gw2.url}/v1/keys/{key['key_id']}", token=ADMIN_TOKEN)[1]
        rows = http("GET", f"{gw2.url}/v1/audit?key_id={key['key_id']}&limit=10000", token=ADMIN_TOKEN)[1]
    finally:
        gw2.stop()
    assert len(rows) < 10000, "more rows than one audit page: shorten the trial"
    counted = sum(round(float(usage[f]) * 100) for f in ("spent_usd", "pending_usd", "reserved_usd"))
    vendor_cents = len(seen) * 100
    answered = {k: sum(1 for kind, st in received if kind == k and (st == 200 if k == "money" else True)) for k in CALLS}
    refused_403 = sum(1 for kind, st in received if kind == "refused" and st == 403)
    rows_money = sum(1 for r in rows if r["decision"] == "forwarded" and r["method"] == "POST")
    rows_free = sum(1 for r in rows if r["decision"] == "forwarded" and r["method"] == "GET")
    rows_refused = sum(1 for r in rows if r["decision"] != "forwarded" and r["endpoint"] == "/v1/refunds")
    return {
        "vendor_seen": len(seen),
        "vendor_usd": vendor_cents / 100,
        "ledger_usd": counted / 100,
        "under_counted": counted < vendor_cents,
        "responses_200": answered["money"],
        "free_answered": answered["free"],
        "refused_answered": refused_403,
        "audit_forwarded_rows": rows_money,
        "audit_free_rows": rows_free,
        "audit_refused_rows": rows_refused,
        "audit_rows_lost": max(0, answered["money"] - rows_money) + max(0, answered["free"] - rows_free) + max(0, refused_403 - rows_refused),
    }


def run(trials, seed=None):
    rng = random.Random(seed)
    sim = Proc(["sim", "--listen", "127.0.0.1:0"], prefix="vendorgate-sim listening on ")
    results = []
    try:
        with tempfile.TemporaryDirectory() as d:
            for n in range(trials):
                results.append(trial(pathlib.Path(d), sim.url, n, rng))
    finally:
        sim.stop()
    return {
        "trials": trials,
        "trials_under_counted": sum(r["under_counted"] for r in results),
        "audit_rows_lost": sum(r["audit_rows_lost"] for r in results),
        "vendor_calls_seen": sum(r["vendor_seen"] for r in results),
        "answers_checked": sum(r["responses_200"] + r["free_answered"] + r["refused_answered"] for r in results),
        "over_count_usd": round(sum(r["ledger_usd"] - r["vendor_usd"] for r in results), 2),
        "per_trial": results,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=25)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    out = run(a.trials, a.seed)
    print(json.dumps({k: v for k, v in out.items() if k != "per_trial"}, indent=2))
    sys.exit(1 if out["trials_under_counted"] or out["audit_rows_lost"] else 0)
