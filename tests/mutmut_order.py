"""A pytest plugin for `make mutate` (tests/mutate.py loads it with `-p tests.mutmut_order`): cheapest tests first.

mutmut runs each mutant's covering tests with `-x` in no particular order, and records only the call phase of
each test (not its fixtures: an app and emptied tables cost more than most calls). During mutmut's stats run this
plugin writes every test's whole duration (setup, call, teardown) to DURATIONS; when a mutant is under test it runs
the tests in ascending order of that duration, so a killed mutant stops at its first failure after the cheapest
tests rather than after whichever came first. Outside mutmut it does nothing.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

DURATIONS = Path("mutmut-durations.json")
_spent: dict[str, float] = defaultdict(float)


def _phase() -> str:
    return os.environ.get("MUTANT_UNDER_TEST", "")


def pytest_runtest_logreport(report) -> None:
    if _phase() == "stats":
        _spent[report.nodeid] += report.duration


def pytest_sessionfinish(session) -> None:
    if _phase() == "stats" and _spent:
        known = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
        DURATIONS.write_text(json.dumps({**known, **_spent}))


def pytest_collection_modifyitems(session, config, items) -> None:
    if "__mutmut_" not in _phase() or not DURATIONS.exists():
        return
    spent = json.loads(DURATIONS.read_text())
    items.sort(key=lambda item: spent.get(item.nodeid, spent.get(f"mutants/{item.nodeid}", 0.0)))
