"""Ingest suppressions: which asset ids are dropped at ingest (no asset row, no reading).

`exact` compares the whole asset id, `glob` is an fnmatch pattern (case-sensitive) on the whole id,
`regex` must match the whole id (Python `re.fullmatch`; write `.*` for "contains").
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from functools import lru_cache

Rule = tuple[str, str]  # (type, pattern)


@lru_cache(maxsize=32)
def _compile(rules: tuple[Rule, ...]) -> Callable[[str], bool]:
    exact = frozenset(pattern for kind, pattern in rules if kind == "exact")
    globs = [fnmatch.translate(pattern) for kind, pattern in rules if kind == "glob"]
    glob = re.compile("|".join(f"(?:{g})" for g in globs)) if globs else None
    regexes = []
    for kind, pattern in rules:
        if kind == "regex":
            try:
                regexes.append(re.compile(pattern))
            except re.error:
                continue

    def matches(external_id: str) -> bool:
        if external_id in exact:
            return True
        if glob is not None and glob.match(external_id) is not None:
            return True
        return any(rx.fullmatch(external_id) is not None for rx in regexes)

    return matches


def compile_suppressions(rules: Iterable[Rule]) -> Callable[[str], bool]:
    """One matcher for a set of rules, compiled once (and reused while the rules are unchanged)."""
    return _compile(tuple(sorted((str(kind), str(pattern)) for kind, pattern in rules)))


def load_matcher(session) -> Callable[[str], bool]:
    """The matcher for the suppression rules currently in the database (one query)."""
    from sqlalchemy import select

    from models import Suppression

    return compile_suppressions(session.execute(select(Suppression.type, Suppression.pattern)).all())
