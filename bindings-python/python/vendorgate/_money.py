"""Money crossing the Python boundary.

In: ``int``, :class:`~decimal.Decimal`, ``str`` or ``float`` USD. A float is read through
``repr`` (the shortest text that round-trips, so ``0.1`` means 0.1, not
0.1000000000000000055…) and then parsed as a decimal. More than 6 decimal places (finer than
one micro-dollar) is refused with :class:`ValueError`, never rounded. ``bool`` and other types
raise :class:`TypeError`.

Out: always :class:`~decimal.Decimal`, never ``float``.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any, Optional, Union

UsdIn = Union[int, Decimal, str, float]
"""What the API accepts as an amount of USD."""


def usd_text(value: Any, field: str) -> str:
    """The decimal text of a USD amount given as int, Decimal, str or float."""
    if isinstance(value, bool):
        raise TypeError(f"{field} must be a USD amount (int, Decimal, str or float), not bool")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"invalid {field}: {value} is not a finite amount")
        return format(value, "f")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"invalid {field}: {value!r} is not a finite amount")
        return format(Decimal(repr(value)), "f")
    if isinstance(value, str):
        return value
    raise TypeError(
        f"{field} must be a USD amount (int, Decimal, str or float), not {type(value).__name__}"
    )


def usd_text_or_none(value: Any, field: str) -> Optional[str]:
    """Like :func:`usd_text`, passing ``None`` through."""
    return None if value is None else usd_text(value, field)


def usd_out(value: Any) -> Decimal:
    """A decimal USD string (or number) from the gateway as a Decimal."""
    if isinstance(value, Decimal):
        return value
    if value is None:
        return Decimal("0")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"the gateway reported {value!r} as an amount") from None


def usd_out_or_none(value: Any) -> Optional[Decimal]:
    """Like :func:`usd_out`, passing ``None`` through."""
    return None if value is None else usd_out(value)


def micros_to_usd(micros: int) -> Decimal:
    """Micro-USD as a Decimal with at least two decimals: 5_000_000 → Decimal('5.00')."""
    sign = "-" if micros < 0 else ""
    m = abs(micros)
    frac = f"{m % 1_000_000:06d}".rstrip("0")
    if len(frac) < 2:
        frac = frac.ljust(2, "0")
    return Decimal(f"{sign}{m // 1_000_000}.{frac}")
