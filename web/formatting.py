"""How money, quantities and times are written on every page."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def money(value: Decimal | int | float | str | None) -> str:
    """`$1,234.56`; negative as `-$1,234.56`; empty for None."""
    if value is None or value == "":
        return ""
    amount = Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def price(value: Decimal | int | float | str | None) -> str:
    """A unit price at its real precision: at least cents, up to six places (`$0.045`, `$1.50`, `$0.000125`)."""
    if value is None or value == "":
        return ""
    amount = Decimal(str(value)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    whole, _, places = f"{abs(amount):,.6f}".partition(".")
    places = places.rstrip("0").ljust(2, "0")
    return f"{sign}${whole}.{places}"


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


def last_day(period_end: datetime | None) -> str:
    """The last day a period covers, from its exclusive end (`2026-12-01 00:00` -> `2026-11-30`)."""
    return "" if period_end is None else utc_date(period_end - timedelta(microseconds=1))


def month_name(period_start: datetime | None) -> str:
    """`November 2026`: how a chart's heading names the period it shows."""
    return "" if period_start is None else period_start.astimezone(timezone.utc).strftime("%B %Y")


FILTERS = {"money": money, "price": price, "last_day": last_day, "month_name": month_name, "quantity": quantity, "percent": percent, "utc": utc, "utc_date": utc_date}
