"""How money, quantities and times are written on every page."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def money(value: Decimal | int | float | str | None) -> str:
    """`$1,234.56`; negative as `-$1,234.56`; empty for None."""
    if value is None or value == "":
        return ""
    amount = Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def quantity(value: Decimal | int | float | str | None) -> str:
    """A usage figure with thousands separators and no trailing zeros past the point."""
    if value is None or value == "":
        return ""
    number = Decimal(str(value))
    text = f"{number:,.6f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def percent(value: Decimal | float | None) -> str:
    if value is None:
        return ""
    return f"{Decimal(str(value)).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def utc(value: datetime | None) -> str:
    """`2026-11-25 15:09 UTC`."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def utc_date(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%d")


FILTERS = {"money": money, "quantity": quantity, "percent": percent, "utc": utc, "utc_date": utc_date}
