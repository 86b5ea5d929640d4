"""Threads racing one cap: exactly the calls that fit pass, never more."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import List

import vendorgate
from vendorgate import Gateway

from conftest import PI_FORM


def race(gw: Gateway, threads: int, cap: int, amount_usd: int) -> List[object]:
    key = gw.issue_key("stripe", max_usd=cap, allowed_endpoints=["POST /v1/payment_intents"])
    client = gw.client(key)
    results: List[object] = [None] * threads
    start = threading.Barrier(threads)

    def worker(i: int) -> None:
        start.wait()
        try:
            results[i] = client.request("POST", "/v1/payment_intents", form={"amount": amount_usd * 100, **PI_FORM})
        except vendorgate.Error as e:
            results[i] = e

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    u = gw.usage(key)
    ok = [r for r in results if isinstance(r, vendorgate.Response)]
    refused = [r for r in results if isinstance(r, vendorgate.SpendCapExceeded)]
    assert len(ok) + len(refused) == threads, results
    assert all(r.status == 200 for r in ok)  # type: ignore[attr-defined]
    assert len(ok) == cap // amount_usd
    assert u.spent_usd == Decimal(cap) and u.total_usd == Decimal(cap)
    assert u.reserved_usd == 0 and u.pending_usd == 0
    assert sum(r.cost_usd for r in ok) == Decimal(cap)  # type: ignore[attr-defined]
    decisions = [row["decision"] for row in gw.audit(key=key)]
    assert decisions.count("forwarded") == cap // amount_usd
    assert decisions.count("spend_cap_exceeded") == threads - cap // amount_usd
    return results


def test_forty_threads_race_a_500_dollar_cap(gw: Gateway) -> None:
    race(gw, threads=40, cap=500, amount_usd=100)


def test_race_repeated(embedded: Gateway) -> None:
    for _ in range(3):
        race(embedded, threads=16, cap=300, amount_usd=100)
