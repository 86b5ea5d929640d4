"""Every exception class, raised by the real pipeline where it can be, in both modes."""

from __future__ import annotations

import os
import socket
import time
from decimal import Decimal
from pathlib import Path
from typing import Iterator

import pytest

import vendorgate
from vendorgate import Gateway, errors

from conftest import PI_FORM

ALL_REASONS = [  # core/src/error.rs REASONS
    "missing_key", "unknown_key", "key_revoked", "key_expired", "bad_path", "bad_request",
    "endpoint_not_allowed", "cannot_price", "credential", "spend_cap_exceeded", "duplicate_request",
    "duplicate_action",
    "body_too_large", "vendor_not_configured", "store_error", "upstream_error", "invalid_input",
    "config_error", "not_found", "unauthorized",
]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def test_hierarchy() -> None:
    E = vendorgate
    assert issubclass(E.Denied, E.Error)
    for c in (E.Unauthorized, E.EndpointNotAllowed, E.SpendCapExceeded, E.DuplicateRequest, E.BadRequest):
        assert issubclass(c, E.Denied)
    for c in (E.KeyRevoked, E.KeyExpired, E.UnknownKey):
        assert issubclass(c, E.Unauthorized)
    for c in (E.UpstreamError, E.StoreError, E.ConfigError, E.KeyNotFound, E.InvalidInput):
        assert issubclass(c, E.Error) and not issubclass(c, E.Denied)
    assert issubclass(E.InvalidInput, ValueError)
    assert issubclass(E.KeyNotFound, LookupError)
    assert errors.Error is E.Error


@pytest.mark.parametrize("code", ALL_REASONS)
def test_every_reason_maps_to_a_specific_class(code: str) -> None:
    cls = errors.error_class(code)
    assert cls is not vendorgate.Error, code
    expected = {
        "missing_key": vendorgate.UnknownKey, "unknown_key": vendorgate.UnknownKey,
        "key_revoked": vendorgate.KeyRevoked, "key_expired": vendorgate.KeyExpired,
        "unauthorized": vendorgate.Unauthorized,
        "endpoint_not_allowed": vendorgate.EndpointNotAllowed,
        "credential": vendorgate.EndpointNotAllowed,
        "spend_cap_exceeded": vendorgate.SpendCapExceeded,
        "duplicate_request": vendorgate.DuplicateRequest,
        "duplicate_action": vendorgate.DuplicateRequest,
        "bad_path": vendorgate.BadRequest, "bad_request": vendorgate.BadRequest,
        "cannot_price": vendorgate.BadRequest, "body_too_large": vendorgate.BadRequest,
        "upstream_error": vendorgate.UpstreamError, "store_error": vendorgate.StoreError,
        "config_error": vendorgate.ConfigError, "vendor_not_configured": vendorgate.ConfigError,
        "invalid_input": vendorgate.InvalidInput, "not_found": vendorgate.KeyNotFound,
    }[code]
    assert cls is expected


def test_unknown_key(gw: Gateway) -> None:
    c = gw.client("vk_" + "A" * 43, vendor="stripe")
    with pytest.raises(vendorgate.UnknownKey) as ei:
        c.request("GET", "/v1/balance")
    e = ei.value
    assert e.code == "unknown_key" and e.status == 401
    assert "issue a new key" in e.message and str(e) == e.message


def test_key_expired(gw: Gateway) -> None:
    key = gw.issue_key("stripe", max_usd=1, allowed_endpoints=["GET /v1/balance"], expires_in=1)
    c = gw.client(key)
    time.sleep(1.1)
    with pytest.raises(vendorgate.KeyExpired) as ei:
        c.request("GET", "/v1/balance")
    assert ei.value.code == "key_expired" and ei.value.status == 401
    assert ei.value.key_id == key.key_id
    assert gw.usage(key).expired


def test_endpoint_not_allowed(gw: Gateway) -> None:
    key = gw.issue_key("stripe", max_usd=1, allowed_endpoints=["GET /v1/balance"])
    with pytest.raises(vendorgate.EndpointNotAllowed) as ei:
        gw.client(key).request("POST", "/v1/refunds", form={"payment_intent": "pi_1"})
    assert ei.value.status == 403 and ei.value.code == "endpoint_not_allowed"
    assert "POST /v1/refunds" in ei.value.message


def test_spend_cap_exceeded_carries_figures(gw: Gateway) -> None:
    key = gw.issue_key("stripe", max_usd="150", allowed_endpoints=["POST /v1/payment_intents"])
    c = gw.client(key)
    c.request("POST", "/v1/payment_intents", form={"amount": 10000, **PI_FORM})
    with pytest.raises(vendorgate.SpendCapExceeded) as ei:
        c.request("POST", "/v1/payment_intents", form={"amount": 10000, **PI_FORM})
    e = ei.value
    assert isinstance(e, vendorgate.Denied)
    assert e.status == 402 and e.code == "spend_cap_exceeded"
    assert e.cap_usd == Decimal("150") and isinstance(e.cap_usd, Decimal)
    assert e.spent_usd == Decimal("100") and isinstance(e.spent_usd, Decimal)
    assert e.estimate_usd == Decimal("100")
    assert e.window == "run"
    assert e.key_id == key.key_id


def test_duplicate_request(gw: Gateway) -> None:
    key = gw.issue_key("stripe", max_usd=500, allowed_endpoints=["POST /v1/payment_intents"])
    c = gw.client(key)
    c.request("POST", "/v1/payment_intents", form={"amount": 1000, **PI_FORM}, idempotency_key="dup-1")
    with pytest.raises(vendorgate.DuplicateRequest) as ei:
        c.request("POST", "/v1/payment_intents", form={"amount": 2000, **PI_FORM}, idempotency_key="dup-1")
    assert ei.value.status == 409


def test_bad_request_variants(gw: Gateway) -> None:
    key = gw.issue_key("stripe", max_usd=500, allowed_endpoints=["/v1/**"])
    c = gw.client(key)
    with pytest.raises(vendorgate.BadRequest) as ei:
        c.request("POST", "/v1/payment_intents/pi_never_seen/confirm", form={})
    assert ei.value.code == "cannot_price" and ei.value.status == 400
    with pytest.raises(vendorgate.BadRequest) as ei:
        c.request("GET", "/v1/charges%2F..%2Fbalance")
    assert ei.value.code == "bad_path"
    with pytest.raises(vendorgate.BadRequest) as ei:
        c.request("GET", "/v1/balance", headers={"X-HTTP-Method-Override": "DELETE"})
    assert ei.value.code == "bad_request"


def test_body_too_large(gw: Gateway) -> None:
    key = gw.issue_key("resend", max_usd=1, allowed_endpoints=["POST /emails"])
    big = b"x" * (1024 * 1024 + 1)
    with pytest.raises(vendorgate.BadRequest) as ei:
        gw.client(key).request("POST", "/emails", body=big, headers={"content-type": "application/json"})
    assert ei.value.code == "body_too_large" and ei.value.status == 413


def test_key_not_found(gw: Gateway) -> None:
    with pytest.raises(vendorgate.KeyNotFound) as ei:
        gw.usage("key_000000000000000000000000")
    assert ei.value.status == 404
    with pytest.raises(LookupError):
        gw.revoke("key_000000000000000000000000")


def test_upstream_down_embedded(tmp_path: Path) -> None:
    port = free_port()
    gw = Gateway.open(tmp_path / "d.db", config={"stripe": {"url": f"http://127.0.0.1:{port}"}})
    key = gw.issue_key("stripe", max_usd=500, allowed_endpoints=["POST /v1/payment_intents"])
    with pytest.raises(vendorgate.UpstreamError) as ei:
        gw.client(key).request("POST", "/v1/payment_intents", form={"amount": 1000, **PI_FORM})
    assert ei.value.status == 502 and ei.value.code == "upstream_error"
    # Nothing left the gateway: the reservation is released.
    assert gw.usage(key).total_usd == 0


def test_server_down_connect() -> None:
    gw = Gateway.connect(f"http://127.0.0.1:{free_port()}", admin_token="x")
    with pytest.raises(vendorgate.UpstreamError) as ei:
        gw.issue_key("stripe", max_usd=1)
    assert "could not reach" in ei.value.message
    with pytest.raises(vendorgate.UpstreamError):
        gw.client("vk_" + "B" * 43, vendor="stripe").request("GET", "/v1/balance")


def test_wrong_admin_token(server: tuple) -> None:
    url, _ = server
    for token in ("wrong-token", None):
        gw = Gateway.connect(url, admin_token=token)
        with pytest.raises(vendorgate.Unauthorized) as ei:
            gw.issue_key("stripe", max_usd=1)
        assert type(ei.value) is vendorgate.Unauthorized
        assert ei.value.status == 401 and ei.value.code == "unauthorized"
        assert "admin token" in ei.value.message


def test_store_error(tmp_path: Path) -> None:
    with pytest.raises(vendorgate.StoreError) as ei:
        Gateway.open(tmp_path)  # a directory is no database
    assert ei.value.code == "store_error" and ei.value.status == 503
    with pytest.raises(vendorgate.StoreError) as ei:
        Gateway.open(tmp_path / "missing-dir" / "x.db")
    assert "does not exist" in ei.value.message


def test_store_error_while_running(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    gw = Gateway.open(db)
    key = gw.issue_key("stripe", max_usd=1, allowed_endpoints=["GET /v1/balance"])
    # Spoil the database under the open gateway: the next store operation fails, and the
    # request is refused (fail closed), not forwarded.
    for p in tmp_path.iterdir():
        with open(p, "r+b") as f:
            f.write(b"\xff" * 4096)
    with pytest.raises(vendorgate.StoreError):
        for _ in range(3):
            gw.issue_key("stripe", max_usd=1)
            gw.client(key).request("GET", "/v1/balance")


@pytest.fixture
def no_resend_key() -> Iterator[None]:
    saved = os.environ.pop("RESEND_API_KEY")
    yield
    os.environ["RESEND_API_KEY"] = saved


def test_vendor_not_configured(tmp_path: Path, no_resend_key: None) -> None:
    gw = Gateway.open(tmp_path / "n.db")
    key = gw.issue_key("resend", max_usd=1, allowed_endpoints=["POST /emails"])
    with pytest.raises(vendorgate.ConfigError) as ei:
        gw.client(key).request("POST", "/emails", json={"from": "a@x.com", "to": "b@x.com", "subject": "s", "text": "t"})
    assert ei.value.code == "vendor_not_configured" and ei.value.status == 503
    assert "RESEND" not in ei.value.message or "credentials" in ei.value.message


def test_config_error_from_environment(tmp_path: Path) -> None:
    saved = os.environ.pop("TWILIO_AUTH_TOKEN")
    try:
        with pytest.raises(vendorgate.ConfigError) as ei:
            Gateway.open(tmp_path / "c.db")
        assert ei.value.code == "config_error"
        assert "TWILIO_AUTH_TOKEN" in ei.value.message
    finally:
        os.environ["TWILIO_AUTH_TOKEN"] = saved


def test_invalid_input_is_value_error(gw: Gateway) -> None:
    with pytest.raises(vendorgate.InvalidInput) as ei:
        gw.issue_key("stripe", max_usd="-5")
    assert isinstance(ei.value, ValueError)
    assert ei.value.field == "max_usd" and ei.value.code == "invalid_input" and ei.value.status == 400
    assert "max_usd" in str(ei.value)


def test_error_repr_and_details(gw: Gateway) -> None:
    key = gw.issue_key("stripe", max_usd=1, allowed_endpoints=[])
    with pytest.raises(vendorgate.EndpointNotAllowed) as ei:
        gw.client(key).request("GET", "/v1/balance")
    assert "EndpointNotAllowed" in repr(ei.value)
    assert ei.value.details.get("reason") == "endpoint_not_allowed"


def test_duplicate_action_by_default_and_per_key(gw: Gateway, tmp_path: Path) -> None:
    """The same charge twice: the second is refused as a repeat (DuplicateRequest, code
    duplicate_action), naming the first call; a key may set its own window or turn it off."""
    # The fixtures' gateways default to no guard, so the key asks for one (both modes).
    guarded = gw.issue_key("stripe", max_usd=500, allowed_endpoints=["POST /v1/payment_intents"], duplicate_window="10m")
    assert guarded.policy.duplicate_window_secs == 600
    c = gw.client(guarded)
    c.request("POST", "/v1/payment_intents", form={"amount": 1000, **PI_FORM})
    with pytest.raises(vendorgate.DuplicateRequest) as ei:
        c.request("POST", "/v1/payment_intents", form={"amount": 1000, **PI_FORM, "description": "again"})
    assert ei.value.code == "duplicate_action" and ei.value.status == 409
    assert "duplicate_window of 10m" in ei.value.message
    assert gw.usage(guarded).spent_usd == Decimal("10")
    with pytest.raises(vendorgate.InvalidInput) as bad:
        gw.issue_key("stripe", max_usd=1, duplicate_window="2 weeks")
    assert bad.value.field == "duplicate_window"


def test_the_guard_is_on_by_default(tmp_path: Path, vendor_env: None) -> None:
    gw = Gateway.open(tmp_path / "default.db")
    key = gw.issue_key("stripe", max_usd=500, allowed_endpoints=["POST /v1/payment_intents"])
    c = gw.client(key)
    c.request("POST", "/v1/payment_intents", form={"amount": 1000, **PI_FORM})
    with pytest.raises(vendorgate.DuplicateRequest) as ei:
        c.request("POST", "/v1/payment_intents", form={"amount": 1000, **PI_FORM})
    assert ei.value.code == "duplicate_action"
    off = gw.issue_key("stripe", max_usd=500, allowed_endpoints=["POST /v1/payment_intents"], duplicate_window=0)
    for _ in range(2):
        gw.client(off).request("POST", "/v1/payment_intents", form={"amount": 1000, **PI_FORM})
    gw.close()
