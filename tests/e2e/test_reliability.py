"""Reliability and security evidence at the HTTP edge: upstream faults, store faults, two
server processes on one database, an allowlist-bypass corpus over raw sockets, and a scan
for leaked secrets. Figures for docs/RELIABILITY.md come from these tests (and `make soak`)."""

import concurrent.futures
import os
import re
import socket
import sqlite3
import threading
import time
import urllib.parse

import pytest

from conftest import ADMIN_TOKEN, SIM_CREDS, Gateway, http, start_gateway

CHARGE = b"amount=10000&currency=usd&confirm=true&payment_method=pm_card_visa"


def post(gw, vk, path="/v1/payment_intents", body=CHARGE, **headers):
    h = {"Authorization": f"Bearer {vk}", "Content-Type": "application/x-www-form-urlencoded", **headers}
    return http("POST", f"{gw.url}{path}", body, headers=h)


@pytest.fixture
def fast_gateway(tmp_path, sim):
    p = start_gateway(tmp_path, sim.url, config_text="request_timeout_ms = 700\n", name="fast")
    yield Gateway(p)
    p.stop()


# ---- upstream faults --------------------------------------------------------------------

FAULTS = [
    # fault, status to the agent, whether the vendor's answer passes through
    ("reset", 502, False),
    ("timeout", 504, False),
    ("slow-body", 504, False),
    ("huge", 502, False),
    ("500", 500, True),
    ("malformed", 200, True),
    ("html", 200, True),
]


@pytest.mark.parametrize("fault,status,passthrough", FAULTS)
def test_upstream_fault_has_a_defined_outcome_and_keeps_the_reservation(fast_gateway, fault, status, passthrough):
    gw = fast_gateway
    key = gw.issue(vendor="stripe", max_usd="500", allowed_endpoints=["POST /v1/payment_intents"])
    got, body, _ = post(gw, key["vault_key"], **{"X-Sim-Fault": fault})
    assert got == status, body
    if not passthrough:
        assert body["error"]["code"] == "vendorgate_upstream_error"
    usage = gw.key(key["key_id"])
    # The request reached the vendor (which created the object), so the $100 stays counted.
    assert usage["pending_usd"] == "100.00", usage
    assert usage["remaining_usd"] == "400.00"
    row = gw.audit(key_id=key["key_id"])[-1]
    assert row["money_state"] == "unknown" and row["estimate_usd"] == "100.00"


def test_idempotent_retry_after_reset_is_counted_once(fast_gateway):
    gw = fast_gateway
    key = gw.issue(vendor="stripe", max_usd="500", allowed_endpoints=["POST /v1/payment_intents"])
    first = post(gw, key["vault_key"], **{"X-Sim-Fault": "reset", "Idempotency-Key": "r-1"})
    assert first[0] == 502
    retry = post(gw, key["vault_key"], **{"Idempotency-Key": "r-1"})
    assert retry[0] == 200 and retry[1]["status"] == "succeeded"
    usage = gw.key(key["key_id"])
    assert usage["spent_usd"] == "100.00" and usage["pending_usd"] == "0.00"


# ---- store faults -----------------------------------------------------------------------


def test_locked_database_fails_closed_and_recovers(tmp_path, sim):
    p = start_gateway(tmp_path, sim.url, config_text="store_busy_timeout_ms = 300\n", name="locked")
    gw = Gateway(p)
    try:
        key = gw.issue(vendor="stripe", max_usd="500", allowed_endpoints=["POST /v1/payment_intents"])
        holder = sqlite3.connect(tmp_path / "locked.db", timeout=5, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        status, body, _ = post(gw, key["vault_key"])
        assert status == 503 and body["error"]["code"] == "vendorgate_store_error", body
        assert http("GET", f"{gw.url}/healthz")[0] == 503
        holder.execute("ROLLBACK")
        holder.close()
        status, body, _ = post(gw, key["vault_key"])
        assert status == 200, body
        assert gw.key(key["key_id"])["spent_usd"] == "100.00"
    finally:
        err = p.stop()
    assert "store operation failed" in err and "database is locked" in err


def _journal_load(tmp_path, sim, name):
    """Free reads and refusals sent while another connection holds the database's write lock:
    they must be answered (their rows go to the audit journal), not wait or fail."""
    p = start_gateway(tmp_path, sim.url, config_text="store_busy_timeout_ms = 300\n", name=name)
    gw = Gateway(p)
    key = gw.issue(vendor="stripe", max_usd="500", allowed_endpoints=["POST /v1/payment_intents", "GET /v1/customers/*"])
    vk = key["vault_key"]
    holder = sqlite3.connect(tmp_path / f"{name}.db", timeout=5, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    reads, refusals = [], []
    for _ in range(5):
        reads.append(http("GET", f"{gw.url}/v1/customers/cus_journal", headers={"Authorization": f"Bearer {vk}"})[0])
        refusals.append(post(gw, vk, path="/v1/refunds", body=b"payment_intent=pi_1")[0])
    assert all(s in (200, 404) for s in reads), reads
    assert refusals == [403] * 5, refusals
    return p, key, holder


def _journal_rows(rows):
    return (sum(r["method"] == "GET" and r["decision"] == "forwarded" for r in rows),
            sum(r["endpoint"] == "/v1/refunds" and r["status"] == 403 for r in rows))


def test_rows_answered_while_the_store_is_locked_survive_kill_9(tmp_path, sim):
    import signal

    p, key, holder = _journal_load(tmp_path, sim, "journal")
    os.kill(p.p.pid, signal.SIGKILL)
    p.p.wait()
    holder.execute("ROLLBACK")
    holder.close()
    p2 = start_gateway(tmp_path, sim.url, name="journal")
    try:
        rows = http("GET", f"{p2.url}/v1/audit?key_id={key['key_id']}", token=ADMIN_TOKEN)[1]
    finally:
        p2.stop()
    assert _journal_rows(rows) == (5, 5), rows
    # The dead server's journal was replayed and removed; the clean stop removed the new one.
    assert not list(tmp_path.glob("journal.db-audit-*.jnl"))


def test_rows_answered_while_the_store_is_locked_are_stored_once_it_frees(tmp_path, sim):
    p, key, holder = _journal_load(tmp_path, sim, "journal_live")
    try:
        time.sleep(0.5)  # past store_busy_timeout_ms: the first inserts have failed
        holder.execute("ROLLBACK")
        holder.close()
        rows = http("GET", f"{p.url}/v1/audit?key_id={key['key_id']}", token=ADMIN_TOKEN)[1]
        assert _journal_rows(rows) == (5, 5), rows
    finally:
        p.stop()


def test_corrupt_database_refuses_to_start_with_a_clear_message(tmp_path):
    db = tmp_path / "corrupt.db"
    db.write_bytes(b"this is not a database" * 1000)
    import subprocess

    from conftest import BIN

    out = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--db", str(db)], capture_output=True, text=True, timeout=20)
    assert out.returncode != 0
    assert "corrupt.db" in out.stderr and "not a database" in out.stderr


# ---- two server processes, one database -------------------------------------------------


def test_two_servers_on_one_database_share_the_cap(tmp_path, sim):
    a = start_gateway(tmp_path, sim.url, name="shared")
    b = start_gateway(tmp_path, sim.url, name="shared")
    try:
        ga, gb = Gateway(a), Gateway(b)
        key = ga.issue(vendor="stripe", max_usd="500", allowed_endpoints=["POST /v1/payment_intents"], duplicate_window=0)
        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
            results = list(pool.map(lambda i: post(ga if i % 2 else gb, key["vault_key"])[0], range(200)))
        assert results.count(200) == 5 and results.count(402) == 195
        gb.revoke(key["key_id"])
        assert post(ga, key["vault_key"])[0] == 401, "revocation on one server holds on the other at once"
    finally:
        a.stop()
        b.stop()


def test_keys_of_one_budget_on_two_servers_fill_it_exactly(tmp_path, sim, seen):
    """Two server processes on one database file; six keys of one $500 budget, each with a
    $1,000 cap of its own; 120 concurrent $100 charges over both servers: exactly 5 reach
    the vendor, every other call is refused by the budget, and the 402 names it."""
    a = start_gateway(tmp_path, sim.url, name="budget")
    b = start_gateway(tmp_path, sim.url, name="budget")
    try:
        ga, gb = Gateway(a), Gateway(b)
        status, body, _ = http("POST", f"{ga.url}/v1/budgets", {"name": "billing-fleet", "max_usd": "500"}, token=ADMIN_TOKEN)
        assert status == 201 and body["max_usd"] == "500.00", body
        keys = [
            (ga if i % 2 else gb).issue(vendor="stripe", max_usd="1000", allowed_endpoints=["POST /v1/payment_intents"], budgets=["billing-fleet"], duplicate_window=0)
            for i in range(6)
        ]
        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
            results = list(pool.map(lambda i: post(ga if i % 2 else gb, keys[i % 6]["vault_key"]), range(120)))
        statuses = [r[0] for r in results]
        assert statuses.count(200) == 5 and statuses.count(402) == 115, statuses
        refusal = next(r[1] for r in results if r[0] == 402)
        assert refusal["error"]["code"] == "vendorgate_spend_cap_exceeded"
        assert refusal["vendorgate"]["budget"] == "billing-fleet" and "billing-fleet" in refusal["error"]["message"]
        assert len([r for r in seen() if r["path"].endswith("/v1/payment_intents")]) == 5
        status, st, _ = http("GET", f"{gb.url}/v1/budgets/billing-fleet", token=ADMIN_TOKEN)
        assert status == 200 and st["total_usd"] == "500.00" and sorted(st["keys"]) == sorted(k["key_id"] for k in keys), st
        status, listed, _ = http("GET", f"{ga.url}/v1/budgets", token=ADMIN_TOKEN)
        assert [x["name"] for x in listed] == ["billing-fleet"]
        # A key cannot join a budget that does not exist, nor a budget be created twice.
        status, body, _ = http("POST", f"{ga.url}/v1/keys", {"vendor": "stripe", "max_usd": "1", "allowed_endpoints": [], "budgets": ["nope"]}, token=ADMIN_TOKEN)
        assert status == 400 and "nope" in body["error"]["message"], body
        status, body, _ = http("POST", f"{gb.url}/v1/budgets", {"name": "billing-fleet", "max_usd": "1"}, token=ADMIN_TOKEN)
        assert status == 400 and "exists" in body["error"]["message"], body
    finally:
        a.stop()
        b.stop()


# ---- allowlist bypass corpus over raw HTTP ------------------------------------------------


def raw(url, request: bytes) -> int:
    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return 0
            data += chunk
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(m.group(1)) if m else 0


def test_bypass_corpus_reaches_nothing_outside_the_allowlist(gateway, seen):
    key = gateway.issue(vendor="stripe", max_usd="500", allowed_endpoints=["GET /v1/customers/*"])
    vk = key["vault_key"]
    auth = f"Authorization: Bearer {vk}\r\n".encode()
    targets = [
        "/v1/customers/../refunds", "/v1/customers/%2e%2e/refunds", "/v1/customers/%2E%2E/refunds", "/v1/customers/.%2e/refunds",
        "/v1/customers/%252e%252e/refunds", "/v1/customers/cus_1/..%2f..%2frefunds", "/v1/customers%2f..%2frefunds", "/v1/customers%5c..%5crefunds",
        "/v1/customers/cus_1%00/../../refunds", "/v1/customers/cus_1;/../../refunds", "/v1//customers/cus_1", "//v1/customers/cus_1",
        "/v1/customers/./cus_1", "/V1/customers/cus_1", "/v1/Customers/cus_1", "/v1/customers/cus_1/", "/v1/customers/cus_1/sources",
        "/v1/customers", "/v1/refunds", "/v1/customers/%c0%ae%c0%ae/refunds", "/v1/customers/%e2%80%a5/refunds", "/v1/cust%6fmers/..%2frefunds",
        "/v1/customers/cus_1%23/../../refunds", "/v1/customers/cus_1%3f/../../refunds", "/v1/customers/%2e", "/v1/customers/cus_1/%2e%2e",
        "/stripe/v1/customers/../refunds", "/stripe//v1/customers/cus_1", "/twilio/v1/customers/cus_1", "/v1/customers/cus%201",
        "/v1/customers/cus_1%09", "/v1/customers/\u0441us_1".encode("utf-8").decode("latin-1"),
    ]
    requests = [f"GET {t} HTTP/1.1\r\nHost: x\r\n".encode("latin-1") + auth + b"\r\n" for t in targets]
    # Methods and overrides on an allowed path.
    for m in ("POST", "DELETE", "PUT", "PATCH", "TRACE", "OPTIONS", "CONNECT"):
        requests.append(f"{m} /v1/customers/cus_1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n".encode() + auth + b"\r\n")
    for h in ("X-HTTP-Method-Override: POST", "X-HTTP-Method: DELETE", "X-Method-Override: POST"):
        requests.append(f"GET /v1/customers/cus_1 HTTP/1.1\r\nHost: x\r\n{h}\r\n".encode() + auth + b"\r\n")
    # Absolute-form targets and Host games: only the configured upstream is ever contacted.
    requests += [
        b"GET http://evil.example/v1/refunds HTTP/1.1\r\nHost: evil.example\r\n" + auth + b"\r\n",
        b"GET http://127.0.0.1:1/v1/customers/cus_1/../../refunds HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
        b"GET /v1/refunds HTTP/1.1\r\nHost: api.stripe.com\r\nX-Forwarded-Host: x\r\n" + auth + b"\r\n",
        b"GET /v1/refunds HTTP/1.1\r\nHost: x\r\nX-Original-URL: /v1/customers/cus_1\r\n" + auth + b"\r\n",
        b"GET /v1/refunds HTTP/1.1\r\nHost: x\r\nX-Rewrite-URL: /v1/customers/cus_1\r\n" + auth + b"\r\n",
        # Conflicting framing: smuggle a second request in the body.
        b"POST /v1/customers/cus_1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n" + auth + b"\r\n0\r\n\r\nPOST /v1/refunds HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 0\r\n\r\n",
        b"POST /v1/customers/cus_1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 40\r\n" + auth + b"\r\n",
        b"GET /v1/refunds?/v1/customers/cus_1 HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
        b"GET /v1/refunds#/v1/customers/cus_1 HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n",
    ]
    assert len(requests) >= 50
    seen()  # reset the simulator's record
    statuses = [raw(gateway.url, r) for r in requests]
    reached = [r["path"] for r in seen()]
    bypasses = [p for p in reached if not re.fullmatch(r"/v1/customers/[A-Za-z0-9_]+", p.split("?")[0])]
    assert bypasses == [], bypasses
    assert 200 not in [s for s, r in zip(statuses, requests) if b"/v1/refunds" in r.split(b"\r\n")[0]]


# ---- secret leakage ---------------------------------------------------------------------


def test_no_secret_reaches_logs_audit_db_errors_or_metrics(tmp_path, sim):
    p = start_gateway(tmp_path, sim.url, name="leak")
    gw = Gateway(p)
    vault_keys = []
    try:
        for vendor, allowed in (("stripe", ["POST /v1/payment_intents"]), ("twilio", ["POST /2010-04-01/Accounts/*/Messages.json", "GET /2010-04-01/Accounts/*"]), ("resend", ["POST /emails"])):
            vault_keys.append(gw.issue(vendor=vendor, max_usd="1", allowed_endpoints=allowed)["vault_key"])
        vk_stripe, vk_twilio, vk_resend = vault_keys
        bodies = []
        bodies.append(post(gw, vk_stripe)[1])  # over the cap: refusal body
        bodies.append(post(gw, vk_stripe, path="/v1/refunds", body=b"charge=ch_1")[1])
        bodies.append(post(gw, vk_stripe + "x")[1])
        bodies.append(post(gw, vk_stripe, **{"X-Sim-Fault": "reset"})[1])
        import base64

        basic = base64.b64encode(f"AC{'3' * 32}:{vk_twilio}".encode()).decode()
        bodies.append(http("POST", f"{gw.url}/twilio/2010-04-01/Accounts/AC{'3' * 32}/Messages.json", b"To=%2B14155550100&From=%2B1&Body=hi", headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"})[1])
        bodies.append(http("GET", f"{gw.url}/twilio/2010-04-01/Accounts/AC{'3' * 32}.json", headers={"Authorization": f"Basic {basic}"})[1])
        bodies.append(http("POST", f"{gw.url}/resend/emails", {"from": "a@x.dev", "to": "b@x.dev", "subject": "s"}, headers={"Authorization": f"Bearer {vk_resend}"})[1])
        audit = gw.audit(limit=1000)
        metrics = http("GET", f"{gw.url}/metrics", token=ADMIN_TOKEN)[1]
        keys = http("GET", f"{gw.url}/v1/keys", token=ADMIN_TOKEN)[1]
    finally:
        logs = p.stop()
    db_bytes = b"".join((tmp_path / n).read_bytes() for n in os.listdir(tmp_path) if n.startswith("leak.db"))
    haystacks = {"logs": logs, "audit": repr(audit), "metrics": metrics, "key list": repr(keys), "error bodies": repr(bodies), "database": db_bytes.decode("latin-1")}
    secrets = list(SIM_CREDS.values())[0:1] + [SIM_CREDS["TWILIO_AUTH_TOKEN"], SIM_CREDS["RESEND_API_KEY"]] + vault_keys + [v[3:] for v in vault_keys]
    found = {(where, s[:12]) for where, text in haystacks.items() for s in secrets if s in text}
    assert found == set(), found


def test_disk_full_fails_closed_and_recovers(tmp_path, sim):
    """A size-capped filesystem (tmpfs, 2 MiB) holds the database; fill it, then free it."""
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a size-capped tmpfs needs root")
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)]).returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    p = None
    try:
        p = start_gateway(small, sim.url, name="full")
        gw = Gateway(p)
        key = gw.issue(vendor="stripe", max_usd="1000000", allowed_endpoints=["POST /v1/payment_intents"], duplicate_window=0)
        assert post(gw, key["vault_key"], body=b"amount=100&currency=usd&confirm=true&payment_method=pm_card_visa")[0] == 200
        filler = small / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        charge = b"amount=100&currency=usd&confirm=true&payment_method=pm_card_visa"
        statuses = [post(gw, key["vault_key"], body=charge)[0] for _ in range(40)]
        assert 503 in statuses, statuses
        assert set(statuses) <= {200, 503}, statuses
        filler.unlink()
        status, body, _ = post(gw, key["vault_key"], body=charge)
        assert status == 200, body
        # Whatever went through while the disk was full is still counted ($1 each).
        forwarded = 2 + statuses.count(200)
        usage = gw.key(key["key_id"])
        counted = sum(round(float(usage[f]) * 100) for f in ("spent_usd", "pending_usd", "reserved_usd"))
        assert counted >= forwarded * 100, (usage, statuses)
    finally:
        if p:
            p.stop()
        subprocess.run(["umount", "-l", str(small)])
