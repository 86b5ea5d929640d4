"""vendorgate: per-run vault keys, endpoint allowlists and USD spend caps between AI agents
and the money-moving APIs they call (Stripe, Twilio, Resend).

    import vendorgate

    gw = vendorgate.Gateway.open("vendorgate.db")          # embedded; credentials from env
    with gw.run("stripe", max_usd=500, allowed_endpoints=["POST /v1/payment_intents"]) as key:
        client = gw.client(key)
        r = client.request("POST", "/v1/payment_intents",
                           form={"amount": 10000, "currency": "usd", "confirm": True,
                                 "payment_method": "pm_card_visa"})
        print(r.status, r.cost_usd, r.remaining_usd)   # Decimal money, never float

Refusals raise :class:`Denied` subclasses (:class:`SpendCapExceeded`, ...); see
:mod:`vendorgate.errors`. ``Gateway.connect(url, admin_token=...)`` gives the same API over a
running ``vendorgate serve``.
"""

from __future__ import annotations

import os as _os

from . import _vendorgate
from ._gateway import (
    AUDIT_DEFAULT_LIMIT,
    CONFIG_KEYS,
    AsyncClient,
    Client,
    Gateway,
    Headers,
    Key,
    KeyRef,
    KeyStatus,
    BudgetStatus,
    Policy,
    Response,
)
from ._money import UsdIn
from .errors import (
    BadRequest,
    ConfigError,
    Denied,
    DuplicateRequest,
    EndpointNotAllowed,
    Error,
    InvalidInput,
    KeyExpired,
    KeyNotFound,
    KeyRevoked,
    SpendCapExceeded,
    StoreError,
    Unauthorized,
    UnknownKey,
    UpstreamError,
    _check_tree,
)

__version__: str = _vendorgate.__version__
"""The package version (the version of the vendorgate workspace it was built from)."""

__all__ = [
    "Gateway",
    "Key",
    "KeyStatus",
    "BudgetStatus",
    "Policy",
    "Client",
    "AsyncClient",
    "Response",
    "Headers",
    "KeyRef",
    "UsdIn",
    "CONFIG_KEYS",
    "AUDIT_DEFAULT_LIMIT",
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
    "__version__",
]

# The class tree is the core's (Error::class decides; this only guards against drift).
_check_tree()

# A forked child gets a fresh runtime (the parent's threads do not survive fork()).
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_vendorgate._after_fork_in_child)
