"""Budgets shared by many keys, in both modes: the keys' calls together stay under the
budget's caps; the refusal names the budget; a key can only join a budget that exists."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

import vendorgate
from vendorgate import Gateway

from conftest import PI_FORM


def test_keys_share_a_budget(gw: Gateway) -> None:
    name = f"support-{uuid.uuid4().hex[:8]}"  # the connect-mode server outlives one test
    b = gw.create_budget(name, max_usd=150)
    assert (b.name, b.max_usd, b.daily_usd_cap, b.total_usd, b.keys) == (name, Decimal("150"), None, Decimal("0"), ())
    keys = [gw.issue_key("stripe", max_usd=500, allowed_endpoints=["POST /v1/payment_intents"], budgets=[name]) for _ in range(2)]
    assert keys[0].policy.budgets == (name,)
    gw.client(keys[0]).request("POST", "/v1/payment_intents", form={"amount": 10000, **PI_FORM})
    with pytest.raises(vendorgate.SpendCapExceeded) as ei:
        gw.client(keys[1]).request("POST", "/v1/payment_intents", form={"amount": 10000, **PI_FORM})
    assert name in ei.value.message and ei.value.status == 402
    # The other key has room of its own: only the budget refused.
    assert gw.usage(keys[1]).spent_usd == Decimal("0")
    gw.client(keys[1]).request("POST", "/v1/payment_intents", form={"amount": 5000, **PI_FORM})
    st = gw.budget(name)
    assert (st.total_usd, st.remaining_usd) == (Decimal("150"), Decimal("0"))
    assert sorted(st.keys) == sorted(k.key_id for k in keys)
    assert name in [x.name for x in gw.budgets()]


def test_budget_refusals_name_the_field(gw: Gateway) -> None:
    name = f"fleet-{uuid.uuid4().hex[:8]}"
    gw.create_budget(name, daily_usd_cap="20")
    with pytest.raises(vendorgate.InvalidInput) as ei:
        gw.create_budget(name, max_usd=1)
    assert ei.value.field == "name" and "exists" in ei.value.message
    with pytest.raises(vendorgate.InvalidInput) as ei:
        gw.create_budget(f"nocap-{uuid.uuid4().hex[:8]}")
    assert ei.value.field == "max_usd"
    with pytest.raises(vendorgate.InvalidInput) as ei:
        gw.issue_key("stripe", max_usd=1, budgets=["no-such-budget"])
    assert ei.value.field == "budgets" and "no-such-budget" in ei.value.message
    with pytest.raises(vendorgate.KeyNotFound):
        gw.budget("no-such-budget")


def test_alert_thresholds_round_trip_exactly(gw: Gateway) -> None:
    name = f"warn-{uuid.uuid4().hex[:8]}"
    b = gw.create_budget(name, max_usd=100, alert_at=[0.5, Decimal("0.95")])
    assert b.alert_at == (Decimal("0.5"), Decimal("0.95"))
    k = gw.issue_key("stripe", max_usd=10, alert_at=[0.8, "0.125"], budgets=[name])
    assert k.policy.alert_at == (Decimal("0.125"), Decimal("0.8"))
    with pytest.raises(vendorgate.InvalidInput) as ei:
        gw.issue_key("stripe", max_usd=10, alert_at=[1.5])
    assert ei.value.field == "alert_at"
    with pytest.raises(TypeError):
        gw.issue_key("stripe", max_usd=10, alert_at=0.5)
