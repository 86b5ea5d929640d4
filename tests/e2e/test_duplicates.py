"""The duplicate-action guard through the official Stripe and Twilio SDKs: a support agent's
triple refund reaches the vendor once; the repeats are refused with 409
`vendorgate_duplicate_action` naming the first call. The Stripe SDK puts a fresh
Idempotency-Key on every call, so the guard cannot lean on it."""

import pytest
import stripe
from twilio.base.exceptions import TwilioRestException

from conftest import stripe_client, twilio_client


def refunds_seen(seen):
    return [r for r in seen() if r["path"].endswith("/v1/refunds")]


def test_a_triple_refund_through_the_stripe_sdk_is_sent_once(gateway, seen):
    key = gateway.issue(vendor="stripe", max_usd="500", allowed_endpoints=["POST /v1/payment_intents", "POST /v1/refunds"])
    sc = stripe_client(gateway, key["vault_key"])
    pi = sc.v1.payment_intents.create(params={"amount": 5000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"})
    assert pi.status == "succeeded"
    first = sc.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1500, "reason": "requested_by_customer"})
    assert first.status == "succeeded"
    for attempt in (2, 3):
        # The agent "tries again" while it waits for a confirmation: other metadata, a new
        # Idempotency-Key from the SDK, the same refund.
        with pytest.raises(stripe.StripeError) as e:
            sc.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1500, "metadata": {"attempt": str(attempt)}})
        assert e.value.http_status == 409
        err = e.value.json_body["error"]
        assert err["code"] == "vendorgate_duplicate_action", err
        assert "duplicate_window" in err["message"] and "refunds" in err["message"]
        named = e.value.json_body["vendorgate"]["first_call"]
        assert named["time"] and f"spend_id {named['spend_id']}" in err["message"], err
    assert len(refunds_seen(seen)) == 1, "only the first refund reached Stripe"
    # The operator finds the first refund in the audit log by the spend_id the 409 named.
    firsts = [r for r in gateway.audit(key_id=key["key_id"]) if r["spend_id"] == named["spend_id"]]
    assert [(r["endpoint"], r["decision"]) for r in firsts] == [("/v1/refunds", "forwarded")], firsts
    # A refund of another amount is another action.
    sc.v1.refunds.create(params={"payment_intent": pi.id, "amount": 700})
    assert len(refunds_seen(seen)) == 2
    rows = gateway.audit(key_id=key["key_id"])
    assert sorted(r["decision"] for r in rows).count("duplicate_action") == 2
    # A retry of the first refund with its own Idempotency-Key is a replay, not a duplicate.
    again = sc.v1.refunds.create(params={"payment_intent": pi.id, "amount": 300}, options={"idempotency_key": "refund-300"})
    replay = sc.v1.refunds.create(params={"payment_intent": pi.id, "amount": 300}, options={"idempotency_key": "refund-300"})
    assert replay.id == again.id


def test_the_same_sms_twice_through_the_twilio_sdk(gateway, seen):
    key = gateway.issue(vendor="twilio", max_usd="1", allowed_endpoints=["POST /2010-04-01/Accounts/*/Messages.json"])
    tc = twilio_client(gateway, key["vault_key"])
    tc.messages.create(to="+14155550100", from_="+14155550199", body="Your refund is on its way")
    with pytest.raises(TwilioRestException) as e:
        tc.messages.create(to="+14155550100", from_="+14155550199", body="Your refund is on its way")
    assert e.value.status == 409 and e.value.code == "vendorgate_duplicate_action"
    tc.messages.create(to="+14155550101", from_="+14155550199", body="Your refund is on its way")
    sent = [r for r in seen() if r["path"].endswith("/Messages.json")]
    assert len(sent) == 2


def test_a_key_can_turn_the_guard_off(gateway, seen):
    key = gateway.issue(vendor="twilio", max_usd="1", duplicate_window=0, allowed_endpoints=["POST /2010-04-01/Accounts/*/Messages.json"])
    tc = twilio_client(gateway, key["vault_key"])
    for _ in range(2):
        tc.messages.create(to="+14155550100", from_="+14155550199", body="ping")
    assert len([r for r in seen() if r["path"].endswith("/Messages.json")]) == 2
    bad = gateway.issue_status(vendor="twilio", duplicate_window="forever", allowed_endpoints=[])
    assert bad[0] == 400 and "duplicate_window" in bad[1]["error"]["message"]
