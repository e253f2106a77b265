"""`make mutate`: mutmut over each rule module with its own test selection; not run by CI.

Each module runs in its own scratch copy of the repo (mutmut writes `mutants/` next to its config), with a
setup.cfg naming that one file to mutate and the tests that hold it. Prints killed / mutants per module and
the survivors' names (`cd <scratch dir> && mutmut show NAME` shows a diff). Usage:
`python tests/mutate.py [module ...]`, module as a path (billing/periods.py); no argument runs them all.

SQLite first. With MUTATE_POSTGRES_URL (a postgresql+psycopg:// URL) each module's SQLite survivors, and the mutants
no SQLite test reaches (PostgreSQL-only code), run again on PostgreSQL in a second scratch copy: CI runs the suite
on both backends, so a mutant either kills counts as killed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(os.environ.get("MUTATE_ROOT", Path(__file__).resolve().parent.parent))
SCRATCH = Path(os.environ.get("MUTATE_SCRATCH", "/tmp/meterdesk-mutate"))
NOT_CODE = {"tests", "bench", "migrations", "instance", "static", "templates", "node_modules"}
CODE = sorted(p.name for p in ROOT.iterdir() if not p.name.startswith(".") and p.name not in NOT_CODE
              and ((p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"))
ALSO_COPY = ["templates", "static", "migrations", "bench", "instance", "pytest.ini"]
SKIP_COPY = shutil.ignore_patterns(".venv", "mutants", "__pycache__", ".pytest_cache", ".hypothesis", ".git",
                                   "node_modules", "*.db", "*.sqlite*")

BILLING_RUN = ["tests/billing/test_billing_run.py", "tests/jobs/test_billing_jobs.py"]
MODULES: dict[str, list[str]] = {
    "billing/periods.py": ["tests/billing/test_periods.py", "tests/billing/test_projection_rules.py",
                           "tests/jobs/test_schedule.py", *BILLING_RUN],
    "billing/pricing.py": ["tests/billing/test_pricing.py", "tests/billing/test_projections.py",
                           "tests/billing/test_projection_rules.py", "tests/reports/test_reports_over_under.py",
                           *BILLING_RUN],
    "billing/projections.py": ["tests/billing/test_projections.py", "tests/billing/test_projection_rules.py",
                               "tests/jobs/test_projections_run.py"],
    "billing/usage.py": ["tests/billing/test_billing_usage.py", "tests/billing/test_usage_rules.py",
                         "tests/billing/test_reading_days.py", "tests/billing/test_time_weighted.py"],
    "billing/amounts.py": ["tests/billing/test_amounts.py"],
    "billing/binding.py": ["tests/billing/test_binding.py", "tests/billing/test_provisioning.py",
                           "tests/reports/test_reports_unbound.py"],
    "billing/run.py": [*BILLING_RUN, "tests/billing/test_time_weighted.py"],
    "billing/export.py": ["tests/billing/test_export_rules.py", "tests/billing/test_export_lines.py",
                          "tests/billing/test_export_names.py", "tests/jobs/test_billing_jobs.py"],
    "billing/provisioning.py": ["tests/billing/test_provisioning_rules.py", "tests/billing/test_provisioning.py"],
    "ingest/batch.py": ["tests/ingest/test_batch_rules.py", "tests/ingest/test_plain_items.py",
                        "tests/api/test_api_ingest.py",
                        "tests/ingest/test_ingest_strict_input.py", "tests/ingest/test_store.py"],
    "ingest/store.py": ["tests/ingest/test_store.py", "tests/ingest/test_last_seen_exact.py",
                        "tests/ingest/test_ingest_across_processes.py", "tests/ingest/test_batch_rules.py",
                        "tests/api/test_api_ingest.py", "tests/billing/test_archive.py",
                        "tests/billing/test_reading_days.py"],
    "ingest/suppressions.py": ["tests/ingest/test_suppressions_bounded.py", "tests/ingest/test_suppression_rules.py"],
    "api/keys.py": ["tests/api/test_api_keys.py", "tests/api/test_api_auth.py", "tests/api/test_api_key_display.py",
                    "tests/commands/test_cli.py"],
    "database/audit.py": ["tests/database/test_audit.py", "tests/database/test_audit_values.py"],
    "database/reading_days.py": ["tests/billing/test_reading_days.py"],
    "billing/adjustments.py": ["tests/billing/test_adjustments.py", "tests/billing/test_terms_properties.py"],
    "billing/trueups.py": ["tests/billing/test_trueups.py"],
    "billing/terms.py": ["tests/billing/test_terms.py", "tests/billing/test_terms_properties.py",
                         "tests/billing/test_trueups.py"],
    "billing/archive.py": ["tests/billing/test_archive.py"],
    "billing/time_weighted.py": ["tests/billing/test_time_weighted.py", "tests/billing/test_usage_rules.py",
                                 "tests/billing/test_billing_usage.py"],
    "billing/gaps.py": ["tests/billing/test_gaps_rules.py", "tests/views/test_time_weighted_pages.py"],
    "ingest/last_seen.py": ["tests/ingest/test_last_seen_exact.py"],
}
CHILDREN = os.environ.get("MUTATE_CHILDREN", "2")  # mutants tested at once (one per core)
# A mutant is stopped (and counted killed: it loops) after its tests' estimated time times this. mutmut's default, 15,
# stopped mutants that were only slow: its estimate leaves out fixtures, and a busy machine runs tests 4x slower.
TIMEOUT_MULTIPLIER = 40
KILLED = {1, 3}
# Each mutant's tests: one process (mutmut forks its own), likeliest killer first (tests/mutmut_order.py), no browser,
# the same hypothesis examples on every run (tests/conftest.py's "mutate" profile).
PYTEST_ARGS = ["-p", "no:xdist", "-p", "no:cacheprovider", "-p", "tests.mutmut_order", "-m", "not browser",
               "--hypothesis-profile=mutate"]


def _setup_cfg(module: str, tests: list[str]) -> str:
    lines = ["[mutmut]", "source_paths=", *[f"    {p}" for p in CODE], f"only_mutate={module}", "also_copy=",
             *[f"    {p}" for p in ALSO_COPY], "pytest_add_cli_args=",
             *[f"    {arg}" for arg in PYTEST_ARGS], f"timeout_multiplier={TIMEOUT_MULTIPLIER}",
             "pytest_add_cli_args_test_selection=",
             *[f"    {t}" for t in tests if (ROOT / t).exists()]]
    return "\n".join(lines) + "\n"


def _scores(work: Path, only: set[str] | None = None) -> tuple[Counter, list[str]]:
    """Counts by outcome and the names of the survivors, read from mutmut's .meta files (of `only`, if given)."""
    outcomes: Counter = Counter()
    survivors: list[str] = []
    for meta in (work / "mutants").rglob("*.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if only is not None and name not in only:
                continue
            outcome = ("killed" if code in KILLED else "survived" if code == 0
                       else "no tests" if code in (5, 33) else "timeout" if code in (24, -24, 36, 152, 255)
                       else "not checked" if code is None else f"other {code}")
            outcomes[outcome] += 1
            if outcome in ("survived", "no tests"):
                survivors.append(name)
    return outcomes, sorted(survivors)


def mutate(module: str, mutmut: str, database_url: str = "", names: list[str] | None = None) -> dict:
    """Run mutmut on one module in its scratch copy (on SQLite, or on `database_url`, only the mutants `names`);
    its counts and survivors."""
    work = SCRATCH / (module.replace("/", "_").removesuffix(".py") + ("-postgresql" if database_url else ""))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in CODE + ALSO_COPY + ["tests"]:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=SKIP_COPY)
        elif source.exists():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / name)
    (work / "setup.cfg").write_text(_setup_cfg(module, MODULES[module]))
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    if database_url:
        env["DATABASE_URL"] = database_url
    started = time.monotonic()
    with open(work / "mutmut.log", "w") as log:
        subprocess.run([mutmut, "run", "--max-children", CHILDREN, *(names or [])], cwd=work, env=env, stdout=log,
                       stderr=subprocess.STDOUT, check=False)
    outcomes, survivors = _scores(work, set(names) if names else None)
    total = sum(outcomes.values())
    return {"module": module, "backend": "postgresql" if database_url else "sqlite", "killed": outcomes["killed"],
            "total": total, "outcomes": dict(outcomes), "survivors": survivors,
            "seconds": round(time.monotonic() - started), "work": str(work)}


def _report(result: dict) -> None:
    print(f"{result['module']} ({result['backend']}): {result['killed']}/{result['total']} killed "
          f"{result['outcomes']} in {result['seconds']}s ({result['work']})", flush=True)
    for name in result["survivors"]:
        print(f"    survived: {name}", flush=True)
    (SCRATCH / "results").mkdir(exist_ok=True)
    slug = result["module"].replace("/", "_")
    (SCRATCH / "results" / f"{slug}-{result['backend']}.json").write_text(json.dumps(result, indent=1))


def main(argv: list[str]) -> int:
    """Mutate the named modules (all by default) one after another and print a line per module; with
    MUTATE_POSTGRES_URL set, run each module's SQLite survivors again on PostgreSQL (its own code paths there)."""
    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or "mutmut"
    postgres = os.environ.get("MUTATE_POSTGRES_URL", "")
    modules = argv or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        print(f"unknown modules {unknown}; known: {list(MODULES)}")
        return 2
    started = time.monotonic()
    for module in modules:
        result = mutate(module, mutmut)
        _report(result)
        if postgres and result["survivors"]:
            _report(mutate(module, mutmut, postgres, result["survivors"]))
    print(f"all in {round(time.monotonic() - started)}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
