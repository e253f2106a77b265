"""`make mutate`: mutmut over each rule module with its own test selection; not run by CI.

Each module runs in its own scratch copy of the repo (mutmut writes `mutants/` next to its config), with a
setup.cfg naming that one file to mutate and the tests that hold it. Prints killed / mutants per module and
the survivors' names (`cd <scratch dir> && mutmut show NAME` shows a diff). Usage:
`python tests/mutate.py [module ...]`, module as a path (billing/periods.py); no argument runs them all.

SQLite first. With MUTATE_POSTGRES_URL (a postgresql+psycopg:// URL) each module's SQLite survivors, and the mutants
no SQLite test reaches (PostgreSQL-only code), run again on PostgreSQL in a second scratch copy: CI runs the suite
on both backends, so a mutant either kills counts as killed.

Incremental: scratch copies are kept, and each module's SQLite verdicts are recorded in tests/mutation_results
(function hashes and the tests' digest with them), so a run re-tests only what changed; MUTATE_FRESH=1 runs all.
"""
from __future__ import annotations

import ast
import filecmp
import hashlib
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
                        "tests/billing/test_reading_days.py", "tests/database/test_driver.py"],
    "ingest/suppressions.py": ["tests/ingest/test_suppressions_bounded.py", "tests/ingest/test_suppression_rules.py"],
    "api/keys.py": ["tests/api/test_api_keys.py", "tests/api/test_api_auth.py", "tests/api/test_api_key_display.py",
                    "tests/commands/test_cli.py"],
    "database/audit.py": ["tests/database/test_audit.py", "tests/database/test_audit_values.py"],
    "database/reading_days.py": ["tests/billing/test_reading_days.py"],
    "billing/adjustments.py": ["tests/billing/test_adjustments.py", "tests/billing/test_terms_properties.py"],
    "billing/trueups.py": ["tests/billing/test_trueups.py"],
    "billing/terms.py": ["tests/billing/test_terms.py", "tests/billing/test_terms_properties.py",
                         "tests/billing/test_trueups.py"],
    "billing/archive.py": ["tests/billing/test_archive.py", "tests/billing/test_archive_files.py"],
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
# pytest's unraisable/thread exception plugins end each session with gc.collect() five times: ~0.7 s per mutant.
PYTEST_ARGS = ["-p", "no:xdist", "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-p", "no:threadexception",
               "-p", "tests.mutmut_order", "-m", "not browser", "--hypothesis-profile=mutate"]
SURVIVED = {0, 5, 33}  # survived, no tests collected, no test covers it: run again once the tests change
# Each module's SQLite verdicts of its last run, with its functions' hashes, committed with the code: a new scratch
# copy starts from them, so only mutants of functions changed since (and survivors, if the tests changed) run again.
RECORDED = ROOT / "tests" / "mutation_results"
NOT_TESTS = {"mutate.py", "mutmut_order.py"}  # tools of `make mutate`, not tests: they change no verdict


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


def _copy_changed(source: Path, target: Path) -> bool:
    """Copy `source` to `target` unless it holds the same bytes already (whether it copied): an unchanged file keeps
    its old mtime, so mutmut keeps its mutants and results (it mutates again only a file newer than its mutants, and
    re-runs only the functions whose text changed)."""
    if target.exists() and filecmp.cmp(source, target, shallow=False):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    return True


def _sync(work: Path) -> None:
    """Bring the scratch copy up to the repo: changed files copied, files gone from the repo removed."""
    for name in CODE + ALSO_COPY + ["tests"]:
        source = ROOT / name
        if source.is_file():
            _copy_changed(source, work / name)
            continue
        if not source.is_dir():
            continue
        wanted = set()
        for directory, dirs, files in os.walk(source):
            here = Path(directory)
            dirs[:] = [d for d in dirs if d not in SKIP_COPY(directory, dirs)]
            for file in set(files) - SKIP_COPY(directory, files):
                relative = (here / file).relative_to(ROOT)
                wanted.add(relative)
                if _copy_changed(here / file, work / relative) and name in CODE and relative.suffix != ".py":
                    (work / "mutants" / relative).unlink(missing_ok=True)  # mutmut copies a file it lacks, only
        for stale in [p for p in (work / name).rglob("*") if p.is_file() and p.relative_to(work) not in wanted
                      and "__pycache__" not in p.parts]:
            stale.unlink()


def _test_files(tests: list[str]) -> set[Path]:
    """The selection's files, the tests/*.py helpers, and every tests module they import (at any depth)."""
    found: set[Path] = set()
    todo = [ROOT / t for t in tests] + sorted((ROOT / "tests").glob("*.py"))
    while todo:
        path = todo.pop()
        if path in found or not path.exists() or path.name in NOT_TESTS:
            continue
        found.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [
                alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            todo += [ROOT / (name.replace(".", "/") + ".py") for name in names if name.startswith("tests.")]
    return found


def _tests_digest(tests: list[str]) -> str:
    """What the module's verdicts depend on besides its own code: its test files and the test code they use."""
    digest = hashlib.sha256()
    for path in sorted(_test_files(tests)):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _forget_survivors(codes: dict[str, int | None]) -> int:
    """Set the survivors' verdicts to None in place (the tests changed: they may be killed now); how many."""
    again = [name for name, code in codes.items() if code in SURVIVED]
    for name in again:
        codes[name] = None
    return len(again)


def _rerun_survivors(work: Path) -> int:
    """Forget the survivors' verdicts in the scratch copy's results; how many."""
    count = 0
    for meta in (work / "mutants").rglob("*.meta"):
        data = json.loads(meta.read_text())
        if forgotten := _forget_survivors(data["exit_code_by_key"]):
            meta.write_text(json.dumps(data, indent=4))
        count += forgotten
    return count


def _slug(module: str) -> str:
    """billing/usage.py -> billing_usage: the name of its scratch copy and of its recorded verdicts."""
    return module.replace("/", "_").removesuffix(".py")


def _recorded(module: str) -> Path:
    return RECORDED / f"{_slug(module)}.json"


def _seed(work: Path, module: str, digest: str) -> int:
    """Give a scratch copy without results the recorded verdicts (mutmut keeps those of functions whose hash is
    unchanged; survivors are dropped if the tests changed since); how many it took."""
    meta, record = work / "mutants" / f"{module}.meta", _recorded(module)
    if meta.exists() or not record.exists():
        return 0
    data = json.loads(record.read_text())
    prefix = module.removesuffix(".py").replace("/", ".")
    codes = {f"{prefix}.{function}__mutmut_{number}": code for function, entry in data["functions"].items()
             for number, code in enumerate(entry["verdicts"], start=1)}
    if data["tests_sha256"] != digest:
        _forget_survivors(codes)
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"exit_code_by_key": codes, "type_check_error_by_key": {}, "durations_by_key": {},
                                "hash_by_function_name": {f: e["hash"] for f, e in data["functions"].items()},
                                "estimated_durations_by_key": {}}, indent=4))
    return sum(code is not None for code in codes.values())


def _record(work: Path, module: str, digest: str) -> None:
    """Write this run's verdicts to tests/mutation_results (commit them with the change they measured)."""
    meta = json.loads((work / "mutants" / f"{module}.meta").read_text())
    verdicts: dict[str, dict[int, int | None]] = {}
    for name, code in meta["exit_code_by_key"].items():
        function, _, number = name.rpartition(".")[2].rpartition("__mutmut_")
        verdicts.setdefault(function, {})[int(number)] = code
    functions = {function: {"hash": meta["hash_by_function_name"][function],
                            "verdicts": [verdicts[function][n] for n in range(1, len(verdicts[function]) + 1)]}
                 for function in sorted(verdicts)}
    RECORDED.mkdir(exist_ok=True)
    lines = [f"  {json.dumps(function)}: {json.dumps(entry)}" for function, entry in functions.items()]
    _recorded(module).write_text(f'{{"tests_sha256": "{digest}", "functions": {{\n' + ",\n".join(lines) + "\n}}\n")


def mutate(module: str, mutmut: str, database_url: str = "", names: list[str] | None = None) -> dict:
    """Run mutmut on one module in its scratch copy (on SQLite, or on `database_url`, only the mutants `names`);
    its counts and survivors. The copy is kept between runs: only mutants of changed functions run again, and the
    survivors too when the tests changed; a new copy starts from the recorded verdicts; MUTATE_FRESH=1 from
    nothing."""
    work = SCRATCH / (_slug(module) + ("-postgresql" if database_url else ""))
    fresh = os.environ.get("MUTATE_FRESH") == "1"
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    _sync(work)
    _copy_changed_text(work / "setup.cfg", _setup_cfg(module, MODULES[module]))
    digest_file, digest = work / "tests.sha256", _tests_digest(MODULES[module])
    rerun = _rerun_survivors(work) if digest_file.exists() and digest_file.read_text() != digest else 0
    seeded = 0 if database_url or fresh else _seed(work, module, digest)
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    template = work / "schema-template.db"
    template.unlink(missing_ok=True)  # built again by this run's first session: the models may have changed
    if database_url:
        env["DATABASE_URL"] = database_url
    else:
        env["METERDESK_SCHEMA_TEMPLATE"] = str(template)
    started = time.monotonic()
    with open(work / "mutmut.log", "w") as log:
        subprocess.run([mutmut, "run", "--max-children", CHILDREN, *(names or [])], cwd=work, env=env, stdout=log,
                       stderr=subprocess.STDOUT, check=False)
    digest_file.write_text(digest)
    if not database_url and not names and (work / "mutants" / f"{module}.meta").exists():
        _record(work, module, digest)
    outcomes, survivors = _scores(work, set(names) if names else None)
    total = sum(outcomes.values())
    return {"module": module, "backend": "postgresql" if database_url else "sqlite", "killed": outcomes["killed"],
            "total": total, "outcomes": dict(outcomes), "survivors": survivors, "rerun_survivors": rerun,
            "recorded_verdicts_used": seeded, "seconds": round(time.monotonic() - started), "work": str(work)}


def _copy_changed_text(target: Path, text: str) -> None:
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


def _report(result: dict) -> None:
    again = f", {result['rerun_survivors']} survivors run again (tests changed)" if result["rerun_survivors"] else ""
    if result.get("recorded_verdicts_used"):
        again += f", {result['recorded_verdicts_used']} verdicts taken from {_recorded(result['module']).name}"
    print(f"{result['module']} ({result['backend']}): {result['killed']}/{result['total']} killed "
          f"{result['outcomes']} in {result['seconds']}s{again} ({result['work']})", flush=True)
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
