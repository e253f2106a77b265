"""Money and quantity inputs (prices, commits): a plain rule shared by the grids and the JSON API."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

MAX_AMOUNT = Decimal("1000000000000")


def non_negative_decimal(value: Any, field: str = "value") -> Decimal:
    """Parse a finite, non-negative decimal below 10^12; raise ValueError otherwise."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{field} must be a number")
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"{field} must be a number") from None
    if not number.is_finite():
        raise ValueError(f"{field} must be a finite number")
    if number < 0:
        raise ValueError(f"{field} must not be negative")
    if number >= MAX_AMOUNT:
        raise ValueError(f"{field} must be below 1,000,000,000,000")
    return number
