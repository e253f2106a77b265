"""The cost formula and the over/under statuses, with the numbers worked out."""
from __future__ import annotations

from decimal import Decimal

import pytest

from billing.pricing import Cost, bucket_status, cents, client_status, pct_of_commit, rate_bucket_usage

D = Decimal


def test_usage_over_commit_pays_overage_and_no_buffer():
    # C=100 at B=1.50 -> base 150.00; U=120 -> 20 over at O=2.25 = 45.00; final 195.00
    assert rate_bucket_usage(D(120), D(100), D("1.50"), D("2.25")) == Cost(
        D("150.00"), D(20), D("45.00"), D(0), D("0.00"), D("195.00"))


def test_usage_under_commit_leaves_a_buffer_and_pays_the_base():
    # U=70 of C=100: 30 buffer units at B=1.50 = 45.00 unused; final = base 150.00
    assert rate_bucket_usage(D(70), D(100), D("1.50"), D("2.25")) == Cost(
        D("150.00"), D(0), D("0.00"), D(30), D("45.00"), D("150.00"))


def test_usage_exactly_at_commit_has_neither_overage_nor_buffer():
    assert rate_bucket_usage(D(100), D(100), D("1.50"), D("2.25")) == Cost(
        D("150.00"), D(0), D("0.00"), D(0), D("0.00"), D("150.00"))


def test_cents_round_half_up():
    assert cents(D("0.005")) == D("0.01")
    assert cents(D("0.015")) == D("0.02")   # half-even would give 0.02 too; 0.025 tells them apart
    assert cents(D("0.025")) == D("0.03")
    assert cents(D("-0.005")) == D("-0.01")
    # C=1 at B=0.125 -> 0.125 -> 0.13 (half-up), overage 1 unit at 0.005 -> 0.01
    cost = rate_bucket_usage(D(2), D(1), D("0.125"), D("0.005"))
    assert (cost.base_cost, cost.overage_cost, cost.final_cost) == (D("0.13"), D("0.01"), D("0.14"))


@pytest.mark.parametrize("usage, commit, status", [
    ("100.000001", "100", "over"), ("99.999999", "100", "under"), ("100", "100", "at"), ("100.000", "100", "at"),
    ("0", "0", "at"),
])
def test_bucket_status_over_under_or_exactly_at(usage, commit, status):
    assert bucket_status(D(usage), D(commit)) == status


@pytest.mark.parametrize("statuses, status", [
    (["over", "at"], "over"), (["under", "at"], "under"), (["over", "under"], "mixed"),
    (["over", "at", "under"], "mixed"), (["at", "at"], "at"), ([], "at"),
])
def test_client_status_from_its_buckets(statuses, status):
    assert client_status(statuses) == status


def test_percent_of_commit_two_places_half_up_and_empty_without_commit():
    assert pct_of_commit(D(150), D(100)) == D("150.00")
    assert pct_of_commit(D(1), D(3)) == D("33.33")
    assert pct_of_commit(D(2), D(3)) == D("66.67")
    assert pct_of_commit(D("0.00125"), D(1)) == D("0.13")   # 0.125 -> half-up 0.13
    assert pct_of_commit(D(5), D(0)) is None
