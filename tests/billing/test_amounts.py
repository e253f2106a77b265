"""Money and quantity inputs (commits, prices): what the grids and the API accept, and what each refusal says."""
from __future__ import annotations

from decimal import Decimal

import pytest

from billing.amounts import MAX_AMOUNT, non_negative_decimal

D = Decimal


@pytest.mark.parametrize("value, expected", [
    ("0", D("0")),                                       # zero is a valid commit or price
    ("0.5", D("0.5")),                                   # below one
    (" 12.50\n", D("12.50")),                            # surrounding blanks from a form are dropped
    (7, D("7")),                                         # a JSON number
    (2.25, D("2.25")),                                   # a float goes through its text, not its binary value
    (D("0.000001"), D("0.000001")),
    ("-0", D("-0")),                                     # minus zero is zero, not negative
    ("999999999999.999999", D("999999999999.999999")),  # just below 10^12
])
def test_a_finite_non_negative_amount_below_a_trillion_is_accepted(value, expected):
    number = non_negative_decimal(value, "commit")
    assert number == expected and str(number) == str(expected)


@pytest.mark.parametrize("value, message", [
    (None, "commit must be a number"),
    (True, "commit must be a number"),                   # a JSON true is not 1
    (False, "commit must be a number"),                  # nor false 0
    ("", "commit must be a number"),
    ("ten", "commit must be a number"),
    ("1,000", "commit must be a number"),
    pytest.param(10 ** 5000, "commit must be a number", id="5001-digits"),  # str() refuses it: a ValueError
    ("NaN", "commit must be a finite number"),
    ("sNaN", "commit must be a finite number"),
    ("Infinity", "commit must be a finite number"),
    ("-Infinity", "commit must be a finite number"),
    ("-0.000001", "commit must not be negative"),
    ("-5", "commit must not be negative"),
    ("1000000000000", "commit must be below 1,000,000,000,000"),   # exactly 10^12
    ("1e12", "commit must be below 1,000,000,000,000"),
    ("1000000000000.000001", "commit must be below 1,000,000,000,000"),
])
def test_anything_else_is_refused_with_its_reason(value, message):
    with pytest.raises(ValueError) as refused:
        non_negative_decimal(value, "commit")
    assert str(refused.value) == message


def test_the_field_is_called_value_unless_named_and_the_bound_is_a_trillion():
    with pytest.raises(ValueError, match="^value must not be negative$"):
        non_negative_decimal("-1")
    assert MAX_AMOUNT == D(10) ** 12
