"""Ingest suppressions: which asset ids are dropped at ingest (no asset row, no reading).

`exact` compares the whole asset id, `glob` is an fnmatch pattern (case-sensitive) on the whole id,
`regex` must match the whole id (fullmatch; write `.*` for "contains").

Globs and regexes run on RE2 (google-re2), whose matching time is linear in the length of the id whatever the
pattern: no pattern can stall a worker. RE2 has no backtracking, so it refuses backreferences, lookarounds,
possessive and atomic groups, conditionals and `(?x)`; such a pattern is refused when it is saved
(`check_regex`). One stored before that rule cannot match anything: it is skipped with a warning.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import lru_cache

import re2
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import SUPPRESSION_TYPES, Suppression

Rule = tuple[str, str]  # (type, pattern)

log = logging.getLogger(__name__)

SET_MAX_MEM = 256 << 20  # bytes RE2 may use for all the patterns together (used only as needed)
ALWAYS = r"(?s:.*)"  # index 0 of every set: a result without it means RE2's DFA gave up, not "no match"


def re2_options(max_mem: int | None = None) -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    if max_mem is not None:
        options.max_mem = max_mem
    return options


def compile_regex(pattern: str) -> re2._Regexp:
    """`pattern` compiled by RE2; raises ValueError with RE2's reason when RE2 refuses it."""
    try:
        return re2.compile(pattern, re2_options())
    except UnicodeError:
        raise ValueError("the pattern is not valid text (a lone surrogate)") from None
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(str(reason)) from None


def _literal(char: str) -> str:
    """One character as an RE2 literal, valid inside and outside a character class."""
    return char if char.isascii() and char.isalnum() else f"\\x{{{ord(char):X}}}"


def _bracket(pattern: str, start: int, end: int) -> str:
    """The RE2 class for the glob bracket `pattern[start:end]` (without its brackets), as `fnmatch` reads it:
    a leading `!` negates, `a-z` is a range, a range running backwards is dropped, everything else is literal."""
    negate = start < end and pattern[start] == "!"
    if negate:
        start += 1
    items: list[str] = []
    i = start
    while i < end:
        if i + 2 < end and pattern[i + 1] == "-":
            low, high = pattern[i], pattern[i + 2]
            if low <= high:
                items.append(f"{_literal(low)}-{_literal(high)}")
            i += 3
        else:
            items.append(_literal(pattern[i]))
            i += 1
    if not items:
        return "[\\x00-\\x{10FFFF}]" if negate else "[^\\x00-\\x{10FFFF}]"
    return f"[{'^' if negate else ''}{''.join(items)}]"


def glob_to_regex(pattern: str) -> str:
    """An fnmatch glob as an RE2 regex for the whole id: `*` any run, `?` one character, `[…]`/`[!…]` a class;
    a `[` without its `]` is a literal `[`. `fnmatch.fnmatchcase` and this regex agree on every id."""
    parts: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            if not parts or parts[-1] != ".*":
                parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                parts.append(_literal("["))
            else:
                parts.append(_bracket(pattern, i, j))
                i = j + 1
        else:
            parts.append(_literal(char))
    return f"(?s:{''.join(parts)})"


class SuppressionMatcher:
    """Whether an asset id is suppressed: exact ids by set lookup, every glob and regex in one RE2 set."""

    def __init__(self, rules: Iterable[Rule], set_max_mem: int = SET_MAX_MEM) -> None:
        rules = list(rules)
        self.exact = frozenset(pattern for kind, pattern in rules if kind == "exact")
        sources: list[str] = []
        self.patterns: list[re2._Regexp] = []
        for kind, pattern in rules:
            if kind not in ("glob", "regex"):
                continue
            source = glob_to_regex(pattern) if kind == "glob" else pattern
            try:
                self.patterns.append(compile_regex(source))
            except ValueError as exc:
                log.warning("%s suppression %r skipped (it matches nothing): RE2 refuses it: %s", kind, pattern, exc)
                continue
            sources.append(source)
        self._set = self._compile_set(sources, set_max_mem) if sources else None

    @staticmethod
    def _compile_set(sources: list[str], max_mem: int) -> re2.Set | None:
        patterns = re2.Set.FullMatchSet(re2_options(max_mem))
        try:
            for source in (ALWAYS, *sources):
                patterns.Add(source)
            patterns.Compile()
        except re2.error:
            log.warning("the %d suppression patterns do not fit in one RE2 set; matching them one by one",
                        len(sources))
            return None
        return patterns

    def __call__(self, external_id: str) -> bool:
        if external_id in self.exact:
            return True
        if not self.patterns:
            return False
        text = external_id.encode("utf-8", "surrogatepass")
        if self._set is not None:
            hits = self._set.Match(text)
            if hits:
                return len(hits) > 1
        return any(pattern.fullmatch(text) is not None for pattern in self.patterns)


@lru_cache(maxsize=32)
def _compile(rules: tuple[Rule, ...]) -> SuppressionMatcher:
    return SuppressionMatcher(rules)


def compile_suppressions(rules: Iterable[Rule]) -> Callable[[str], bool]:
    """One matcher for a set of rules, compiled once (and reused while the rules are unchanged)."""
    return _compile(tuple(sorted((str(kind), str(pattern)) for kind, pattern in rules)))


def load_matcher(session: Session) -> Callable[[str], bool]:
    """The matcher for the suppression rules currently in the database (one query)."""
    return compile_suppressions(session.execute(select(Suppression.type, Suppression.pattern)).all())


# ---- the rules a suppression must pass to be saved (grid and API) ------------------------------------------------

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
