"""The idiomatic API over the native module: Gateway, Key, KeyStatus, Client, Response."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json as _json
import os
import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _vendorgate as _native
from ._money import micros_to_usd, usd_out, usd_out_or_none, usd_text, usd_text_or_none
from .errors import Error, _from_native

__all__ = [
    "Gateway",
    "Key",
    "KeyStatus",
    "Policy",
    "Client",
    "AsyncClient",
    "Response",
    "Headers",
    "KeyRef",
    "CONFIG_KEYS",
    "AUDIT_DEFAULT_LIMIT",
]

AUDIT_DEFAULT_LIMIT: int = _native.AUDIT_DEFAULT_LIMIT
"""Rows :meth:`Gateway.audit` returns when no ``limit`` is given (the same in Node)."""

VENDORS = ("stripe", "twilio", "resend")

CONFIG_KEYS: Dict[str, str] = {
    key: f"{unit}, default {default}" for key, unit, default in _native.settings_keys()
}
"""The keys ``Gateway.open(config=...)`` accepts (nested as in the server's TOML file:
``"pricing.fx"`` is ``config["pricing"]["fx"]``), with unit and default. The same keys, units
and merge rules as ``vendorgate serve --config``; see the README's settings table. Credentials
are never settings: they come from the environment (``STRIPE_SECRET_KEY``, …, or the
variables a vendor's ``*_env`` setting names)."""

# Tables of USD amounts keyed by a code, under "pricing".
_USD_TABLES = ("fx", "twilio_sms", "twilio_call_minute_usd_by_prefix", "twilio_number_monthly_usd")


# ---- values -------------------------------------------------------------------------------


def _parse_time(s: Any) -> Optional[_dt.datetime]:
    if s is None:
        return None
    text = str(s)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return _dt.datetime.fromisoformat(text)


def _time_required(s: Any) -> _dt.datetime:
    t = _parse_time(s)
    if t is None:
        raise Error("the gateway did not report a time", code="upstream_error", status=502)
    return t


@dataclass(frozen=True)
class BudgetStatus:
    """A budget shared by many keys: its caps, what its keys have counted, its keys."""

    name: str
    max_usd: Optional[Decimal]
    daily_usd_cap: Optional[Decimal]
    spent_usd: Decimal
    pending_usd: Decimal
    reserved_usd: Decimal
    today_usd: Decimal
    total_usd: Decimal
    remaining_usd: Decimal
    keys: Tuple[str, ...]
    #: Early-warning thresholds, fractions of each cap.
    alert_at: Tuple[Decimal, ...] = ()

    @classmethod
    def _from_json(cls, v: Mapping[str, Any]) -> "BudgetStatus":
        return cls(
            name=str(v.get("name")),
            max_usd=usd_out_or_none(v.get("max_usd")),
            daily_usd_cap=usd_out_or_none(v.get("daily_usd_cap")),
            spent_usd=Decimal(v.get("spent_usd", "0")),
            pending_usd=Decimal(v.get("pending_usd", "0")),
            reserved_usd=Decimal(v.get("reserved_usd", "0")),
            today_usd=Decimal(v.get("today_usd", "0")),
            total_usd=Decimal(v.get("total_usd", "0")),
            remaining_usd=Decimal(v.get("remaining_usd", "0")),
            keys=tuple(v.get("keys") or ()),
            alert_at=tuple(Decimal(str(x)) for x in v.get("alert_at") or ()),
        )


@dataclass(frozen=True)
class Policy:
    """What a key may do: its vendor, USD caps and allowed endpoints."""

    vendor: str
    max_usd: Optional[Decimal]
    daily_usd_cap: Optional[Decimal]
    allowed_endpoints: Tuple[str, ...]
    stripe_accounts: Tuple[str, ...] = ()
    #: Seconds a money-moving action is remembered against a repeat (0: off); None: the
    #: gateway's default.
    duplicate_window_secs: Optional[int] = None
    #: Budgets the key joined.
    budgets: Tuple[str, ...] = ()
    #: Early-warning thresholds, fractions of each cap (``Decimal("0.8")`` is 80 %).
    alert_at: Tuple[Decimal, ...] = ()

    @classmethod
    def _from_json(cls, v: Mapping[str, Any]) -> "Policy":
        return cls(
            vendor=str(v.get("vendor")),
            max_usd=usd_out_or_none(v.get("max_usd")),
            daily_usd_cap=usd_out_or_none(v.get("daily_usd_cap")),
            allowed_endpoints=tuple(v.get("allowed_endpoints") or ()),
            stripe_accounts=tuple(v.get("stripe_accounts") or ()),
            duplicate_window_secs=v.get("duplicate_window_secs"),
            budgets=tuple(v.get("budgets") or ()),
            alert_at=tuple(Decimal(str(x)) for x in v.get("alert_at") or ()),
        )


@dataclass(frozen=True, repr=False)
class Key:
    """An issued vault key. ``vault_key`` is shown only here, once: hand it to the agent
    (``stripe.api_key = key.vault_key``). ``repr()`` never prints it."""

    vault_key: str
    key_id: str
    vendor: str
    expires_at: _dt.datetime
    policy: Policy
    run_id: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __repr__(self) -> str:
        return (
            f"Key(key_id={self.key_id!r}, vendor={self.vendor!r}, run_id={self.run_id!r}, "
            f"expires_at={self.expires_at.isoformat()!r}, vault_key='vk_…')"
        )

    @classmethod
    def _from_json(cls, v: Mapping[str, Any]) -> "Key":
        return cls(
            vault_key=str(v["vault_key"]),
            key_id=str(v["key_id"]),
            vendor=str(v.get("vendor") or (v.get("policy") or {}).get("vendor")),
            expires_at=_time_required(v.get("expires_at")),
            policy=Policy._from_json(v.get("policy") or {}),
            run_id=v.get("run_id"),
            metadata=dict(v.get("metadata") or {}),
        )


@dataclass(frozen=True)
class KeyStatus:
    """A key's policy and what it has counted so far (all money in Decimal USD).

    ``spent_usd`` moved or committed; ``pending_usd`` pending at the vendor or unknown;
    ``reserved_usd`` reserved for calls in flight; ``today_usd`` counted today (UTC);
    ``total_usd`` counted over the key's life; ``remaining_usd`` room left under the tighter
    cap.
    """

    key_id: str
    vendor: str
    policy: Policy
    run_id: Optional[str]
    metadata: Dict[str, Any]
    created_at: Optional[_dt.datetime]
    expires_at: _dt.datetime
    revoked: bool
    revoked_at: Optional[_dt.datetime]
    expired: bool
    active: bool
    spent_usd: Decimal
    pending_usd: Decimal
    reserved_usd: Decimal
    today_usd: Decimal
    total_usd: Decimal
    remaining_usd: Decimal

    @classmethod
    def _from_json(cls, v: Mapping[str, Any]) -> "KeyStatus":
        return cls(
            key_id=str(v["key_id"]),
            vendor=str(v.get("vendor")),
            policy=Policy._from_json(v.get("policy") or {}),
            run_id=v.get("run_id"),
            metadata=dict(v.get("metadata") or {}),
            created_at=_parse_time(v.get("created_at")),
            expires_at=_time_required(v.get("expires_at")),
            revoked=bool(v.get("revoked")),
            revoked_at=_parse_time(v.get("revoked_at")),
            expired=bool(v.get("expired")),
            active=bool(v.get("active")),
            spent_usd=usd_out(v.get("spent_usd")),
            pending_usd=usd_out(v.get("pending_usd")),
            reserved_usd=usd_out(v.get("reserved_usd")),
            today_usd=usd_out(v.get("today_usd")),
            total_usd=usd_out(v.get("total_usd")),
            remaining_usd=usd_out(v.get("remaining_usd")),
        )


KeyRef = Union[Key, KeyStatus, str]
"""A key argument: the issued :class:`Key`, a :class:`KeyStatus`, a key id (``key_…``) or
the vault key (``vk_…``)."""

_AUDIT_MONEY = ("estimate_usd", "cost_usd")


def _audit_row(v: Dict[str, Any]) -> Dict[str, Any]:
    for k in _AUDIT_MONEY:
        if k in v:
            v[k] = usd_out_or_none(v[k])
    if "time" in v:
        v["time"] = _parse_time(v["time"])
    return v


class Headers(Mapping[str, str]):
    """Response headers: a read-only mapping with case-insensitive names. A header sent more
    than once reads as its values joined by ``", "``; :meth:`get_all` gives them apart."""

    __slots__ = ("_pairs", "_map")

    def __init__(self, pairs: Iterable[Tuple[str, str]]) -> None:
        self._pairs: List[Tuple[str, str]] = list(pairs)
        m: Dict[str, str] = {}
        for k, v in self._pairs:
            lk = k.lower()
            m[lk] = f"{m[lk]}, {v}" if lk in m else v
        self._map = m

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def get_all(self, name: str) -> List[str]:
        """Every value of header ``name``, in order."""
        n = name.lower()
        return [v for k, v in self._pairs if k.lower() == n]

    def __repr__(self) -> str:
        return f"Headers({self._map!r})"


class Response:
    """A vendor's answer, passed through unchanged: ``status``, ``headers``, ``content``
    (bytes), ``text``, :meth:`json`; plus what the gateway counted for it: ``cost_usd``
    (Decimal) and ``remaining_usd`` (Decimal, or ``None`` when the gateway could not say)."""

    __slots__ = ("status", "content", "cost_usd", "remaining_usd", "_raw_headers", "_headers")

    status: int
    content: bytes
    cost_usd: Decimal
    remaining_usd: Optional[Decimal]

    def __init__(
        self,
        status: int,
        headers: Sequence[Tuple[str, str]],
        content: bytes,
        cost_usd: Decimal,
        remaining_usd: Optional[Decimal],
    ) -> None:
        self.status = status
        self.content = content
        self.cost_usd = cost_usd
        self.remaining_usd = remaining_usd
        self._raw_headers = headers
        self._headers: Optional[Headers] = None

    @classmethod
    def _from_native(cls, r: _native.NativeResponse) -> "Response":
        rem = r.remaining_micros
        return cls(
            r.status,
            r.headers,
            r.body,
            micros_to_usd(r.cost_micros),
            None if rem is None else micros_to_usd(rem),
        )

    @property
    def headers(self) -> Headers:
        """The answer's headers (case-insensitive)."""
        if self._headers is None:
            self._headers = Headers(self._raw_headers)
        return self._headers

    @property
    def ok(self) -> bool:
        """Whether the vendor answered with a 2xx status."""
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (floats in the vendor's JSON stay floats)."""
        return _json.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response {self.status} cost_usd={self.cost_usd}>"


# ---- request encoding ---------------------------------------------------------------------


def _form_value(v: Any, where: str) -> Any:
    if v is None or isinstance(v, (bool, str, int)):
        return v
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, Mapping):
        out: Dict[str, Any] = {}
        for k, item in v.items():
            if not isinstance(k, str):
                raise TypeError(f"form field names must be str, got {k!r} in {where}")
            out[k] = _form_value(item, f"{where}[{k}]")
        return out
    if isinstance(v, (list, tuple)):
        return [_form_value(item, f"{where}[{i}]") for i, item in enumerate(v)]
    raise TypeError(
        f"form field {where} must be str, int, bool, Decimal, float, None, a dict or a list, "
        f"not {type(v).__name__}"
    )


def _json_default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return format(o, "f")
    if isinstance(o, (tuple, set, frozenset)):
        return list(o)
    raise TypeError(f"json= body: {type(o).__name__} is not JSON serializable")


def _encode_body(form: Any, json: Any, body: Any) -> Tuple[str, Optional[bytes]]:
    given = sum(x is not None for x in (form, json, body))
    if given > 1:
        raise TypeError("pass at most one of form=, json= and body=")
    if form is not None:
        if not isinstance(form, Mapping):
            raise TypeError(f"form= must be a mapping of field names to values, not {type(form).__name__}")
        fields = {}
        for k, v in form.items():
            if not isinstance(k, str):
                raise TypeError(f"form field names must be str, got {k!r}")
            fields[k] = _form_value(v, k)
        return "form", _json.dumps(fields, separators=(",", ":")).encode()
    if json is not None:
        return "json", _json.dumps(json, default=_json_default, separators=(",", ":")).encode()
    if body is not None:
        if isinstance(body, str):
            return "raw", body.encode("utf-8")
        if isinstance(body, (bytes, bytearray, memoryview)):
            return "raw", bytes(body)
        raise TypeError(f"body= must be bytes or str, not {type(body).__name__}")
    return "empty", None


def _header_pairs(headers: Any, idempotency_key: Optional[str]) -> List[Tuple[str, str]]:
    pairs: List[Tuple[str, str]] = []
    if headers is not None:
        items: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers
        for item in items:
            try:
                k, v = item
            except (TypeError, ValueError):
                raise TypeError("headers= must be a mapping or a list of (name, value) pairs") from None
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"header names and values must be str, got {k!r}: {v!r}")
            pairs.append((k, v))
    if idempotency_key is not None:
        if not isinstance(idempotency_key, str):
            raise TypeError("idempotency_key must be a str")
        pairs.append(("Idempotency-Key", idempotency_key))
    return pairs


def _check_request_args(method: Any, path: Any) -> str:
    if not isinstance(method, str):
        raise TypeError(f"method must be a str such as 'POST', not {type(method).__name__}")
    if not isinstance(path, str):
        raise TypeError(f"path must be a str such as '/v1/charges', not {type(path).__name__}")
    return method.upper()


class Client:
    """Calls one vendor with one vault key, through the gateway's full pipeline (embedded)
    or through the vendorgate server (connect). Get one from :meth:`Gateway.client`.

    Thread-safe: share one client between threads freely.
    """

    __slots__ = ("_gw", "vault_key", "vendor", "key_id")

    vault_key: str
    vendor: Optional[str]
    key_id: Optional[str]

    def __init__(self, gateway: "Gateway", vault_key: str, vendor: Optional[str], key_id: Optional[str]) -> None:
        self._gw = gateway
        self.vault_key = vault_key
        self.vendor = vendor
        self.key_id = key_id

    def __repr__(self) -> str:
        return f"<Client vendor={self.vendor!r} key_id={self.key_id!r}>"

    def request(
        self,
        method: str,
        path: str,
        *,
        form: Optional[Mapping[str, Any]] = None,
        json: Any = None,
        body: Union[bytes, str, None] = None,
        headers: Union[Mapping[str, str], Iterable[Tuple[str, str]], None] = None,
        idempotency_key: Optional[str] = None,
    ) -> Response:
        """Send one vendor request and return the vendor's answer, whatever its status.

        ``path`` is the vendor's own path (``/v1/payment_intents``; Twilio paths may carry
        any ``AC…`` SID). Give at most one body: ``form=`` (form-encoded, nested dicts and
        lists Stripe-style), ``json=`` or ``body=`` (bytes/str sent as is).
        ``idempotency_key`` sets the ``Idempotency-Key`` header: a retry with the same key
        and request is one spend.

        Raises a :class:`vendorgate.Denied` subclass when the gateway refuses the call
        (nothing reaches the vendor), :class:`vendorgate.UpstreamError` when the vendor
        cannot be reached or times out. Blocks without holding the GIL; Ctrl-C interrupts
        the wait (the request itself still finishes and is audited).
        """
        m = _check_request_args(method, path)
        kind, data = _encode_body(form, json, body)
        hp = _header_pairs(headers, idempotency_key)
        try:
            r = self._gw._n.request(self.vault_key, self.vendor or "", m, path, hp, kind, data)
        except _native.NativeError as e:
            raise _from_native(e, self.key_id) from None
        return Response._from_native(r)

    async def arequest(
        self,
        method: str,
        path: str,
        *,
        form: Optional[Mapping[str, Any]] = None,
        json: Any = None,
        body: Union[bytes, str, None] = None,
        headers: Union[Mapping[str, str], Iterable[Tuple[str, str]], None] = None,
        idempotency_key: Optional[str] = None,
    ) -> Response:
        """The asyncio twin of :meth:`request`: the call runs on the gateway's own runtime and
        never blocks the event loop. Cancelling the task abandons the wait, not the request
        (it still finishes, settles and is audited)."""
        m = _check_request_args(method, path)
        kind, data = _encode_body(form, json, body)
        hp = _header_pairs(headers, idempotency_key)
        try:
            r = await self._gw._n.arequest(self.vault_key, self.vendor or "", m, path, hp, kind, data)
        except _native.NativeError as e:
            raise _from_native(e, self.key_id) from None
        return Response._from_native(r)

    def get(self, path: str, **kwargs: Any) -> Response:
        """``request("GET", path, ...)``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Response:
        """``request("POST", path, ...)``."""
        return self.request("POST", path, **kwargs)


class AsyncClient:
    """An asyncio client: like :class:`Client`, but :meth:`request` is a coroutine.
    Get one from :meth:`Gateway.aclient`."""

    __slots__ = ("_c",)

    def __init__(self, client: Client) -> None:
        self._c = client

    @property
    def vendor(self) -> Optional[str]:
        """The vendor this client calls (``None``: the gateway takes it from the key)."""
        return self._c.vendor

    @property
    def key_id(self) -> Optional[str]:
        """The id of the client's key, when known."""
        return self._c.key_id

    def __repr__(self) -> str:
        return f"<AsyncClient vendor={self.vendor!r} key_id={self.key_id!r}>"

    async def request(
        self,
        method: str,
        path: str,
        *,
        form: Optional[Mapping[str, Any]] = None,
        json: Any = None,
        body: Union[bytes, str, None] = None,
        headers: Union[Mapping[str, str], Iterable[Tuple[str, str]], None] = None,
        idempotency_key: Optional[str] = None,
    ) -> Response:
        """See :meth:`Client.arequest`."""
        return await self._c.arequest(
            method, path, form=form, json=json, body=body, headers=headers,
            idempotency_key=idempotency_key,
        )


# ---- the gateway --------------------------------------------------------------------------


def _config_json(config: Optional[Mapping[str, Any]]) -> Optional[str]:
    """``config`` as the core's settings JSON. Only types are converted here (Decimal and
    numbers to decimal text for USD amounts, timedelta to the unit a key's name ends with);
    keys and values are checked by the core, which names the key it refuses."""
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict, not {type(config).__name__}")
    return _json.dumps(_settings_value(config, "config"))


def _settings_value(v: Any, path: str, usd: bool = False) -> Any:
    name = path.rsplit(".", 1)[-1]
    if isinstance(v, Mapping):
        out: Dict[str, Any] = {}
        for k, item in v.items():
            if not isinstance(k, str):
                raise TypeError(f"{path} keys must be str, got {k!r}")
            out[k] = _settings_value(item, f"{path}.{k}", usd=name in _USD_TABLES)
        return out
    if isinstance(v, (list, tuple)):
        return [_settings_value(item, f"{path}[{i}]") for i, item in enumerate(v)]
    if isinstance(v, _dt.timedelta):
        if name.endswith("_ms"):
            return _whole(v.total_seconds() * 1000, path)
        if name.endswith("_secs"):
            return _whole(v.total_seconds(), path)
        raise TypeError(f"{path} is not a duration")
    if usd or name.endswith("_usd"):
        return usd_text(v, path)
    if isinstance(v, Decimal):
        return str(v)
    return v


def _whole(x: float, path: str) -> int:
    if x != int(x):
        raise ValueError(f"invalid {path}: must be a whole number of its unit")
    return int(x)


def _ttl(expires_in: Any) -> Union[int, str]:
    return _duration(expires_in, "expires_in")


def _duration(value: Any, field: str) -> Union[int, str]:
    if isinstance(value, bool):
        raise TypeError(f"{field} must be seconds (int), a timedelta or a str like '15m'")
    if isinstance(value, _dt.timedelta):
        secs = value.total_seconds()
        if secs != int(secs):
            raise ValueError(f"invalid {field}: must be whole seconds")
        return int(secs)
    if isinstance(value, (int, str)):
        return value
    raise TypeError(
        f"{field} must be seconds (int), a timedelta or a str like '15m', not {type(value).__name__}"
    )


def _since_ms(since: Any) -> Optional[int]:
    if since is None:
        return None
    if isinstance(since, _dt.timedelta):
        since = _dt.datetime.now(_dt.timezone.utc) - since
    if isinstance(since, str):
        try:
            since = _parse_time(since)
        except ValueError:
            raise ValueError(f"invalid since: {since!r} is not an ISO 8601 time") from None
    if isinstance(since, _dt.datetime):
        if since.tzinfo is None:
            raise ValueError("invalid since: give a timezone-aware datetime (e.g. tz=timezone.utc)")
        return int(since.timestamp() * 1000)
    raise TypeError(f"since must be a datetime, a timedelta or an ISO 8601 str, not {type(since).__name__}")


def _str_list(v: Any, name: str) -> List[str]:
    if isinstance(v, str):
        raise TypeError(f"{name} must be a list of str, not a single str (wrap it in a list)")
    try:
        items = list(v)
    except TypeError:
        raise TypeError(f"{name} must be a list of str, not {type(v).__name__}") from None
    for i in items:
        if not isinstance(i, str):
            raise TypeError(f"{name} must hold str, got {i!r}")
    return items


def _fractions(v: Any) -> List[str]:
    """``alert_at`` as the decimal strings the gateway reads exactly (``0.8`` → ``"0.8"``)."""
    if isinstance(v, (str, bytes)):
        raise TypeError("alert_at must be a list of fractions, not a single value (wrap it in a list)")
    try:
        items = list(v)
    except TypeError:
        raise TypeError(f"alert_at must be a list of fractions, not {type(v).__name__}") from None
    out = []
    for i in items:
        if isinstance(i, bool) or not isinstance(i, (int, float, Decimal, str)):
            raise TypeError(f"alert_at must hold numbers like 0.8, got {i!r}")
        out.append(repr(i) if isinstance(i, float) else str(i))
    return out


class Gateway:
    """A vendorgate gateway: embedded (:meth:`open`) or a running server (:meth:`connect`).
    Both have the same methods and raise the same exceptions.

    Use it as a context manager (or call :meth:`close`) to stop a server started by
    :meth:`serve`. Thread-safe; after ``os.fork()`` the child reopens its own store connection
    and HTTP pool on first use (a server started by :meth:`serve` stays with the parent).
    """

    __slots__ = ("_n", "_served")

    def __init__(self, native: _native.NativeGateway) -> None:
        """Use :meth:`open` or :meth:`connect`."""
        self._n = native
        self._served: Optional[str] = None

    @classmethod
    def open(
        cls,
        path: Union[str, "os.PathLike[str]"],
        config: Optional[Mapping[str, Any]] = None,
    ) -> "Gateway":
        """Open an embedded gateway: the whole pipeline runs in this process on the SQLite
        store at ``path`` (created if missing; ``":memory:"`` for a throwaway one).

        Vendor credentials and upstream URLs come from the environment (``STRIPE_SECRET_KEY``,
        ``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN``, ``RESEND_API_KEY``,
        ``VENDORGATE_*_URL``). ``config`` takes the same settings as the server's TOML file,
        nested the same way (``{"request_timeout_ms": 30000, "pricing": {"fx": {"EUR":
        "1.2"}}}``), over the environment; see :data:`CONFIG_KEYS` (an unknown key raises
        :class:`InvalidInput`, a :class:`ValueError`, naming it).
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or path-like, not {type(path).__name__}")
        p = os.fspath(path)
        if not isinstance(p, str):
            raise TypeError("path must be a text path")
        cj = _config_json(config)
        try:
            return cls(_native.NativeGateway.open(p, cj))
        except _native.NativeError as e:
            raise _from_native(e) from None

    @classmethod
    def connect(cls, url: str, admin_token: Optional[str] = None) -> "Gateway":
        """Connect to a running ``vendorgate serve`` at ``url``: the server holds the real
        vendor keys and enforces; this process only holds the admin token (needed for
        issue_key, revoke, usage, audit and list_keys, not for client requests). With no
        ``admin_token``, ``$VENDORGATE_ADMIN_TOKEN`` is used when set."""
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}")
        if admin_token is not None and not isinstance(admin_token, str):
            raise TypeError("admin_token must be a str or None")
        if admin_token is None:
            admin_token = os.environ.get("VENDORGATE_ADMIN_TOKEN") or None
        try:
            return cls(_native.NativeGateway.connect(url, admin_token))
        except _native.NativeError as e:
            raise _from_native(e) from None

    @property
    def mode(self) -> str:
        """``"embedded"`` or ``"connect"``."""
        return self._n.mode

    def __repr__(self) -> str:
        return f"<vendorgate.Gateway mode={self.mode}>"

    def __enter__(self) -> "Gateway":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the HTTP server started by :meth:`serve`, if any (in-flight requests finish).
        The gateway itself stays usable."""
        self._n.close()
        self._served = None

    # -- keys --

    def issue_key(
        self,
        vendor: str,
        *,
        max_usd: Optional[Union[int, Decimal, str, float]] = None,
        daily_usd_cap: Optional[Union[int, Decimal, str, float]] = None,
        allowed_endpoints: Iterable[str] = (),
        expires_in: Union[int, str, _dt.timedelta] = 3600,
        run_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        stripe_accounts: Iterable[str] = (),
        duplicate_window: Optional[Union[int, str, _dt.timedelta]] = None,
        budgets: Iterable[str] = (),
        alert_at: Iterable[Union[Decimal, str, float]] = (),
    ) -> Key:
        """Issue a vault key for ``vendor`` (``"stripe"``, ``"twilio"`` or ``"resend"``).

        ``max_usd`` caps the key's whole life, ``daily_usd_cap`` each UTC day; a key with
        neither may move no money. Amounts: int, Decimal, str or float USD (at most 6
        decimals). ``allowed_endpoints``: ``"METHOD /path"`` or ``"/path"`` patterns, ``*``
        for one segment and ``**`` for the rest; empty allows nothing. ``expires_in``:
        seconds, a timedelta or ``"15m"``/``"2h"``/``"7d"``. ``duplicate_window``: how long
        a money-moving action is remembered, so the same action again is refused with
        :class:`DuplicateRequest` (code ``duplicate_action``); ``0`` turns the guard off;
        default: the gateway's ``duplicate_window_secs`` (600). ``budgets``: names of budgets
        (see :meth:`create_budget`) the key joins; a call must fit under each of their caps.
        ``alert_at``: fractions of each cap (``[0.5, 0.8]``) at which a
        ``spend.threshold_crossed`` event is sent to the gateway's webhooks, once per cap
        window. Raises :class:`ValueError` naming the field for bad values, :class:`TypeError` for
        wrong types.
        """
        if not isinstance(vendor, str):
            raise TypeError(f"vendor must be a str (stripe, twilio or resend), not {type(vendor).__name__}")
        if run_id is not None and not isinstance(run_id, str):
            raise TypeError(f"run_id must be a str, not {type(run_id).__name__}")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
        spec: Dict[str, Any] = {
            "vendor": vendor,
            "allowed_endpoints": _str_list(allowed_endpoints, "allowed_endpoints"),
            "expires_in": _ttl(expires_in),
        }
        mx = usd_text_or_none(max_usd, "max_usd")
        if mx is not None:
            spec["max_usd"] = mx
        dc = usd_text_or_none(daily_usd_cap, "daily_usd_cap")
        if dc is not None:
            spec["daily_usd_cap"] = dc
        if run_id is not None:
            spec["run_id"] = run_id
        if metadata is not None:
            try:
                spec["metadata"] = _json.loads(_json.dumps(dict(metadata), default=_json_default))
            except TypeError as e:
                raise TypeError(f"metadata must be JSON-serializable: {e}") from None
        accounts = _str_list(stripe_accounts, "stripe_accounts")
        if accounts:
            spec["stripe_accounts"] = accounts
        if duplicate_window is not None:
            spec["duplicate_window"] = _duration(duplicate_window, "duplicate_window")
        names = _str_list(budgets, "budgets")
        if names:
            spec["budgets"] = names
        thresholds = _fractions(alert_at)
        if thresholds:
            spec["alert_at"] = thresholds
        try:
            text = self._n.issue_key(_json.dumps(spec))
        except _native.NativeError as e:
            raise _from_native(e) from None
        return Key._from_json(_json.loads(text))

    def _ref(self, key: Any) -> Tuple[str, Optional[str]]:
        """(what to send, the key id when known)"""
        if isinstance(key, (Key, KeyStatus)):
            return key.key_id, key.key_id
        if isinstance(key, str):
            return key, (key if key.startswith("key_") else None)
        raise TypeError(
            f"key must be a Key, a key id (key_…) or a vault key (vk_…), not {type(key).__name__}"
        )

    def revoke(self, key: KeyRef) -> None:
        """Revoke a key: the next request with it gets :class:`KeyRevoked`. Revoking twice is
        fine; an unknown key raises :class:`KeyNotFound`."""
        ref, kid = self._ref(key)
        try:
            self._n.revoke(ref)
        except _native.NativeError as e:
            raise _from_native(e, kid) from None

    # -- budgets --

    def create_budget(
        self,
        name: str,
        *,
        max_usd: Optional[Union[int, Decimal, str, float]] = None,
        daily_usd_cap: Optional[Union[int, Decimal, str, float]] = None,
        alert_at: Iterable[Union[Decimal, str, float]] = (),
    ) -> "BudgetStatus":
        """Create a budget that many keys can share (``issue_key(..., budgets=[name])``):
        a call of any member key must also fit under the budget's caps. At least one cap.
        ``alert_at`` as in :meth:`issue_key`, for the budget's caps. A taken name raises
        :class:`InvalidInput`."""
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        spec: Dict[str, Any] = {"name": name}
        mx = usd_text_or_none(max_usd, "max_usd")
        if mx is not None:
            spec["max_usd"] = mx
        dc = usd_text_or_none(daily_usd_cap, "daily_usd_cap")
        if dc is not None:
            spec["daily_usd_cap"] = dc
        thresholds = _fractions(alert_at)
        if thresholds:
            spec["alert_at"] = thresholds
        try:
            self._n.create_budget(_json.dumps(spec))
        except _native.NativeError as e:
            raise _from_native(e) from None
        return self.budget(name)

    def budget(self, name: str) -> "BudgetStatus":
        """A budget's caps, what its keys have counted and which keys joined it."""
        try:
            text = self._n.budget(name)
        except _native.NativeError as e:
            raise _from_native(e) from None
        return BudgetStatus._from_json(_json.loads(text))

    def budgets(self) -> List["BudgetStatus"]:
        """Every budget, by name."""
        try:
            text = self._n.budgets()
        except _native.NativeError as e:
            raise _from_native(e) from None
        return [BudgetStatus._from_json(b) for b in _json.loads(text)]

    def usage(self, key: KeyRef) -> KeyStatus:
        """The key's policy and what it has counted: see :class:`KeyStatus`."""
        ref, kid = self._ref(key)
        try:
            text = self._n.usage(ref)
        except _native.NativeError as e:
            raise _from_native(e, kid) from None
        return KeyStatus._from_json(_json.loads(text))

    def list_keys(self, run_id: Optional[str] = None, active: bool = False) -> List[KeyStatus]:
        """Keys, newest first; only those of ``run_id`` if given, only unrevoked and
        unexpired ones if ``active``."""
        if run_id is not None and not isinstance(run_id, str):
            raise TypeError("run_id must be a str or None")
        if not isinstance(active, bool):
            raise TypeError("active must be a bool")
        try:
            text = self._n.list_keys(run_id, active)
        except _native.NativeError as e:
            raise _from_native(e) from None
        return [KeyStatus._from_json(v) for v in _json.loads(text)]

    def audit(
        self,
        run_id: Optional[str] = None,
        key: Optional[KeyRef] = None,
        since: Union[_dt.datetime, _dt.timedelta, str, None] = None,
        limit: Optional[int] = None,
    ) -> List[Dict[str, Any]]:
        """Audit rows, oldest first: the newest ``limit`` (default and most
        :data:`AUDIT_DEFAULT_LIMIT`, 10,000, the same in both bindings) rows
        matching ``run_id``, ``key`` and ``since`` (an aware datetime, an ISO 8601 str, or a
        timedelta meaning "that long ago").

        Each row is a dict with ``time`` (datetime), ``key_id``, ``run_id``, ``vendor``,
        ``method``, ``endpoint``, ``decision`` (``"forwarded"`` or the refusal reason),
        ``status``, ``upstream_status``, ``estimate_usd`` and ``cost_usd`` (Decimal),
        ``money_state``, ``latency_ms``, ``upstream_latency_ms``, ``idempotency_key``,
        ``vendor_request_id``, ``message``, ``spend_id`` (the ledger row of the call's
        money; a duplicate-action 409 and a ``spend.unknown`` event name it).
        """
        if run_id is not None and not isinstance(run_id, str):
            raise TypeError("run_id must be a str or None")
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise TypeError("limit must be an int or None")
            if limit <= 0:
                raise ValueError("invalid limit: must be a positive int")
        key_id: Optional[str] = None
        if key is not None:
            ref, key_id = self._ref(key)
            if key_id is None:
                key_id = self.usage(ref).key_id
        sm = _since_ms(since)
        try:
            text = self._n.audit(key_id, run_id, sm, limit or 0)
        except _native.NativeError as e:
            raise _from_native(e, key_id) from None
        return [_audit_row(r) for r in _json.loads(text)]

    @contextlib.contextmanager
    def run(
        self,
        vendor: str,
        *,
        max_usd: Optional[Union[int, Decimal, str, float]] = None,
        daily_usd_cap: Optional[Union[int, Decimal, str, float]] = None,
        allowed_endpoints: Iterable[str] = (),
        expires_in: Union[int, str, _dt.timedelta] = 3600,
        run_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        stripe_accounts: Iterable[str] = (),
        duplicate_window: Optional[Union[int, str, _dt.timedelta]] = None,
        budgets: Iterable[str] = (),
        alert_at: Iterable[Union[Decimal, str, float]] = (),
    ) -> Iterator[Key]:
        """Issue a key for one agent run and revoke it when the block ends, whether it
        succeeded or raised::

            with gw.run("stripe", max_usd=500, allowed_endpoints=["POST /v1/payment_intents"],
                        run_id="run-42") as key:
                agent(api_key=key.vault_key)

        Takes the arguments of :meth:`issue_key`.
        """
        key = self.issue_key(
            vendor,
            max_usd=max_usd,
            daily_usd_cap=daily_usd_cap,
            allowed_endpoints=allowed_endpoints,
            expires_in=expires_in,
            run_id=run_id,
            metadata=metadata,
            stripe_accounts=stripe_accounts,
            duplicate_window=duplicate_window,
            budgets=budgets,
            alert_at=alert_at,
        )
        try:
            yield key
        except BaseException:
            try:
                self.revoke(key)
            except Exception as revoke_error:  # keep the run's own exception
                warnings.warn(
                    f"vendorgate: could not revoke {key.key_id} after a failed run: {revoke_error}",
                    RuntimeWarning,
                    stacklevel=3,
                )
            raise
        else:
            self.revoke(key)

    # -- requests --

    def client(self, key: Union[Key, str], vendor: Optional[str] = None) -> Client:
        """A :class:`Client` that calls the key's vendor with its vault key.

        ``key`` is the issued :class:`Key`, or a vault key string (``vk_…``). For a string,
        ``vendor`` may be given; without it the gateway takes the vendor from the key itself
        (nothing is looked up first), and ``Client.vendor`` is ``None``.
        """
        if isinstance(key, Key):
            if vendor is not None and vendor != key.vendor:
                raise ValueError(f"invalid vendor: the key is for {key.vendor}, not {vendor}")
            return Client(self, key.vault_key, key.vendor, key.key_id)
        if not isinstance(key, str):
            raise TypeError(f"key must be a Key or a vault key str, not {type(key).__name__}")
        if not key.startswith("vk_"):
            raise ValueError(
                "invalid key: client() needs the vault key (vk_…), shown once by issue_key, "
                "not a key id"
            )
        if vendor is not None:
            if not isinstance(vendor, str):
                raise TypeError("vendor must be a str")
            if vendor not in VENDORS:
                raise ValueError(f"invalid vendor: {vendor!r} is not one of stripe, twilio, resend")
        return Client(self, key, vendor, None)

    def aclient(self, key: Union[Key, str], vendor: Optional[str] = None) -> AsyncClient:
        """An :class:`AsyncClient` for ``key``: like :meth:`client`, with a coroutine
        ``request``."""
        return AsyncClient(self.client(key, vendor))

    def serve(self, port: int = 0, admin_token: Optional[str] = None, host: str = "127.0.0.1") -> str:
        """Serve this embedded gateway over HTTP on ``host`` (``port=0`` picks a free port)
        and return its base URL, e.g. ``"http://127.0.0.1:50123"``. The official vendor SDKs
        then work against it: point them at ``url + "/stripe"`` (``"/twilio"``,
        ``"/resend"``) with the vault key as their API key. ``admin_token`` enables the admin
        API on the same port. Calling it again returns the same URL; :meth:`close` stops it.
        """
        if isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"port must be an int, not {type(port).__name__}")
        if not 0 <= port <= 65535:
            raise ValueError(f"invalid port: {port} is not between 0 and 65535")
        if admin_token is not None and not isinstance(admin_token, str):
            raise TypeError("admin_token must be a str or None")
        if not isinstance(host, str) or not host:
            raise TypeError("host must be a non-empty str")
        try:
            url = self._n.serve(port, admin_token, host)
        except _native.NativeError as e:
            raise _from_native(e) from None
        self._served = url
        return url
