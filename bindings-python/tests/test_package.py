"""Package hygiene: docstrings on every public name, pickling of errors, hashing of keys."""

from __future__ import annotations

import inspect
import pickle
from decimal import Decimal

import vendorgate
from vendorgate import Gateway, errors


def public_members(obj: object) -> list:
    out = []
    for name, member in inspect.getmembers(obj):
        if name.startswith("_"):
            continue
        if inspect.isfunction(member) or inspect.ismethod(member) or isinstance(member, property):
            out.append((name, member))
    return out


def test_every_public_name_has_a_docstring() -> None:
    missing = []
    for name in vendorgate.__all__:
        if name == "__version__":
            continue
        obj = getattr(vendorgate, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if not (obj.__doc__ or "").strip():
                missing.append(name)
        if inspect.isclass(obj):
            for mname, member in public_members(obj):
                doc = member.__doc__ if not isinstance(member, property) else member.fget.__doc__
                if not (doc or "").strip():
                    missing.append(f"{name}.{mname}")
    assert missing == [], missing
    assert vendorgate.__doc__ and errors.__doc__
    assert vendorgate.__version__


def test_errors_pickle_with_their_attributes() -> None:
    e = errors._from_native(
        Exception("SpendCapExceeded", "spend_cap_exceeded", 402, "over the cap", '{"cap_usd": "5.00", "spent_usd": "4.50", "window": "run"}'),
        key_id="key_1",
    )
    assert isinstance(e, vendorgate.SpendCapExceeded)
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is vendorgate.SpendCapExceeded
    assert (back.code, back.status, back.key_id, back.message) == ("spend_cap_exceeded", 402, "key_1", "over the cap")
    assert back.cap_usd == Decimal("5.00") and back.spent_usd == Decimal("4.50") and back.window == "run"


def test_unknown_remote_reason_is_classed_by_status() -> None:
    # A reason this version does not know (a newer server): the core classes it by status
    # (it was a plain Error before the classes were decided in the core).
    cls = vendorgate._vendorgate.class_of_reason("something_new", 418)
    e = errors._from_native(Exception(cls, "something_new", 418, "teapot", "not json"))
    assert type(e) is vendorgate.Denied and e.code == "something_new" and e.status == 418
    assert errors.error_class("something_new", 503) is vendorgate.UpstreamError
    # A class name this package does not have falls back to the base class.
    e = errors._from_native(Exception("NoSuchClass", "something_new", 418, "teapot", "not json"))
    assert type(e) is vendorgate.Error


def test_keys_hash_and_compare(embedded: Gateway) -> None:
    k = embedded.issue_key("stripe", max_usd=1, metadata={"a": 1})
    assert {k, k} == {k}
    assert k == k and k != embedded.issue_key("stripe", max_usd=1)
