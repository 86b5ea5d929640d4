"""The scenarios in tests/binding-vectors.json, shared with the Node binding."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, Dict, List

import pytest

import vendorgate
from vendorgate import Gateway

from conftest import REPO

VECTORS_PATH = REPO / "tests" / "binding-vectors.json"
VECTORS: List[Dict[str, Any]] = [v for v in json.loads(VECTORS_PATH.read_text()) if "_format" not in v]


def fill(text: str, saved: Dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: saved[m.group(1)], text)


def fill_json(v: Any, saved: Dict[str, str]) -> Any:
    if isinstance(v, str):
        return fill(v, saved)
    if isinstance(v, dict):
        return {k: fill_json(x, saved) for k, x in v.items()}
    if isinstance(v, list):
        return [fill_json(x, saved) for x in v]
    return v


def test_vectors_file_is_well_formed() -> None:
    assert len(VECTORS) >= 7
    names = [v["name"] for v in VECTORS]
    assert len(set(names)) == len(names)
    for v in VECTORS:
        assert v["vendor"] in ("stripe", "twilio", "resend")
        for s in v["steps"]:
            assert "expect" in s or s.get("action") == "revoke", s
            if "action" not in s:
                assert {"method", "path"} <= s.keys()
                assert sum(k in s for k in ("form", "json")) <= 1


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(gw: Gateway, vector: Dict[str, Any]) -> None:
    key = gw.issue_key(vector["vendor"], **vector["key"])
    client = gw.client(key)
    saved: Dict[str, str] = {}
    for i, step in enumerate(vector["steps"]):
        where = f"{vector['name']} step {i}"
        expect = step.get("expect", {})
        action = step.get("action")
        if action == "revoke":
            gw.revoke(key)
            continue
        if action == "usage":
            u = gw.usage(key)
            for f, want in expect.items():
                got = getattr(u, f)
                if isinstance(want, bool):
                    assert got is want, (where, f, got)
                else:
                    assert got == Decimal(want), (where, f, got, want)
            continue
        kwargs: Dict[str, Any] = {}
        if "form" in step:
            kwargs["form"] = step["form"]
        if "json" in step:
            kwargs["json"] = step["json"]
        if "idempotency_key" in step:
            kwargs["idempotency_key"] = step["idempotency_key"]
        path = fill(step["path"], saved)
        if "error" in expect:
            with pytest.raises(vendorgate.Error) as ei:
                client.request(step["method"], path, **kwargs)
            assert ei.value.code == expect["error"], (where, ei.value)
            if "status" in expect:
                assert ei.value.status == expect["status"], where
            continue
        r = client.request(step["method"], path, **kwargs)
        assert r.status == expect["status"], (where, r.status, r.text)
        if "cost_usd" in expect:
            assert r.cost_usd == Decimal(expect["cost_usd"]), (where, r.cost_usd)
        body = r.json()
        for f, want in fill_json(expect.get("json", {}), saved).items():
            assert body.get(f) == want, (where, f, body.get(f))
        for name, field in step.get("save", {}).items():
            saved[name] = str(body[field])
