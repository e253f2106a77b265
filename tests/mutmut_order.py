"""A pytest plugin for `make mutate` (tests/mutate.py loads it with `-p tests.mutmut_order`): likeliest killers first.

mutmut runs each mutant's covering tests with `-x` in no particular order, so a killed mutant costs every test run
before the one that fails. This plugin orders them: first the tests that have already killed mutants of the same
function (a test that catches one bug in a function tends to catch its neighbours), then the cheapest. mutmut times
only a test's call, not its fixtures (an app and emptied tables cost more than most calls), so during mutmut's stats
run the plugin writes each test's whole duration (setup, call, teardown) to DURATIONS; each failing test of a mutant
is appended to KILLS. Outside mutmut it does nothing.
"""
from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path

DURATIONS = Path("mutmut-durations.json")
KILLS = Path("mutmut-kills.txt")
_spent: dict[str, float] = defaultdict(float)


def _phase() -> str:
    return os.environ.get("MUTANT_UNDER_TEST", "")


def _function(mutant: str) -> str:
    """The mutated function of a mutant's name: 'billing.usage.x_quantize__mutmut_3' -> 'billing.usage.x_quantize'."""
    return mutant.rpartition("__mutmut_")[0]


def pytest_runtest_logreport(report) -> None:
    phase = _phase()
    if phase == "stats":
        _spent[report.nodeid] += report.duration
    elif "__mutmut_" in phase and report.failed:
        with KILLS.open("a") as kills:  # one short line per append: whole lines even with two children writing
            kills.write(f"{_function(phase)}\t{report.nodeid}\n")


def pytest_sessionfinish(session) -> None:
    if _phase() == "stats" and _spent:
        known = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
        DURATIONS.write_text(json.dumps({**known, **_spent}))


def pytest_collection_modifyitems(session, config, items) -> None:
    phase = _phase()
    if "__mutmut_" not in phase:
        return
    spent = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    function = _function(phase)
    kills: Counter = Counter()
    if KILLS.exists():
        for line in KILLS.read_text().splitlines():
            killed, _, nodeid = line.partition("\t")
            if killed == function:
                kills[nodeid] += 1
    items.sort(key=lambda item: (-kills[item.nodeid], spent.get(item.nodeid, 0.0)))
