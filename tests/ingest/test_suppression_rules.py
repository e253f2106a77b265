"""Suppression matching, rule by rule: each rule matches whole ids only, and several rules together match the union
of what each matches alone."""
from __future__ import annotations

import fnmatch
import logging

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


# ---- glob brackets, as fnmatch reads them ------------------------------------------------------------------------

@pytest.mark.parametrize("glob, matched, unmatched", [
    ("x[a-]", ["xa", "x-"], ["xb", "x]"]),              # a '-' before the ']' is a literal, not a range
    ("x[a-a]", ["xa"], ["xb", "x-"]),                  # a range of one character
    ("x[a-cz]", ["xa", "xb", "xc", "xz"], ["xd", "x-"]),  # a range, then a character
    ("x[ab]", ["xa", "xb"], ["xc", "xX", "x^"]),          # every character of the class, nothing else
    ("x[z-a]", [], ["xa", "xq", "xz", "x"]),            # a backwards range is dropped: an empty class matches none
    ("x[!z-a]", ["xa", "xq", "x]"], ["x", "xab"]),       # ... and its negation any one character
    ("[!]]", ["b", "!"], ["]", "bb"]),                 # after '!', a ']' is a member, not the end
    ("[]]", ["]"], ["a", "]]"]),                       # a ']' first in the class is a member
    ("x[]]", ["x]"], ["x", "xa", "x]]"]),
    ("x[!]a]", ["xb", "x!"], ["x]", "xa", "xb]"]),
])
def test_glob_brackets_match_what_fnmatch_matches(glob, matched, unmatched):
    matches = SuppressionMatcher([("glob", glob)])  # compiled here, not taken from compile_suppressions' cache
    for external_id in matched:
        assert matches(external_id) and fnmatch.fnmatchcase(external_id, glob), external_id
    for external_id in unmatched:
        assert not matches(external_id) and not fnmatch.fnmatchcase(external_id, glob), external_id


def test_an_id_with_a_lone_surrogate_is_matched_not_an_error():
    # JSON may carry "\ud800": a str with a lone surrogate, which strict UTF-8 cannot encode
    matches = SuppressionMatcher([("glob", "vm-*"), ("regex", "lab-.*")])
    assert matches("vm-\ud800") and matches("lab-\udfff") and not matches("db-\ud800")


# ---- the messages a refusal and a skipped rule carry ------------------------------------------------------------

RE2_REASON = "invalid escape sequence: \\1"


@pytest.mark.parametrize("kind, pattern, message", [
    ("glob", "", "pattern must not be empty"),
    ("glob", "   ", "pattern must not be empty"),
    ("glob", "vm-[", "glob has an unbalanced '[' or ']'"),
    ("regex", "", "pattern must not be empty"),
    ("regex", r"(a)\1", f"not a valid regular expression for RE2: {RE2_REASON} (RE2 matches in linear time, so it "
                         "has no backreferences, lookarounds, possessive or atomic groups)"),
    ("regex", "a\ud800", "not a valid regular expression for RE2: the pattern is not valid text (a lone surrogate) "
                         "(RE2 matches in linear time, so it has no backreferences, lookarounds, possessive or atomic "
                         "groups)"),
    ("exact", "", "pattern must not be empty"),
    ("wildcard", "vm-*", "type must be one of exact, glob, regex"),
])
def test_each_refusal_says_why(kind, pattern, message):
    with pytest.raises(ValueError) as refused:
        check_suppression(kind, pattern)
    assert str(refused.value) == message


def test_a_refused_pattern_writes_nothing_to_the_workers_stderr(capfd):
    with pytest.raises(ValueError):
        check_suppression("regex", r"(a)\1")
    assert SuppressionMatcher([("regex", r"(b)\1")])("bb") is False
    assert capfd.readouterr().err == ""


def test_a_rule_re2_refuses_is_skipped_with_its_reason_and_the_rules_after_it_still_count(caplog):
    with caplog.at_level(logging.WARNING, logger="ingest.suppressions"):
        matches = SuppressionMatcher([("regex", r"(dup)-\1"), ("glob", "lab-*"), ("regex", r"ci-\d+")])
    assert [matches(i) for i in ("lab-1", "ci-7", "dup-dup")] == [True, True, False]
    assert [r.getMessage() for r in caplog.records] == [
        f"regex suppression '(dup)-\\\\1' skipped (it matches nothing): RE2 refuses it: {RE2_REASON}"]


def test_rules_too_many_for_one_set_say_so_once(caplog):
    with caplog.at_level(logging.WARNING, logger="ingest.suppressions"):
        matches = SuppressionMatcher([("glob", "vm-*"), ("regex", r"lab-\d+")], set_max_mem=1 << 10)
    assert matches("vm-1") and matches("lab-2") and not matches("lab-x")
    assert [r.getMessage() for r in caplog.records] == [
        "the 2 suppression patterns do not fit in one RE2 set; matching them one by one"]
