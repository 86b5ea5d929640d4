"""serve(): the official stripe, twilio and resend SDKs against an embedded gateway."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Iterator, Tuple

import pytest
import resend
import stripe
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client as TwilioClient

from vendorgate import Gateway

from conftest import SIM_CREDENTIALS, sim_seen


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Tuple[Gateway, str]]:
    gw = Gateway.open(tmp_path / "served.db")
    url = gw.serve(port=0, admin_token="served-admin")
    yield gw, url
    gw.close()


def test_serve_returns_a_stable_url(served: Tuple[Gateway, str]) -> None:
    gw, url = served
    assert url.startswith("http://127.0.0.1:")
    assert gw.serve() == url
    with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
        assert json.loads(r.read())["status"] == "ok"


def test_serve_admin_api_and_connect(served: Tuple[Gateway, str]) -> None:
    gw, url = served
    remote = Gateway.connect(url, admin_token="served-admin")
    key = remote.issue_key("stripe", max_usd=5)
    assert gw.usage(key.key_id).key_id == key.key_id  # one store behind both


def test_close_stops_the_server(tmp_path: Path) -> None:
    gw = Gateway.open(tmp_path / "c.db")
    url = gw.serve()
    gw.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/healthz", timeout=2)
    url2 = gw.serve()  # can serve again
    with urllib.request.urlopen(url2 + "/healthz", timeout=5) as r:
        assert r.status == 200
    gw.close()


def test_stripe_sdk(served: Tuple[Gateway, str], sim_url: str) -> None:
    gw, url = served
    key = gw.issue_key("stripe", max_usd=150, allowed_endpoints=["POST /v1/payment_intents", "GET /v1/payment_intents/*"])
    client = stripe.StripeClient(key.vault_key, base_addresses={"api": url + "/stripe"}, max_network_retries=0)
    pi = client.v1.payment_intents.create(
        params={"amount": 10000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}
    )
    assert pi.status == "succeeded" and pi.amount_received == 10000
    assert client.v1.payment_intents.retrieve(pi.id).id == pi.id
    # The vendor saw the real key.
    auths = [s.get("authorization") or "" for s in sim_seen(sim_url) if s["vendor"] == "stripe"]
    assert any(SIM_CREDENTIALS["STRIPE_SECRET_KEY"] in a for a in auths)
    assert not any(key.vault_key in a for a in auths)
    # The same charge again is a repeat: the SDK raises its own error with the gateway's code.
    with pytest.raises(stripe.StripeError) as ei:
        client.v1.payment_intents.create(
            params={"amount": 10000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}
        )
    # stripe-python leaves .code unset for a 409 (an APIError); the error body carries it.
    assert ei.value.http_status == 409 and ei.value.json_body["error"]["code"] == "vendorgate_duplicate_action"
    # Another charge over the cap: the same, with the cap's code.
    with pytest.raises(stripe.StripeError) as ei:
        client.v1.payment_intents.create(
            params={"amount": 9000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}
        )
    e = ei.value
    assert e.http_status == 402
    assert e.code == "vendorgate_spend_cap_exceeded"
    assert "vendorgate_spend_cap_exceeded" in str(e.json_body)
    assert gw.usage(key).spent_usd == Decimal("100")


def test_stripe_sdk_module_api_base(served: Tuple[Gateway, str]) -> None:
    gw, url = served
    key = gw.issue_key("stripe", max_usd=1, allowed_endpoints=["GET /v1/balance"])
    saved = (stripe.api_base, stripe.api_key)
    stripe.api_base, stripe.api_key = url + "/stripe", key.vault_key
    try:
        bal = stripe.Balance.retrieve()
        assert bal.object == "balance"
        with pytest.raises(stripe.PermissionError) as ei:
            stripe.Customer.list()
        # stripe-python leaves .code unset for a 403; the error body carries it.
        assert ei.value.http_status == 403
        assert ei.value.json_body["error"]["code"] == "vendorgate_endpoint_not_allowed"
    finally:
        stripe.api_base, stripe.api_key = saved


def test_twilio_sdk(served: Tuple[Gateway, str], sim_url: str) -> None:
    gw, url = served
    key = gw.issue_key("twilio", max_usd="0.02", allowed_endpoints=["POST /2010-04-01/Accounts/*/Messages.json", "GET /2010-04-01/Accounts/*/Messages/*"])
    client = TwilioClient("AC" + "0" * 32, key.vault_key)
    client.api.base_url = url + "/twilio"
    msg = client.messages.create(to="+15555550100", from_="+15555550199", body="Your code is 1234")
    assert msg.sid and msg.status == "queued"
    assert gw.usage(key).total_usd == Decimal("0.0083")
    seen = [s for s in sim_seen(sim_url) if s["vendor"] == "twilio"]
    assert any(SIM_CREDENTIALS["TWILIO_ACCOUNT_SID"] in s["path"] for s in seen)
    client.messages.create(to="+15555550100", from_="+15555550199", body="second")
    with pytest.raises(TwilioRestException) as ei:
        client.messages.create(to="+15555550100", from_="+15555550199", body="third")
    assert ei.value.status == 402
    assert "vendorgate_spend_cap_exceeded" in str(ei.value.code) + str(ei.value.msg)


def test_resend_sdk(served: Tuple[Gateway, str]) -> None:
    gw, url = served
    key = gw.issue_key("resend", max_usd="0.002", allowed_endpoints=["POST /emails"])
    saved = (resend.api_url, resend.api_key)
    resend.api_url, resend.api_key = url + "/resend", key.vault_key
    try:
        sent = resend.Emails.send({"from": "agent@example.com", "to": ["a@example.com", "b@example.com"], "subject": "Hi", "html": "<p>hi</p>"})
        assert sent["id"]
        assert gw.usage(key).spent_usd == Decimal("0.0018")
        with pytest.raises(resend.exceptions.ResendError) as ei:
            resend.Emails.send({"from": "agent@example.com", "to": "a@example.com", "subject": "Hi", "html": "<p>hi</p>"})
        assert "vendorgate_spend_cap_exceeded" in f"{ei.value.code} {ei.value.error_type} {ei.value}"
    finally:
        resend.api_url, resend.api_key = saved
