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
    │   ├── EndpointNotAllowed      403: endpoint_not_allowed, credential
    │   ├── SpendCapExceeded        402: spend_cap_exceeded (cap_usd, spent_usd, estimate_usd)
    │   ├── DuplicateRequest        409: duplicate_request
    │   └── BadRequest              400/413: bad_path, bad_request, cannot_price, body_too_large
    ├── UpstreamError               502/504: the vendor (or the vendorgate server) failed
    ├── StoreError                  503: the gateway's store cannot answer
    ├── ConfigError                 config_error, vendor_not_configured
    ├── InvalidInput                also a ValueError: bad argument, names the field
    └── KeyNotFound                 also a LookupError: no such key
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


_BY_CODE: Dict[str, Type[Error]] = {
    "missing_key": UnknownKey,
    "unknown_key": UnknownKey,
    "key_revoked": KeyRevoked,
    "key_expired": KeyExpired,
    "unauthorized": Unauthorized,
    "endpoint_not_allowed": EndpointNotAllowed,
    "credential": EndpointNotAllowed,
    "spend_cap_exceeded": SpendCapExceeded,
    "duplicate_request": DuplicateRequest,
    "bad_path": BadRequest,
    "bad_request": BadRequest,
    "cannot_price": BadRequest,
    "body_too_large": BadRequest,
    "upstream_error": UpstreamError,
    "store_error": StoreError,
    "config_error": ConfigError,
    "vendor_not_configured": ConfigError,
    "invalid_input": InvalidInput,
    "not_found": KeyNotFound,
}


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


def error_class(code: str) -> Type[Error]:
    """The exception class for a gateway reason code (:class:`Error` for an unknown one)."""
    return _BY_CODE.get(code, Error)


def _from_native(exc: BaseException, key_id: Optional[str] = None) -> Error:
    """Turn the native module's ``NativeError(code, status, message, details_json)``."""
    args = exc.args
    code = str(args[0]) if len(args) > 0 else "error"
    status = int(args[1]) if len(args) > 1 else 500
    message = str(args[2]) if len(args) > 2 else str(exc)
    details: Dict[str, Any] = {}
    if len(args) > 3:
        try:
            parsed = json.loads(args[3])
            if isinstance(parsed, dict):
                details = parsed
        except (TypeError, ValueError):
            pass
    return error_class(code)(message, code=code, status=status, key_id=key_id, details=details)
