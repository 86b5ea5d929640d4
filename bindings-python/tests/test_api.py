"""Every Gateway / Client method, in embedded and connect mode."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

import vendorgate
from vendorgate import Gateway

from conftest import PI_FORM, sim_seen

UTC = dt.timezone.utc


def run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


def test_mode(gw: Gateway) -> None:
    assert gw.mode in ("embedded", "connect")
    assert gw.mode in repr(gw)


def test_issue_key_fields(gw: Gateway) -> None:
    rid = run_id()
    before = dt.datetime.now(UTC)
    key = gw.issue_key(
        "stripe",
        max_usd=500,
        daily_usd_cap="120.50",
        allowed_endpoints=["POST /v1/payment_intents", "/v1/payment_intents/*"],
        expires_in=600,
        run_id=rid,
        metadata={"agent": "billing", "n": 3},
    )
    assert key.vault_key.startswith("vk_") and len(key.vault_key) >= 46
    assert key.key_id.startswith("key_")
    assert key.vendor == "stripe"
    assert key.run_id == rid
    assert key.metadata == {"agent": "billing", "n": 3}
    assert key.policy.max_usd == Decimal("500")
    assert isinstance(key.policy.max_usd, Decimal)
    assert key.policy.daily_usd_cap == Decimal("120.50")
    assert key.policy.allowed_endpoints == ("POST /v1/payment_intents", "/v1/payment_intents/*")
    assert key.expires_at.tzinfo is not None
    assert dt.timedelta(seconds=590) < key.expires_at - before < dt.timedelta(seconds=610)
    # The vault key is never in repr.
    assert key.vault_key[3:] not in repr(key) and key.vault_key[3:] not in str(key)


def test_expires_in_forms(gw: Gateway) -> None:
    a = gw.issue_key("stripe", expires_in="15m")
    b = gw.issue_key("stripe", expires_in=dt.timedelta(hours=2))
    now = dt.datetime.now(UTC)
    assert dt.timedelta(minutes=14) < a.expires_at - now <= dt.timedelta(minutes=15)
    assert dt.timedelta(minutes=119) < b.expires_at - now <= dt.timedelta(hours=2)


def test_request_forwards_and_reports_cost(gw: Gateway, sim_url: str) -> None:
    key = gw.issue_key("stripe", max_usd=500, allowed_endpoints=["POST /v1/payment_intents"])
    c = gw.client(key)
    r = c.request("POST", "/v1/payment_intents", form={"amount": 12345, **PI_FORM, "metadata": {"order": "o-1"}})
    assert r.status == 200 and r.ok
    body = r.json()
    assert body["object"] == "payment_intent" and body["status"] == "succeeded"
    assert body["metadata"] == {"order": "o-1"}
    assert r.cost_usd == Decimal("123.45") and isinstance(r.cost_usd, Decimal)
    assert r.remaining_usd == Decimal("376.55") and isinstance(r.remaining_usd, Decimal)
    # Case-insensitive headers, the gateway's own included.
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["Content-Type"] == r.headers["CONTENT-TYPE"]
    assert Decimal(r.headers["Vendorgate-Cost-Usd"]) == Decimal("123.45")
    assert "vendorgate-remaining-usd" in r.headers
    assert r.text.startswith("{") and '"payment_intent"' in r.text
    assert isinstance(r.content, bytes)
    # The vendor saw the real credential, never the vault key.
    mine = [s for s in sim_seen(sim_url) if body["id"] in s.get("body", "") or s["path"] == "/v1/payment_intents"]
    assert mine
    for s in sim_seen(sim_url):
        assert key.vault_key not in (s.get("authorization") or "")
        assert key.vault_key not in s.get("body", "")


def test_vendor_errors_are_responses_not_exceptions(gw: Gateway) -> None:
    key = gw.issue_key("stripe", max_usd=500, allowed_endpoints=["POST /v1/payment_intents"])
    r = gw.client(key).request(
        "POST", "/v1/payment_intents",
        form={"amount": 1000, "currency": "usd", "confirm": True, "payment_method": "pm_card_chargeDeclined"},
    )
    assert r.status == 402
    assert r.json()["error"]["code"] == "card_declined"
    assert r.cost_usd == 0
    assert gw.usage(key).spent_usd == 0


def test_usage_fields(gw: Gateway) -> None:
    key = gw.issue_key("stripe", max_usd="300", daily_usd_cap=200, allowed_endpoints=["POST /v1/payment_intents"])
    gw.client(key).request("POST", "/v1/payment_intents", form={"amount": 5000, **PI_FORM})
    u = gw.usage(key)
    assert u.key_id == key.key_id and u.vendor == "stripe"
    assert u.spent_usd == Decimal("50")
    assert u.pending_usd == 0 and u.reserved_usd == 0
    assert u.today_usd == Decimal("50") and u.total_usd == Decimal("50")
    assert u.remaining_usd == Decimal("150")  # the tighter cap: daily 200 - 50
    for v in (u.spent_usd, u.pending_usd, u.reserved_usd, u.today_usd, u.remaining_usd):
        assert isinstance(v, Decimal)
    assert u.revoked is False and u.active is True and u.expired is False
    assert u.expires_at == key.expires_at
    assert u.policy == key.policy


def test_key_arguments_accept_key_id_and_vault_key(gw: Gateway) -> None:
    key = gw.issue_key("twilio", max_usd=1)
    assert gw.usage(key).key_id == key.key_id
    assert gw.usage(key.key_id).key_id == key.key_id
    assert gw.usage(key.vault_key).key_id == key.key_id
    assert gw.usage(gw.usage(key)).key_id == key.key_id
    # Nothing is looked up first: the gateway takes the vendor from the vault key itself.
    c = gw.client(key.vault_key)
    assert c.vendor is None and c.key_id is None
    with pytest.raises(vendorgate.EndpointNotAllowed) as ei:
        c.request("POST", "/2010-04-01/Accounts/AC1/Messages.json", form={"To": "+15555550100", "Body": "x"})
    assert "Messages.json" in str(ei.value)
    gw.revoke(key.vault_key)
    assert gw.usage(key.key_id).revoked


def test_revoke(gw: Gateway) -> None:
    key = gw.issue_key("stripe", max_usd=100, allowed_endpoints=["GET /v1/balance"])
    c = gw.client(key)
    assert c.request("GET", "/v1/balance").status == 200
    gw.revoke(key)
    with pytest.raises(vendorgate.KeyRevoked) as ei:
        c.request("GET", "/v1/balance")
    assert ei.value.status == 401 and ei.value.code == "key_revoked"
    assert ei.value.key_id == key.key_id
    gw.revoke(key)  # twice is fine
    u = gw.usage(key)
    assert u.revoked and not u.active and u.revoked_at is not None


def test_list_keys(gw: Gateway) -> None:
    rid = run_id()
    k1 = gw.issue_key("stripe", max_usd=1, run_id=rid)
    k2 = gw.issue_key("resend", max_usd=1, run_id=rid)
    gw.issue_key("stripe", max_usd=1, run_id=run_id())
    keys = gw.list_keys(run_id=rid)
    assert {k.key_id for k in keys} == {k1.key_id, k2.key_id}
    assert all(isinstance(k, vendorgate.KeyStatus) for k in keys)
    gw.revoke(k1)
    active = gw.list_keys(run_id=rid, active=True)
    assert [k.key_id for k in active] == [k2.key_id]
    assert any(k.key_id == k1.key_id for k in gw.list_keys())


def test_audit(gw: Gateway) -> None:
    rid = run_id()
    start = dt.datetime.now(UTC) - dt.timedelta(seconds=1)
    key = gw.issue_key("stripe", max_usd=150, allowed_endpoints=["POST /v1/payment_intents"], run_id=rid)
    c = gw.client(key)
    c.request("POST", "/v1/payment_intents", form={"amount": 10000, **PI_FORM}, idempotency_key="audit-1")
    with pytest.raises(vendorgate.SpendCapExceeded):
        c.request("POST", "/v1/payment_intents", form={"amount": 10000, **PI_FORM})
    with pytest.raises(vendorgate.EndpointNotAllowed):
        c.request("GET", "/v1/customers")
    rows = gw.audit(run_id=rid)
    assert [r["decision"] for r in rows] == ["forwarded", "spend_cap_exceeded", "endpoint_not_allowed"]
    first = rows[0]
    for f in ("time", "key_id", "run_id", "vendor", "method", "endpoint", "decision", "status",
              "upstream_status", "estimate_usd", "cost_usd", "money_state", "latency_ms",
              "upstream_latency_ms", "idempotency_key", "vendor_request_id"):
        assert f in first, f
    assert first["cost_usd"] == Decimal("100") and isinstance(first["cost_usd"], Decimal)
    assert isinstance(first["estimate_usd"], Decimal)
    assert first["status"] == 200 and first["upstream_status"] == 200
    assert first["key_id"] == key.key_id and first["run_id"] == rid
    assert first["idempotency_key"] == "audit-1"
    assert first["endpoint"] == "/v1/payment_intents" and first["method"] == "POST"
    assert isinstance(first["time"], dt.datetime) and first["time"] >= start
    assert rows[1]["status"] == 402 and rows[1]["cost_usd"] == 0
    # The forwarded call reserved money: its ledger row; the refusals reserved none.
    assert isinstance(first["spend_id"], int) and [r["spend_id"] for r in rows[1:]] == [None, None]
    # Filters: key (object, id or vault key), since, limit.
    assert len(gw.audit(key=key)) == 3
    assert len(gw.audit(key=key.key_id)) == 3
    assert len(gw.audit(key=key.vault_key)) == 3
    assert [r["decision"] for r in gw.audit(run_id=rid, limit=1)] == ["endpoint_not_allowed"]
    assert gw.audit(run_id=rid, since=dt.datetime.now(UTC) + dt.timedelta(hours=1)) == []
    assert len(gw.audit(run_id=rid, since=start)) == 3
    assert len(gw.audit(run_id=rid, since=dt.timedelta(minutes=5))) == 3
    assert len(gw.audit(run_id=rid, since=start.isoformat())) == 3


def test_run_revokes_on_success(gw: Gateway) -> None:
    rid = run_id()
    with gw.run("stripe", max_usd=10, allowed_endpoints=["GET /v1/balance"], run_id=rid) as key:
        assert gw.client(key).request("GET", "/v1/balance").status == 200
        assert not gw.usage(key).revoked
    assert gw.usage(key).revoked
    with pytest.raises(vendorgate.KeyRevoked):
        gw.client(key).request("GET", "/v1/balance")


def test_run_revokes_on_error(gw: Gateway) -> None:
    class AgentCrashed(Exception):
        pass

    with pytest.raises(AgentCrashed):
        with gw.run("stripe", max_usd=10, allowed_endpoints=["GET /v1/balance"]) as key:
            gw.client(key).request("GET", "/v1/balance")
            raise AgentCrashed("boom")
    assert gw.usage(key).revoked


def test_run_revokes_on_refusal(gw: Gateway) -> None:
    with pytest.raises(vendorgate.SpendCapExceeded):
        with gw.run("stripe", max_usd=10, allowed_endpoints=["POST /v1/payment_intents"]) as key:
            gw.client(key).request("POST", "/v1/payment_intents", form={"amount": 5000, **PI_FORM})
    assert gw.usage(key).revoked


def test_twilio_and_resend(gw: Gateway) -> None:
    tk = gw.issue_key("twilio", max_usd=1, allowed_endpoints=["POST /2010-04-01/Accounts/*/Messages.json"])
    r = gw.client(tk).request(
        "POST", "/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json",
        form={"To": "+15555550100", "From": "+15555550199", "Body": "hello"},
    )
    assert r.status == 201, r.text
    assert r.json()["status"] == "queued"
    assert r.cost_usd == Decimal("0.0083")
    rk = gw.issue_key("resend", max_usd=1, allowed_endpoints=["POST /emails"])
    r = gw.client(rk).request("POST", "/emails", json={"from": "a@example.com", "to": ["b@example.com", "c@example.com"], "subject": "s", "text": "t"})
    assert r.status == 200, r.text
    assert "id" in r.json()
    assert r.cost_usd == Decimal("0.0018")


def test_body_raw_and_headers(gw: Gateway) -> None:
    key = gw.issue_key("resend", max_usd=1, allowed_endpoints=["POST /emails"])
    c = gw.client(key)
    raw = b'{"from":"a@example.com","to":"b@example.com","subject":"s","text":"t"}'
    r = c.request("POST", "/emails", body=raw, headers={"Content-Type": "application/json", "X-Trace": "abc"})
    assert r.status == 200, r.text
    assert r.cost_usd == Decimal("0.0009")
    r = c.request("POST", "/emails", body=raw.decode(), headers=[("content-type", "application/json")])
    assert r.status == 200


def test_get_and_post_helpers(gw: Gateway) -> None:
    key = gw.issue_key("stripe", max_usd=100, allowed_endpoints=["/v1/payment_intents", "/v1/payment_intents/*"])
    c = gw.client(key)
    pi = c.post("/v1/payment_intents", form={"amount": 700, "currency": "usd"}).json()
    got = c.get(f"/v1/payment_intents/{pi['id']}")
    assert got.json()["id"] == pi["id"] and got.cost_usd == 0


def test_client_needs_vault_key(gw: Gateway) -> None:
    key = gw.issue_key("stripe", max_usd=1)
    with pytest.raises(ValueError, match="vault key"):
        gw.client(key.key_id)
    with pytest.raises(ValueError, match="stripe"):
        gw.client(key, vendor="twilio")
    c = gw.client(key.vault_key, vendor="stripe")
    assert c.key_id is None and c.vendor == "stripe"
