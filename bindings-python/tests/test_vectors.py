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
ALL = json.loads(VECTORS_PATH.read_text())
VECTORS: List[Dict[str, Any]] = [v for v in ALL if "_format" not in v and "contract" not in v]
CONTRACT: Dict[str, Any] = next(v["contract"] for v in ALL if "contract" in v)

# Canonical class names (the core's ErrorClass) -> this package's classes.
PY_NAME = {"NotFound": "KeyNotFound"}


def py_class(canonical: str) -> type:
    return getattr(vendorgate.errors, PY_NAME.get(canonical, canonical))


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
            if "class" in expect:
                assert isinstance(ei.value, py_class(expect["class"])), (where, type(ei.value))
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


# ---- the contract element: the same checks run by the Node suite -------------------------


def test_every_reason_raises_the_contract_class() -> None:
    native = dict(vendorgate._vendorgate.reason_class_names())
    assert set(native) == set(CONTRACT["error_classes"])
    for reason, canonical in CONTRACT["error_classes"].items():
        cls = vendorgate.errors.error_class(reason)
        assert cls is py_class(canonical), (reason, cls)
        # The path a native error takes to become an exception picks the same class.
        native_err = vendorgate._vendorgate.NativeError(native[reason], reason, 400, "m", "{}")
        e = vendorgate.errors._from_native(native_err)
        assert type(e) is cls and e.code == reason
    for row in CONTRACT["unknown_reason"]:
        assert vendorgate.errors.error_class(row["reason"], row["status"]) is py_class(row["class"])


def test_class_tree_is_the_contract_tree() -> None:
    for child, parent in CONTRACT["class_parents"].items():
        assert issubclass(py_class(child), py_class(parent)), (child, parent)
    natives = vendorgate._vendorgate.error_classes()
    assert len(natives) == 14
    for name, parent in natives:
        base = getattr(vendorgate.errors, parent) if parent else vendorgate.Error
        assert issubclass(getattr(vendorgate.errors, name), base)


def test_settings_keys_are_the_contract_keys() -> None:
    assert list(vendorgate.CONFIG_KEYS) == CONTRACT["settings_keys"]


def test_config_scenario(tmp_path: Any) -> None:
    c = CONTRACT["config"]
    gw = Gateway.open(tmp_path / "contract.db", config=c["settings"])
    key = gw.issue_key(c["vendor"], **c["key"])
    for step in c["steps"]:
        r = gw.client(key).request(step["method"], step["path"], json=step.get("json"))
        assert r.status == step["expect"]["status"]
        assert r.cost_usd == Decimal(step["expect"]["cost_usd"])
    for bad in c["rejected"]:
        with pytest.raises(vendorgate.InvalidInput) as ei:
            Gateway.open(tmp_path / "rejected.db", config=bad["settings"])
        assert ei.value.field == bad["field"], ei.value
        assert bad["message_has"] in str(ei.value), ei.value


def test_audit_default_limit(embedded: Gateway) -> None:
    assert vendorgate.AUDIT_DEFAULT_LIMIT == CONTRACT["audit_default_limit"]
    key = embedded.issue_key("stripe", max_usd=1, allowed_endpoints=["GET /v1/balance"])
    c = embedded.client(key)
    for _ in range(120):  # refused before the vendor: cheap, and each one is an audit row
        with pytest.raises(vendorgate.EndpointNotAllowed):
            c.request("GET", "/v1/charges")
    assert len(embedded.audit(key=key)) == 120  # more than Node's old default of 100
    assert len(embedded.audit(key=key, limit=7)) == 7


def test_serve_twice(embedded: Gateway) -> None:
    assert CONTRACT["serve_twice"] == "same_url"
    first = embedded.serve()
    assert embedded.serve() == first
    assert embedded.serve(port=0) == first
    embedded.close()


def test_connect_reads_the_admin_token_variable(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, token = server
    monkeypatch.setenv(CONTRACT["connect_admin_token_env"], token)
    gw = Gateway.connect(url)
    key = gw.issue_key("stripe", max_usd=1)
    assert gw.usage(key).key_id == key.key_id
    monkeypatch.delenv(CONTRACT["connect_admin_token_env"])
    with pytest.raises(vendorgate.Unauthorized):
        Gateway.connect(url).issue_key("stripe", max_usd=1)
