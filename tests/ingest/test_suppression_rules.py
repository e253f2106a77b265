"""Suppression matching, rule by rule: each rule matches whole ids only, and several rules together match the union
of what each matches alone."""
from __future__ import annotations

import pytest

from ingest.suppressions import SuppressionMatcher, check_suppression, compile_suppressions, glob_to_regex


def test_two_glob_rules_each_keep_matching_their_own_ids():
    matches = compile_suppressions([("glob", "test-*"), ("glob", "tmp-?")])
    assert [matches(i) for i in ("test-1", "test-", "tmp-1", "tmp-12", "prod-1", "test-*tmp-1")] == [
        True, True, True, False, False, True]


def test_a_glob_and_a_regex_and_an_exact_id_together():
    matches = compile_suppressions([("glob", "lab-*"), ("regex", r"ci-\d+"), ("exact", "old-vm")])
    assert [matches(i) for i in ("lab-7", "ci-42", "old-vm", "ci-4x", "old-vm2", "xlab-7")] == [
        True, True, True, False, False, False]


@pytest.mark.parametrize("kind, pattern, inside, partial", [
    ("glob", "vm-*", "vm-1", ["xvm-1", "avm-"]),               # a glob must match from the first character
    ("glob", "*-test", "a-test", ["a-test2", "a-tests"]),      # ... and to the last
    ("glob", "vm-?", "vm-1", ["vm-12", "xvm-1"]),
    ("regex", r"vm-\d", "vm-1", ["vm-12", "avm-1", "vm-1\n"]),  # fullmatch: no "contains", no trailing newline
    ("regex", "a|b", "b", ["ab", "ba"]),                       # the alternation as a whole is anchored
    ("exact", "vm-1", "vm-1", ["vm-10", "xvm-1", "VM-1"]),
])
def test_a_rule_matches_whole_ids_never_part_of_one(kind, pattern, inside, partial):
    matches = compile_suppressions([(kind, pattern)])
    assert matches(inside)
    assert [i for i in partial if matches(i)] == []
    # the same answers when the rule shares the matcher with another (one RE2 set) and one by one
    together = SuppressionMatcher([(kind, pattern), ("glob", "zz*")])
    one_by_one = SuppressionMatcher([(kind, pattern), ("glob", "zz*")], set_max_mem=1)
    for matcher in (together, one_by_one):
        assert matcher(inside) and matcher("zz9")
        assert [i for i in partial if matcher(i)] == []


def test_no_rules_match_nothing():
    matches = compile_suppressions([])
    assert not matches("") and not matches("vm-1")


def test_a_glob_becomes_an_anchored_re2_pattern():
    assert glob_to_regex("vm-*") == "(?s:vm\\x{2D}.*)"
    assert glob_to_regex("a**b?") == "(?s:a.*b.)"
    assert glob_to_regex("[!a-c]x[") == "(?s:[^a-c]x\\x{5B})"


def test_the_same_rules_in_another_order_share_one_compiled_matcher():
    first = compile_suppressions([("glob", "a*"), ("regex", "b+")])
    assert compile_suppressions([("regex", "b+"), ("glob", "a*")]) is first


@pytest.mark.parametrize("kind, pattern, message", [
    ("wildcard", "x", "type must be one of"), ("exact", "", "must not be empty"), ("glob", " ", "must not be empty"),
    ("glob", "a[b", "unbalanced"), ("regex", "", "must not be empty"), ("regex", r"(a)\1", "not a valid regular"),
])
def test_a_suppression_that_cannot_be_saved(kind, pattern, message):
    with pytest.raises(ValueError, match=message):
        check_suppression(kind, pattern)


@pytest.mark.parametrize("kind, pattern", [("exact", "vm-1"), ("glob", "vm-[0-9]*"), ("regex", "vm-.*")])
def test_a_suppression_that_can_be_saved_is_returned_as_given(kind, pattern):
    assert check_suppression(kind, pattern) == pattern
