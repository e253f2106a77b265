"""WTForms validators of the grids, made from the plain field rules (billing/amounts.py, ingest/suppressions.py)."""
from __future__ import annotations

from typing import Any

from wtforms.validators import ValidationError

from billing.amounts import non_negative_decimal


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
