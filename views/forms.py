"""Field rules shared by the grids and the JSON API: plain functions that raise ValueError."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from wtforms.validators import ValidationError

from models import AGGREGATIONS, SUPPRESSION_TYPES
from ingest.suppressions import compile_regex, glob_to_regex

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


def check_aggregation(value: str) -> str:
    if value not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}")
    return value


def check_glob(pattern: str) -> str:
    """A glob is valid when it compiles; `fnmatch` turns unbalanced brackets into literals, so check them."""
    if not pattern or not pattern.strip():
        raise ValueError("pattern must not be empty")
    if pattern.count("[") != pattern.count("]"):
        raise ValueError("glob has an unbalanced '[' or ']'")
    compile_regex(glob_to_regex(pattern))
    return pattern


def check_regex(pattern: str) -> str:
    """A regex is valid when RE2 compiles it: RE2 matches in linear time, so nothing that needs backtracking."""
    if not pattern:
        raise ValueError("pattern must not be empty")
    try:
        compile_regex(pattern)
    except ValueError as exc:
        raise ValueError(f"not a valid regular expression for RE2: {exc} (RE2 matches in linear time, so it has "
                         "no backreferences, lookarounds, possessive or atomic groups)") from None
    return pattern


def check_suppression(kind: str, pattern: str) -> str:
    if kind not in SUPPRESSION_TYPES:
        raise ValueError(f"type must be one of {', '.join(SUPPRESSION_TYPES)}")
    if kind == "glob":
        return check_glob(pattern)
    if kind == "regex":
        return check_regex(pattern)
    if not pattern:
        raise ValueError("pattern must not be empty")
    return pattern


def form_check(rule):
    """Turn a plain rule into a WTForms validator that shows the rule's message next to the field."""

    def validator(form: Any, field: Any) -> None:
        if field.data is None or field.data == "":
            return
        try:
            rule(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    return validator


def non_negative(form: Any, field: Any) -> None:
    if field.data is None:
        return
    try:
        non_negative_decimal(field.data, field.label.text)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
