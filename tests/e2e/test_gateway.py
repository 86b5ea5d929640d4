"""End to end: the `vendorgate` binary, its simulator upstream, and the official Python SDKs
for Stripe, Twilio and Resend, changing only base URL and key."""

import base64
import concurrent.futures
import time
import urllib.parse

import pytest
import resend
import stripe
from twilio.base.exceptions import TwilioRestException

from conftest import ADMIN_TOKEN, SIM_CREDS, Gateway, http, start_gateway, stripe_client, twilio_client, use_resend






def no_vault_key_upstream(seen):
    """Every request the vendor saw carried a real credential and no vault key."""
    rows = seen()
    assert rows, "the vendor saw nothing"
    for r in rows:
        auth = r["authorization"] or ""
        decoded = ""
        if auth.startswith("Basic "):
            decoded = base64.b64decode(auth[6:]).decode()
        assert "vk_" not in auth and "vk_" not in decoded, r
        assert any(c in auth or c in decoded for c in SIM_CREDS.values()), r
    return rows


# ---- the SDK matrix ---------------------------------------------------------------------


def test_stripe_python_sdk(gateway, seen):
    key = gateway.issue(vendor="stripe", max_usd="500", allowed_endpoints=["POST /v1/payment_intents"])
    sc = stripe_client(gateway, key["vault_key"])
    pi = sc.v1.payment_intents.create(params={"amount": 2500, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"})
    assert pi.status == "succeeded" and pi.amount_received == 2500
    assert gateway.key(key["key_id"])["spent_usd"] == "25.00"
    no_vault_key_upstream(seen)


def test_twilio_python_sdk(gateway, seen):
    key = gateway.issue(vendor="twilio", max_usd="1", allowed_endpoints=["POST /2010-04-01/Accounts/*/Messages.json"])
    msg = twilio_client(gateway, key["vault_key"]).messages.create(to="+14155550100", from_="+14155550199", body="hello from the gateway")
    assert msg.status == "queued"
    usage = gateway.key(key["key_id"])
    assert usage["pending_usd"] == "0.0083"
    rows = no_vault_key_upstream(seen)
    assert f"/Accounts/{SIM_CREDS['TWILIO_ACCOUNT_SID']}/" in rows[-1]["path"], "the SID is rewritten to the real one"


def test_resend_python_sdk(gateway, seen):
    key = gateway.issue(vendor="resend", max_usd="1", allowed_endpoints=["POST /emails"])
    use_resend(gateway, key["vault_key"])
    sent = resend.Emails.send({"from": "a@example.com", "to": ["b@example.com", "c@example.com"], "subject": "hi", "text": "x"})
    assert sent["id"]
    assert gateway.key(key["key_id"])["spent_usd"] == "0.0018"
    no_vault_key_upstream(seen)


def test_sdks_raise_their_own_errors_with_the_reason(gateway):
    # Stripe: 403 endpoint, 402 cap, 401 revoked.
    key = gateway.issue(vendor="stripe", max_usd="10", allowed_endpoints=["POST /v1/payment_intents"])
    sc = stripe_client(gateway, key["vault_key"])
    with pytest.raises(stripe.PermissionError) as e:
        sc.v1.refunds.create(params={"payment_intent": "pi_x"})
    assert e.value.json_body["error"]["code"] == "vendorgate_endpoint_not_allowed" and "allowed_endpoints" in str(e.value)
    with pytest.raises(stripe.CardError) as e:
        sc.v1.payment_intents.create(params={"amount": 5000, "currency": "usd", "confirm": True})
    assert e.value.json_body["error"]["code"] == "vendorgate_spend_cap_exceeded" and "cap" in str(e.value)
    gateway.revoke(key["key_id"])
    with pytest.raises(stripe.AuthenticationError) as e:
        sc.v1.payment_intents.create(params={"amount": 100, "currency": "usd"})
    assert e.value.json_body["error"]["code"] == "vendorgate_key_revoked" and "revoked" in str(e.value)
    # Twilio.
    tkey = gateway.issue(vendor="twilio", daily_usd_cap="0.01", allowed_endpoints=["POST /2010-04-01/Accounts/*/Messages.json"])
    tc = twilio_client(gateway, tkey["vault_key"])
    tc.messages.create(to="+14155550100", from_="+1", body="one")
    with pytest.raises(TwilioRestException) as e:
        tc.messages.create(to="+14155550100", from_="+1", body="two")
    assert e.value.status == 402 and e.value.code == "vendorgate_spend_cap_exceeded"
    with pytest.raises(TwilioRestException) as e:
        tc.calls.create(to="+14155550100", from_="+1", url="http://x")
    assert e.value.status == 403 and e.value.code == "vendorgate_endpoint_not_allowed"
    # Resend.
    rkey = gateway.issue(vendor="resend", max_usd="0.001", allowed_endpoints=["POST /emails"])
    use_resend(gateway, rkey["vault_key"])
    with pytest.raises(resend.exceptions.ResendError) as e:
        resend.Emails.send({"from": "a@example.com", "to": ["b@example.com", "c@example.com"], "subject": "s", "text": "t"})
    assert "vendorgate_spend_cap_exceeded" in repr(e.value.__dict__) and "cap" in str(e.value)


# ---- the cap under concurrency -----------------------------------------------------------


def charge(gw, vault_key, amount=10000, extra=None):
    form = {"amount": str(amount), "currency": "usd", "confirm": "true", "payment_method": "pm_card_visa", **(extra or {})}
    return http("POST", f"{gw.url}/v1/payment_intents", urllib.parse.urlencode(form).encode(), headers={"Authorization": f"Bearer {vault_key}", "Content-Type": "application/x-www-form-urlencoded"})


def test_200_concurrent_100_dollar_charges_against_500_cap(gateway, seen):
    # 200 identical charges race the cap, not the duplicate guard (tests/e2e/test_duplicates.py).
    key = gateway.issue(vendor="stripe", max_usd="500", allowed_endpoints=["POST /v1/payment_intents"], run_id="race", duplicate_window=0)
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda _: charge(gateway, key["vault_key"]), range(200)))
    statuses = [r[0] for r in results]
    assert statuses.count(200) == 5, statuses
    assert statuses.count(402) == 195
    assert gateway.key(key["key_id"])["spent_usd"] == "500.00"
    charges = [r for r in seen() if r["path"].endswith("/v1/payment_intents")]
    assert len(charges) == 5, "refused calls never reach the vendor"
    rows = gateway.audit(run_id="race", limit=1000)
    assert len(rows) == 200
    assert {r["decision"] for r in rows} == {"forwarded", "spend_cap_exceeded"}
    for field in ("time", "key_id", "run_id", "vendor", "method", "endpoint", "decision", "status", "upstream_status", "estimate_usd", "cost_usd", "money_state", "latency_ms", "upstream_latency_ms", "idempotency_key", "vendor_request_id"):
        assert field in rows[0], field


# ---- keys, admin API, limits ------------------------------------------------------------


def test_revoke_expiry_and_no_collateral_damage(gateway):
    a = gateway.issue(vendor="stripe", max_usd="100", allowed_endpoints=["POST /v1/payment_intents"])
    b = gateway.issue(vendor="stripe", max_usd="100", allowed_endpoints=["POST /v1/payment_intents"])
    assert charge(gateway, a["vault_key"], 100)[0] == 200
    gateway.revoke(a["key_id"])
    status, body, _ = charge(gateway, a["vault_key"], 100)
    assert status == 401 and body["error"]["code"] == "vendorgate_key_revoked"
    assert charge(gateway, b["vault_key"], 100)[0] == 200
    short = gateway.issue(vendor="stripe", max_usd="100", allowed_endpoints=["POST /v1/payment_intents"], expires_in=1)
    time.sleep(1.2)
    status, body, _ = charge(gateway, short["vault_key"], 100)
    assert status == 401 and body["error"]["code"] == "vendorgate_key_expired"


def test_admin_api_guards_and_input_errors(gateway):
    assert http("GET", f"{gateway.url}/v1/keys")[0] == 401
    assert http("GET", f"{gateway.url}/v1/keys", token="wrong")[0] == 401
    status, body, _ = http("POST", f"{gateway.url}/v1/keys", b"{not json", token=ADMIN_TOKEN)
    assert status == 400 and body["error"]["field"] == "body"
    status, body, _ = http("POST", f"{gateway.url}/v1/keys", {"vendor": "stripe", "max_usd": "-5"}, token=ADMIN_TOKEN)
    assert status == 400 and body["error"]["field"] == "max_usd"
    status, body, _ = http("POST", f"{gateway.url}/v1/keys", {"vendor": "stripe", "allowed_endpoints": ["/v1/../x"]}, token=ADMIN_TOKEN)
    assert status == 400 and body["error"]["field"] == "allowed_endpoints"
    assert http("GET", f"{gateway.url}/healthz")[0] == 200
    status, text, _ = http("GET", f"{gateway.url}/metrics", token=ADMIN_TOKEN)
    assert status == 200 and "vendorgate_requests_total" in text


def test_oversized_body_is_413(gateway):
    key = gateway.issue(vendor="stripe", max_usd="1", allowed_endpoints=["POST /v1/customers"])
    big = b"description=" + b"x" * (1024 * 1024 + 10)
    status, body, _ = http("POST", f"{gateway.url}/v1/customers", big, headers={"Authorization": f"Bearer {key['vault_key']}", "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413


def test_upstream_down_is_502_and_costs_nothing(tmp_path, sim):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = start_gateway(tmp_path, sim.url, extra_env={"VENDORGATE_STRIPE_URL": f"http://127.0.0.1:{port}"}, name="down")
    try:
        gw = Gateway(p)
        key = gw.issue(vendor="stripe", max_usd="500", allowed_endpoints=["POST /v1/payment_intents"])
        status, body, _ = charge(gw, key["vault_key"])
        assert status == 502 and body["error"]["code"] == "vendorgate_upstream_error"
        usage = gw.key(key["key_id"])
        assert usage["spent_usd"] == "0.00" and usage["pending_usd"] == "0.00" and usage["remaining_usd"] == "500.00"
    finally:
        p.stop()


def test_upstream_timeout_after_send_is_504_and_reservation_kept(tmp_path, sim):
    p = start_gateway(tmp_path, sim.url, config_text="request_timeout_ms = 500\n", name="slow")
    try:
        gw = Gateway(p)
        key = gw.issue(vendor="stripe", max_usd="500", allowed_endpoints=["POST /v1/payment_intents"])
        status, body, _ = http(
            "POST",
            f"{gw.url}/v1/payment_intents",
            b"amount=10000&currency=usd&confirm=true",
            headers={"Authorization": f"Bearer {key['vault_key']}", "Content-Type": "application/x-www-form-urlencoded", "X-Sim-Fault": "timeout"},
        )
        assert status == 504, body
        usage = gw.key(key["key_id"])
        assert usage["pending_usd"] == "100.00" and usage["remaining_usd"] == "400.00"
    finally:
        p.stop()


def test_unconfirmed_intent_is_free_and_confirm_is_priced_from_memory(gateway):
    key = gateway.issue(vendor="stripe", max_usd="150", allowed_endpoints=["POST /v1/payment_intents", "POST /v1/payment_intents/*/confirm"])
    sc = stripe_client(gateway, key["vault_key"])
    a = sc.v1.payment_intents.create(params={"amount": 10000, "currency": "usd", "payment_method": "pm_card_visa"})
    b = sc.v1.payment_intents.create(params={"amount": 10000, "currency": "usd", "payment_method": "pm_card_visa"})
    assert gateway.key(key["key_id"])["spent_usd"] == "0.00"
    assert sc.v1.payment_intents.confirm(a.id).status == "succeeded"
    assert gateway.key(key["key_id"])["spent_usd"] == "100.00"
    with pytest.raises(stripe.CardError) as e:
        sc.v1.payment_intents.confirm(b.id)
    assert e.value.json_body["error"]["code"] == "vendorgate_spend_cap_exceeded"


def test_stripe_sdk_retry_with_same_idempotency_key_is_one_spend(gateway):
    key = gateway.issue(vendor="stripe", max_usd="500", allowed_endpoints=["POST /v1/payment_intents"])
    form = b"amount=10000&currency=usd&confirm=true&payment_method=pm_card_visa"
    h = {"Authorization": f"Bearer {key['vault_key']}", "Content-Type": "application/x-www-form-urlencoded", "Idempotency-Key": "retry-1"}
    first = http("POST", f"{gateway.url}/v1/payment_intents", form, headers=h)
    second = http("POST", f"{gateway.url}/v1/payment_intents", form, headers=h)
    assert first[0] == second[0] == 200 and first[1]["id"] == second[1]["id"]
    assert gateway.key(key["key_id"])["spent_usd"] == "100.00"
    conflict = http("POST", f"{gateway.url}/v1/payment_intents", form + b"0", headers=h)
    assert conflict[0] == 409 and conflict[1]["error"]["code"] == "vendorgate_duplicate_request"
