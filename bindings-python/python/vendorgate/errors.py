"""Exceptions raised by vendorgate.

Every gateway refusal is a :class:`Error` with a stable ``code`` (the gateway's reason code,
the same one the audit log records and the vendor SDKs see as ``vendorgate_<code>``), the HTTP
``status`` the proxy server answers with, a ``message`` a person can act on, and the
``key_id`` when it is known::

    Error
    ├── Denied                      the gateway refused the call
    │   ├── Unauthorized            401: the vault key (or the admin token) was not accepted
    │   │   ├── UnknownKey          missing_key, unknown_key
    │   │   ├── KeyRevoked          key_revoked
    │   │   └── KeyExpired          key_expired
    │   │   (Unauthorized itself: the admin token was refused)
    │   ├── EndpointNotAllowed      403: endpoint_not_allowed, credential
    │   ├── SpendCapExceeded        402: spend_cap_exceeded (cap_usd, spent_usd, estimate_usd)
    │   ├── DuplicateRequest        409: duplicate_request, duplicate_action
    │   └── BadRequest              400/413: bad_path, bad_request, cannot_price, body_too_large
    ├── UpstreamError               502/504: the vendor (or the vendorgate server) failed
    ├── StoreError                  503: the gateway's store cannot answer
    ├── ConfigError                 config_error, vendor_not_configured
    ├── InvalidInput                also a ValueError: bad argument, names the field
    └── KeyNotFound                 also a LookupError: no such key

Which class an error raises is decided once, in the Rust core (``Error::class``), for both
bindings; this module only holds the classes (``_check_tree`` compares them with the core's
tree). A reason code this version does not know (a newer server) is classed by its status.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, Optional, Type

__all__ = [
    "Error",
    "Denied",
    "Unauthorized",
    "UnknownKey",
    "KeyRevoked",
    "KeyExpired",
    "EndpointNotAllowed",
    "SpendCapExceeded",
    "DuplicateRequest",
    "BadRequest",
    "UpstreamError",
    "StoreError",
    "ConfigError",
    "InvalidInput",
    "KeyNotFound",
]


class Error(Exception):
    """Base class of every vendorgate error.

    Attributes: ``code`` (stable reason code, e.g. ``"spend_cap_exceeded"``), ``status``
    (the HTTP status the gateway answers with), ``message`` (what happened and what to do),
    ``key_id`` (the key concerned, when known) and ``details`` (the gateway's
    machine-readable details as a dict).
    """

    code: str
    status: int
    message: str
    key_id: Optional[str]
    details: Dict[str, Any]

    def __init__(
        self,
        message: str,
        *,
        code: str = "error",
        status: int = 500,
        key_id: Optional[str] = None,
        details: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.key_id = key_id
        self.details = dict(details or {})

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status}, message={self.message!r})"

    def __reduce__(self) -> Any:
        # Keep code, status, key_id and details through pickle (multiprocessing, logging).
        return (_rebuild, (type(self), self.message, self.code, self.status, self.key_id, self.details))


class Denied(Error):
    """The gateway refused the call; nothing reached the vendor."""


class Unauthorized(Denied):
    """The vault key (or, in connect mode, the admin token) was not accepted (HTTP 401)."""


class UnknownKey(Unauthorized):
    """No vault key was sent, or the key is not one this gateway issued."""


class KeyRevoked(Unauthorized):
    """The vault key was revoked; issue a new key for the run."""


class KeyExpired(Unauthorized):
    """The vault key is past its ``expires_at``; issue a new key for the run."""


class EndpointNotAllowed(Denied):
    """The key's ``allowed_endpoints`` do not include this method and path (HTTP 403)."""


class SpendCapExceeded(Denied):
    """The call would take the key past one of its USD caps (HTTP 402).

    ``cap_usd``, ``spent_usd`` and ``estimate_usd`` are :class:`~decimal.Decimal` (or ``None``
    when the gateway did not report them); ``window`` is ``"run"`` (``max_usd``) or
    ``"daily"`` (``daily_usd_cap``).
    """

    cap_usd: Optional[Decimal]
    spent_usd: Optional[Decimal]
    estimate_usd: Optional[Decimal]
    window: Optional[str]

    def __init__(
        self,
        message: str,
        *,
        code: str = "spend_cap_exceeded",
        status: int = 402,
        key_id: Optional[str] = None,
        details: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message, code=code, status=status, key_id=key_id, details=details)
        self.cap_usd = _decimal_or_none(self.details.get("cap_usd"))
        self.spent_usd = _decimal_or_none(self.details.get("spent_usd"))
        self.estimate_usd = _decimal_or_none(self.details.get("estimate_usd"))
        window = self.details.get("window")
        self.window = window if isinstance(window, str) else None


class DuplicateRequest(Denied):
    """The Idempotency-Key is in flight or was used with a different request (HTTP 409)."""


class BadRequest(Denied):
    """The request cannot be checked or priced safely, or its body is too large (400/413)."""


class UpstreamError(Error):
    """The vendor (or, in connect mode, the vendorgate server) failed or timed out (502/504).

    After a timeout the call may have gone through: its reservation stays counted.
    """


class StoreError(Error):
    """The gateway's store cannot answer, so nothing was forwarded (HTTP 503)."""


class ConfigError(Error):
    """The gateway is misconfigured, e.g. the vendor has no credentials (HTTP 503/400)."""


class InvalidInput(Error, ValueError):
    """An argument is invalid; ``field`` names it. Also a :class:`ValueError`."""

    field: Optional[str]

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid_input",
        status: int = 400,
        key_id: Optional[str] = None,
        details: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message, code=code, status=status, key_id=key_id, details=details)
        field = self.details.get("field")
        self.field = field if isinstance(field, str) else None


class KeyNotFound(Error, LookupError):
    """No key with that id or vault key exists. Also a :class:`LookupError`."""


def _decimal_or_none(v: Any) -> Optional[Decimal]:
    if v is None or isinstance(v, bool):
        return None
    try:
        return Decimal(str(v))
    except (InvalidOperation, ValueError):
        return None


def _rebuild(
    cls: Type[Error], message: str, code: str, status: int, key_id: Optional[str], details: Dict[str, Any]
) -> Error:
    return cls(message, code=code, status=status, key_id=key_id, details=details)


def error_class(code: str, status: int = 400) -> Type[Error]:
    """The exception class for a gateway reason code (decided by the core; a code this
    version does not know is classed by ``status``)."""
    from . import _vendorgate

    return _class_named(_vendorgate.class_of_reason(code, status))


def _class_named(name: str) -> Type[Error]:
    cls = globals().get(name)
    if isinstance(cls, type) and issubclass(cls, Error):
        return cls
    return Error


def _check_tree() -> None:
    """Fail loudly if this module's classes and the core's class tree disagree."""
    from . import _vendorgate

    for name, parent in _vendorgate.error_classes():
        cls = globals().get(name)
        base = _class_named(parent) if parent else Error
        if not (isinstance(cls, type) and issubclass(cls, base) and (parent is None or base is not Error)):
            raise ImportError(f"vendorgate.errors.{name} does not match the core (parent {parent or 'Error'})")


def _from_native(exc: BaseException, key_id: Optional[str] = None) -> Error:
    """Turn the native module's ``NativeError(class, code, status, message, details_json)``."""
    args = exc.args
    name = str(args[0]) if len(args) > 0 else "Error"
    code = str(args[1]) if len(args) > 1 else "error"
    status = int(args[2]) if len(args) > 2 else 500
    message = str(args[3]) if len(args) > 3 else str(exc)
    details: Dict[str, Any] = {}
    if len(args) > 4:
        try:
            parsed = json.loads(args[4])
            if isinstance(parsed, dict):
                details = parsed
        except (TypeError, ValueError):
            pass
    return _class_named(name)(message, code=code, status=status, key_id=key_id, details=details)
