"""Billing benchmark: 5,000 assets in 500 buckets, 2,000 readings each in one period (10M readings, all seven
aggregations, time_weighted included).

    python bench/billing.py [--small | --readings 2000] [--assets 5000] [--buckets 500] [--keep] [--no-naive]
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python bench/billing.py --small

`--small` is 1,000 readings per asset (5M). Prints, in the same run, the billing run (bill_period) and its floor:
ONE `SELECT count(*), sum(value)` scan of the month's readings (issue 13); billing first from the readings alone, then
once the nightly job has sealed the period's days but its last (database/reading_days.py), the figure that counts. Each is run twice in fresh
subprocesses (floor, bill, floor, bill) and the faster run counts (warm cache for both). Then the
billing/floor time ratio (goal <= 1.5x) and, unless --no-naive, a naive baseline (readings loaded as ORM
objects and aggregated in Python, tests.reference, on a 10% sample of the buckets) with billing/naive
throughput (goal >= 15x); peak memory is the maxrss of the subprocess (goal < 300 MB). The machine's load
averages (os.getloadavg, as `uptime` shows them) are printed beside the figures: on a shared machine they say how
far to trust them. PostgreSQL runs in its own schema `bench_billing`; SQLite in a temp file.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

PERIOD = datetime(2026, 10, 1, tzinfo=timezone.utc)
PERIOD_END = datetime(2026, 11, 1, tzinfo=timezone.utc)
AGGREGATIONS = ("sum", "max", "avg", "last", "p95", "count", "time_weighted")
SCHEMA = "bench_billing"


def make_engine(url: str) -> sa.Engine:
    if url.startswith("postgresql"):
        separator = "&" if "?" in url else "?"
        return sa.create_engine(f"{url}{separator}options=-csearch_path%3D{SCHEMA}")
    engine = sa.create_engine(url)

    @event.listens_for(engine, "connect")
    def pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()

    return engine


def generate(url: str, assets: int, buckets: int, readings: int) -> None:
    """A fresh schema and the data, generated inside the database (recursive CTE / generate_series)."""
    import models  # noqa: F401  (registers the tables)
    from database import partitions, triggers  # noqa: F401  (and readings' DEFAULT partition, the line triggers)
    from extensions import db

    if url.startswith("postgresql"):
        admin = sa.create_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
        admin.dispose()
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(sa.make_url(url).database + suffix).unlink(missing_ok=True)
    engine = make_engine(url)
    db.metadata.create_all(engine)
    postgres = engine.dialect.name == "postgresql"
    per_bucket = max(1, assets // buckets)
    step_seconds = max(1, int((PERIOD_END - PERIOD).total_seconds() // (readings + 1)))
    from models import Asset, Bucket, BucketTerm, Client, UnitType, bucket_assets

    if postgres:  # readings are partitioned by month there: the period's partition first
        from database.partitions import create_partitions

        with Session(engine) as session:
            create_partitions(session, [PERIOD])
    with engine.begin() as conn:
        conn.execute(sa.insert(Client.__table__), [{"id": 1, "name": "Bench", "created_at": PERIOD}])
        conn.execute(sa.insert(UnitType.__table__), [
            {"id": i + 1, "name": f"u-{agg}", "aggregation": agg, "base_price": 1, "overage_price": 2}
            for i, agg in enumerate(AGGREGATIONS)])
        conn.execute(sa.insert(Bucket.__table__), [
            {"id": b + 1, "client_id": 1, "name": f"bucket-{b}", "unit_type_id": b % len(AGGREGATIONS) + 1,
             "source_type": "bench", "aggregation": AGGREGATIONS[b % len(AGGREGATIONS)], "created_at": PERIOD}
            for b in range(buckets)])
        conn.execute(sa.insert(BucketTerm.__table__), [
            {"bucket_id": b + 1, "effective_from": PERIOD, "commit": 1000, "base_price": 1, "overage_price": 2,
             "note": "", "created_by": "bench", "created_at": PERIOD} for b in range(buckets)])
        conn.execute(sa.insert(Asset.__table__), [
            {"id": a + 1, "external_id": f"asset-{a}", "source_type": "bench", "name": f"asset-{a}", "client_id": 1,
             "acknowledged": True, "created_at": PERIOD} for a in range(assets)])
        conn.execute(sa.insert(bucket_assets), [
            {"bucket_id": min(a // per_bucket, buckets - 1) + 1, "asset_id": a + 1} for a in range(assets)])
    chunk = 500
    for first in range(0, assets, chunk):
        with engine.begin() as conn:
            if postgres:
                conn.execute(sa.text(
                    "INSERT INTO readings (asset_id, unit_type_id, ts, value, received_at) "
                    "SELECT ba.asset_id, b.unit_type_id, :start + make_interval(secs => n * :step), "
                    "(random() * 100000000)::bigint, :start "
                    "FROM bucket_assets ba JOIN buckets b ON b.id = ba.bucket_id "
                    "CROSS JOIN generate_series(1, :n) AS n WHERE ba.asset_id > :lo AND ba.asset_id <= :hi"),
                    {"start": PERIOD, "step": step_seconds, "n": readings, "lo": first, "hi": first + chunk})
            else:
                conn.execute(sa.text(
                    "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :n) "
                    "INSERT INTO readings (asset_id, unit_type_id, ts, value, received_at) "
                    "SELECT ba.asset_id, b.unit_type_id, "
                    "datetime('2026-10-01 00:00:00', '+' || (n * :step) || ' seconds') || '.000000', "
                    "abs(random()) % 100000000, '2026-10-01 00:00:00.000000' "
                    "FROM bucket_assets ba JOIN buckets b ON b.id = ba.bucket_id CROSS JOIN seq "
                    "WHERE ba.asset_id > :lo AND ba.asset_id <= :hi"),
                    {"step": step_seconds, "n": readings, "lo": first, "hi": first + chunk})
        print(f"  generated readings for {min(first + chunk, assets)}/{assets} assets", file=sys.stderr, flush=True)
    # statistics, and (PostgreSQL) the visibility map billing's index-only scans need: what autovacuum does to a
    # month that has stopped growing (insert-triggered since PostgreSQL 13)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE" if postgres else "ANALYZE"))
    engine.dispose()


def phase_bill(session: Session) -> int:
    from billing.run import bill_period

    bill_period(session, PERIOD)
    return session.scalar(sa.text("SELECT count(*) FROM billing_readings"))


def phase_seal(session: Session) -> int:
    """What the nightly job has done by billing time: every day of the period sealed but its last (database/
    reading_days.py), so billing adds up day rows and reads raw readings for the last day, p95, last and
    time-weighted."""
    from database.reading_days import DAY, seal_days

    return seal_days(session, PERIOD_END - DAY)


def phase_floor(session: Session) -> int:
    """The floor (issue 13): one `SELECT count(*), sum(value)` scan of the month's readings.

    On SQLite the scan is forced (NOT INDEXED): left alone, the planner skip-scans ix_readings_unit_ts with one table
    lookup per reading, ~10x slower than reading the table (the bench's table holds just the month)."""
    postgres = session.bind.dialect.name == "postgresql"
    window = ({"s": PERIOD, "e": PERIOD_END} if postgres else
              {"s": "2026-10-01 00:00:00.000000", "e": "2026-11-01 00:00:00.000000"})
    count, _ = session.execute(sa.text(
        f"SELECT count(*), sum(value) FROM readings{'' if postgres else ' NOT INDEXED'} "
        "WHERE ts >= :s AND ts < :e"), window).one()
    return int(count)


def phase_naive(session: Session, sample_buckets: int) -> int:
    """Readings loaded as ORM objects and aggregated in Python (tests.reference) for the first sample buckets."""
    from tests.reference import reference_usages

    usages = reference_usages(session, PERIOD, PERIOD_END, list(range(1, sample_buckets + 1)))
    return len(usages)


def run_phase(args: argparse.Namespace) -> None:
    """Child process: run one phase, print {"seconds", "result"} as JSON."""
    import models  # noqa: F401

    engine = make_engine(args.url)
    with Session(engine) as session:
        started = time.perf_counter()
        if args.phase == "bill":
            result = phase_bill(session)
        elif args.phase == "seal":
            result = phase_seal(session)
        elif args.phase == "floor":
            result = phase_floor(session)
        else:
            result = phase_naive(session, args.sample_buckets)
        seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "result": result}))


def child(url: str, phase: str, sample_buckets: int = 0) -> tuple[float, float, int]:
    """Run a phase in a subprocess; (seconds, peak RSS in MB, result)."""
    proc = subprocess.Popen([sys.executable, __file__, "--phase", phase, "--url", url,
                             "--sample-buckets", str(sample_buckets)], stdout=subprocess.PIPE)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"phase {phase} failed ({proc.returncode})")
    data = json.loads(out.decode().strip().splitlines()[-1])
    return data["seconds"], usage.ru_maxrss / 1024, data["result"]


def load() -> str:
    """The machine's 1, 5 and 15 minute load averages, as `uptime` prints them."""
    return "load average: " + ", ".join(f"{value:.2f}" for value in os.getloadavg())


def best_of_two(url: str, first: str, second: str) -> dict[str, tuple[float, float, int]]:
    """Run the two phases alternately, twice each (first, second, first, second); keep each one's faster run."""
    runs: dict[str, list[tuple[float, float, int]]] = {first: [], second: []}
    for _ in range(2):
        for phase in (first, second):
            runs[phase].append(child(url, phase))
    return {phase: min(results) for phase, results in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=5000)
    parser.add_argument("--buckets", type=int, default=500)
    parser.add_argument("--readings", type=int, default=2000, help="readings per asset in the period")
    parser.add_argument("--small", action="store_true", help="1,000 readings per asset (5M with 5,000 assets)")
    parser.add_argument("--sample", type=float, default=0.1, help="share of buckets for the naive baseline")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument("--keep", action="store_true", help="reuse existing data (same sizes) instead of generating")
    parser.add_argument("--phase", choices=("bill", "floor", "naive", "seal"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--sample-buckets", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        run_phase(args)
        return
    if args.small:
        args.readings = 1000
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{Path(tempfile.gettempdir()) / 'meterdesk-bench.db'}"
    total = args.assets * args.readings
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    print(f"backend {backend}: {args.assets} assets, {args.buckets} buckets, {args.readings} readings each = "
          f"{total:,} readings; {os.cpu_count()} cores, {load()}")
    if not args.keep:
        started = time.perf_counter()
        generate(url, args.assets, args.buckets, args.readings)
        print(f"generated in {time.perf_counter() - started:.1f} s")
    before = load()
    raw = best_of_two(url, "floor", "bill") if not args.keep else None
    seal_s, _, days = child(url, "seal")
    print(f"nightly seal: {days} days in {seal_s:.2f} s (every day of the period but its last; ingest waits for "
          f"one day at a time, {seal_s / max(days, 1):.2f} s)")
    best = best_of_two(url, "floor", "bill")
    floor_s, floor_mb, counted = best["floor"]
    bill_s, bill_mb, lines = best["bill"]
    if raw:
        raw_s, raw_mb, _ = raw["bill"]
        print(f"billing, from readings alone (no day sealed): {raw_s:8.2f} s = {raw_s / raw['floor'][0]:.2f}x its "
              f"floor  peak {raw_mb:6.0f} MB")
    print(f"billing   : {bill_s:8.2f} s  {total / bill_s:12,.0f} readings/s  peak {bill_mb:6.0f} MB  ({lines} lines; "
          "sealed days)")
    print(f"count+sum : {floor_s:8.2f} s  {total / floor_s:12,.0f} readings/s  peak {floor_mb:6.0f} MB  "
          f"({counted:,} readings: the floor)")
    print(f"billing / floor time: {bill_s / floor_s:.2f}x (goal <= 1.5x)  peak memory {bill_mb:.0f} MB "
          f"(goal < 300 MB)  [{before} before, {load()} after]")
    if args.no_naive:
        return
    sample_buckets = max(1, round(args.buckets * args.sample))
    sample_readings = min(args.assets, sample_buckets * max(1, args.assets // args.buckets)) * args.readings
    naive_s, naive_mb, _ = child(url, "naive", sample_buckets)
    print(f"naive 10% : {naive_s:8.2f} s  {sample_readings / naive_s:12,.0f} readings/s  peak {naive_mb:6.0f} MB  "
          f"({sample_readings:,} readings)")
    print(f"billing / naive throughput: {(total / bill_s) / (sample_readings / naive_s):.1f}x (goal >= 15x)")


if __name__ == "__main__":
    main()
