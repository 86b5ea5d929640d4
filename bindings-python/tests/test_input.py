"""Bad input → a clear ValueError (naming the field) or TypeError, before anything is sent."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict

import pytest

import vendorgate
from vendorgate import Gateway
from vendorgate._money import micros_to_usd, usd_text


@pytest.mark.parametrize(
    "value, text",
    [
        (500, "500"),
        (Decimal("12.50"), "12.50"),
        (Decimal("1E+2"), "100"),
        ("0.25", "0.25"),
        (0.1, "0.1"),
        (19.99, "19.99"),
        (1e-06, "0.000001"),
        (2.5e3, "2500.0"),
    ],
)
def test_money_in(value: Any, text: str) -> None:
    assert usd_text(value, "max_usd") == text


def test_money_out() -> None:
    assert micros_to_usd(5_000_000) == Decimal("5.00")
    assert str(micros_to_usd(8_300)) == "0.0083"
    assert str(micros_to_usd(1)) == "0.000001"
    assert str(micros_to_usd(-1_500_000)) == "-1.50"


@pytest.mark.parametrize(
    "value, stored",
    [(500, "500"), (Decimal("12.5"), "12.5"), ("0.25", "0.25"), (19.99, "19.99"), (0.000001, "0.000001")],
)
def test_money_round_trips_exactly(gw: Gateway, value: Any, stored: str) -> None:
    key = gw.issue_key("stripe", max_usd=value)
    assert key.policy.max_usd == Decimal(stored)
    assert gw.usage(key).remaining_usd == Decimal(stored)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"max_usd": -1}, "max_usd"),
        ({"max_usd": "-0.01"}, "max_usd"),
        ({"daily_usd_cap": Decimal("-3")}, "daily_usd_cap"),
        ({"max_usd": "1.0000001"}, "max_usd"),
        ({"max_usd": 0.1234567}, "max_usd"),
        ({"max_usd": "lots"}, "max_usd"),
        ({"max_usd": "1e3"}, "max_usd"),
        ({"max_usd": 10**13}, "max_usd"),
        ({"max_usd": float("nan")}, "max_usd"),
        ({"max_usd": math.inf}, "max_usd"),
        ({"max_usd": Decimal("NaN")}, "max_usd"),
        ({"allowed_endpoints": ["/v1/../charges"]}, "allowed_endpoints"),
        ({"allowed_endpoints": ["FETCH /v1/charges"]}, "allowed_endpoints"),
        ({"allowed_endpoints": ["v1/charges"]}, "allowed_endpoints"),
        ({"allowed_endpoints": ["/v1/**/charges"]}, "allowed_endpoints"),
        ({"expires_in": 0}, "expires_in"),
        ({"expires_in": -5}, "expires_in"),
        ({"expires_in": "soon"}, "expires_in"),
        ({"expires_in": 10**9}, "expires_in"),
        ({"run_id": ""}, "run_id"),
        ({"stripe_accounts": ["not_an_account"]}, "stripe_accounts"),
    ],
)
def test_bad_values_raise_value_error(gw: Gateway, kwargs: Dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError) as ei:
        gw.issue_key("stripe", **kwargs)
    assert field in str(ei.value)


@pytest.mark.parametrize("vendor", ["paypal", "Stripe", ""])
def test_unknown_vendor(gw: Gateway, vendor: str) -> None:
    with pytest.raises(ValueError, match="vendor"):
        gw.issue_key(vendor, max_usd=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_usd": True},
        {"max_usd": [1]},
        {"max_usd": object()},
        {"daily_usd_cap": b"10"},
        {"allowed_endpoints": "POST /v1/charges"},
        {"allowed_endpoints": [1, 2]},
        {"allowed_endpoints": 5},
        {"expires_in": 1.5},
        {"expires_in": True},
        {"run_id": 42},
        {"metadata": ["a"]},
        {"metadata": {"x": object()}},
    ],
)
def test_wrong_types_raise_type_error(gw: Gateway, kwargs: Dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        gw.issue_key("stripe", **kwargs)


def test_vendor_must_be_str(gw: Gateway) -> None:
    with pytest.raises(TypeError):
        gw.issue_key(None)  # type: ignore[arg-type]


def test_request_argument_errors(gw: Gateway) -> None:
    key = gw.issue_key("stripe", max_usd=1, allowed_endpoints=["/v1/**"])
    c = gw.client(key)
    with pytest.raises(TypeError, match="at most one"):
        c.request("POST", "/v1/charges", form={"a": 1}, json={"a": 1})
    with pytest.raises(TypeError):
        c.request("POST", "/v1/charges", form=[("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="form field"):
        c.request("POST", "/v1/charges", form={"a": object()})
    with pytest.raises(TypeError, match="form field"):
        c.request("POST", "/v1/charges", form={"meta": {"deep": {1, 2}}})
    with pytest.raises(TypeError):
        c.request("POST", "/v1/charges", body=123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.request(5, "/v1/charges")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.request("GET", b"/v1/balance")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.request("GET", "/v1/balance", headers={"X-A": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        c.request("GET", "/v1/balance", idempotency_key=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path"):
        c.request("GET", "v1/balance")
    with pytest.raises(ValueError, match="header"):
        c.request("GET", "/v1/balance", headers={"bad header": "x"})


def test_other_argument_errors(gw: Gateway) -> None:
    with pytest.raises(TypeError):
        gw.usage(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        gw.revoke(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        gw.audit(limit=0)
    with pytest.raises(TypeError):
        gw.audit(limit="5")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        gw.audit(since=12345)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone"):
        import datetime as dt

        gw.audit(since=dt.datetime(2020, 1, 1))
    with pytest.raises(ValueError, match="since"):
        gw.audit(since="yesterday")
    with pytest.raises(TypeError):
        gw.list_keys(active="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        gw.client(42)  # type: ignore[arg-type]


def test_open_and_connect_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        Gateway.open(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="colour"):
        Gateway.open(tmp_path / "a.db", config={"colour": "red"})
    # A value of the wrong type is refused by the core, naming the key (InvalidInput is
    # also a ValueError); it was a TypeError raised by Python before the settings layer.
    with pytest.raises(vendorgate.InvalidInput, match="max_body_bytes"):
        Gateway.open(tmp_path / "a.db", config={"max_body_bytes": "big"})
    with pytest.raises(TypeError):
        Gateway.open(tmp_path / "a.db", config=[("stripe", "x")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stripe.url"):
        Gateway.open(tmp_path / "a.db", config={"stripe": {"url": "ftp://example.com"}})
    with pytest.raises(ValueError, match="max_body_bytes"):
        Gateway.open(tmp_path / "a.db", config={"max_body_bytes": 0})
    with pytest.raises(ValueError, match="request_timeout_ms"):
        Gateway.open(tmp_path / "a.db", config={"request_timeout_ms": -1})
    with pytest.raises(ValueError, match="resend_email_usd"):
        Gateway.open(tmp_path / "a.db", config={"pricing": {"resend_email_usd": "-1"}})
    with pytest.raises(TypeError):
        Gateway.connect(8080)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="url"):
        Gateway.connect("not a url")
    with pytest.raises(ValueError):
        Gateway.open(tmp_path / "b.db").serve(port=70000)
    with pytest.raises(TypeError):
        Gateway.open(tmp_path / "b.db").serve(port="80")  # type: ignore[arg-type]


def test_serve_needs_embedded(connected: Gateway) -> None:
    with pytest.raises(ValueError, match="embedded"):
        connected.serve()


def test_config_overrides_apply(tmp_path: Path, sim_url: str) -> None:
    gw = Gateway.open(
        tmp_path / "cfg.db",
        config={
            "max_body_bytes": 100,
            "request_timeout_ms": timedelta(seconds=5),
            "connect_timeout_ms": 2500,
            "pricing": {
                "resend_email_usd": Decimal("0.01"),
                "twilio_sms": {"1": "0.02"},
                "fx": {"EUR": 1.25},
            },
        },
    )
    rk = gw.issue_key("resend", max_usd=1, allowed_endpoints=["POST /emails"])
    r = gw.client(rk).request("POST", "/emails", json={"from": "a@x.com", "to": ["b@x.com", "c@x.com"], "subject": "s", "text": "t"})
    assert r.cost_usd == Decimal("0.02")
    tk = gw.issue_key("twilio", max_usd=1, allowed_endpoints=["POST /2010-04-01/Accounts/*/Messages.json"])
    r = gw.client(tk).request("POST", "/2010-04-01/Accounts/AC1/Messages.json", form={"To": "+15555550100", "From": "+15555550199", "Body": "x"})
    assert r.cost_usd == Decimal("0.02")
    with pytest.raises(vendorgate.BadRequest, match="100"):
        gw.client(rk).request("POST", "/emails", body=b"x" * 101)
    sk = gw.issue_key("stripe", max_usd=1000, allowed_endpoints=["POST /v1/payment_intents"])
    r = gw.client(sk).request("POST", "/v1/payment_intents", form={"amount": 1000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa"})
    assert r.cost_usd == Decimal("12.50")
