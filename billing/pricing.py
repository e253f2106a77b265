"""The cost formula and over/under status: the one place these rules live."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0")


def cents(amount: Decimal) -> Decimal:
    """Round half-up to cents."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Cost:
    base_cost: Decimal
    overage_units: Decimal
    overage_cost: Decimal
    buffer_units: Decimal
    buffer_cost: Decimal
    final_cost: Decimal


def rate_bucket_usage(usage: Decimal, commit: Decimal, base_price: Decimal, overage_price: Decimal) -> Cost:
    """DESIGN.md's formula: base = C·B, overage = max(0, U−C)·O, buffer = max(0, C−U)·B, final = base + overage."""
    base_cost = cents(commit * base_price)
    overage_units = max(ZERO, usage - commit)
    buffer_units = max(ZERO, commit - usage)
    overage_cost = cents(overage_units * overage_price)
    buffer_cost = cents(buffer_units * base_price)
    return Cost(base_cost, overage_units, overage_cost, buffer_units, buffer_cost, base_cost + overage_cost)


def bucket_status(usage: Decimal, commit: Decimal) -> str:
    """`over` when U > C, `under` when U < C, else `at`."""
    if usage > commit:
        return "over"
    if usage < commit:
        return "under"
    return "at"


def client_status(bucket_statuses: list[str]) -> str:
    """`over` (some over, none under), `under` (the reverse), `mixed` (both), else `at`."""
    over = "over" in bucket_statuses
    under = "under" in bucket_statuses
    if over and under:
        return "mixed"
    if over:
        return "over"
    if under:
        return "under"
    return "at"


def pct_of_commit(usage: Decimal, commit: Decimal) -> Decimal | None:
    """100·U/C to two places; None when C = 0."""
    if commit == 0:
        return None
    return cents(Decimal(100) * usage / commit)
