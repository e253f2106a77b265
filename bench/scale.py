"""A month of MSP-scale readings: fill, ingest, bill and read pages at that size.

    python bench/scale.py [--small] [--readings N] [--assets 2000] [--units 3] [--month YYYY-MM]

PostgreSQL (a fresh schema, dropped afterwards) with DATABASE_URL, else SQLite in a temp directory. Default size:
52M readings on PostgreSQL (2,000 assets x 3 unit types x a 5-minute poll for a month), 10M on SQLite; `--small`
5M. Never touches instance/.

The month is filled at the collector's shape, poll after poll (every asset's reading of a unit type at one ts),
in ten tenths: the bulk through COPY (PostgreSQL) or executemany INSERT OR IGNORE (SQLite), with the ingest rate of
each tenth printed (the last tenth should keep >= 70% of the first). At 0%, 50% and 100% fill the endpoint
(POST /api/v1/readings, in this process through the WSGI app) ingests more polls, in batches of 1,000 readings
for 1,000 different assets. Then the month is billed in a separate process (its time and peak RSS, < 300 MB), from
the readings alone and again once its days are sealed as the nightly job seals them (all but the last day's),
against one `SELECT count(*), sum(value)` scan of the month (its partition on PostgreSQL), and the pages that
touch readings are timed (p95 < 300 ms): the asset page and its usage chart, Unbound, New, and Silent when the
app has it.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

UNIT_NAMES = ("cpu_hours", "storage_gb", "bandwidth_mbps")
UNIT_AGGREGATIONS = ("sum", "max", "p95")
POLL = timedelta(minutes=5)
BATCH = 1_000
ENDPOINT_POLLS = 4
CLIENTS = 40
PAGE_SAMPLES = 20
EMAIL, PASSWORD = "bench@example.com", "bench-password-123"


def previous_month() -> datetime:
    now = datetime.now(timezone.utc)
    first = datetime(now.year, now.month, 1, tzinfo=timezone.utc)
    last = first - timedelta(days=1)
    return datetime(last.year, last.month, 1, tzinfo=timezone.utc)


class Target:
    """A fresh database: a PostgreSQL schema (dropped at the end) or a SQLite file in a temp directory."""

    def __init__(self, workdir: Path, server_url: str) -> None:
        self.server_url = server_url
        if server_url:
            import sqlalchemy as sa

            self.schema = f"bench_scale_{os.getpid()}"
            engine = sa.create_engine(server_url)
            with engine.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
                conn.execute(sa.text(f"CREATE SCHEMA {self.schema}"))
            engine.dispose()
            separator = "&" if "?" in server_url else "?"
            self.url = f"{server_url}{separator}options=-csearch_path%3D{self.schema}"
            self.dsn = re.sub(r"^postgresql\+psycopg://", "postgresql://", server_url)
        else:
            self.schema = ""
            self.path = workdir / "scale.db"
            self.url = f"sqlite:///{self.path}"

    def drop(self) -> None:
        if self.server_url:
            import sqlalchemy as sa

            engine = sa.create_engine(self.server_url)
            with engine.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
            engine.dispose()


def build_app(target: Target, instance: Path, redis_url: str):
    from app import create_app
    from extensions import db

    app = create_app({"DATABASE_URL": target.url, "REDIS_URL": redis_url, "INSTANCE_DIR": str(instance),
                      "SECRET_KEY": "bench", "API_RATE_LIMIT": "100000000 per minute", "WTF_CSRF_ENABLED": False,
                      "REQUEST_TIMEOUT": 600})
    with app.app_context():
        db.create_all()
    return app


class Shape:
    """Polls of `assets` assets x `units` unit types every 5 minutes from the month's start."""

    def __init__(self, month: datetime, assets: int, units: int, readings: int) -> None:
        self.month, self.assets, self.units = month, assets, units
        self.per_poll = assets * units
        self.polls = max(10, readings // self.per_poll)
        days = (self.polls * POLL).total_seconds() / 86400
        if days > 31:
            raise SystemExit(f"{readings:,} readings at {self.per_poll:,} per poll need {days:.1f} days: more than a "
                             "month; add assets")

    def ts(self, poll: int) -> datetime:
        return self.month + poll * POLL

    @staticmethod
    def value(asset: int, poll: int, unit: int) -> int:
        """Micro units: 0.5 .. 10.1 with some variety."""
        return 500_000 + ((asset * 7 + poll * 3 + unit * 11) % 97) * 100_000

    def items(self, poll: int) -> list[list[dict]]:
        """One poll as the collectors post it: per unit type, batches of 1,000 different assets."""
        stamp = self.ts(poll).isoformat().replace("+00:00", "Z")
        batches = []
        for u in range(self.units):
            for first in range(0, self.assets, BATCH):
                batches.append([{"asset_id": f"dev-{a:05d}", "source": "snmp", "unit_type": UNIT_NAMES[u],
                                 "value": self.value(a, poll, u) / 1e6, "timestamp": stamp}
                                for a in range(first, min(self.assets, first + BATCH))])
        return batches


def setup(app, shape: Shape) -> tuple[str, dict[int, int], dict[int, int]]:
    """Unit types, an ingest key, and a login. Returns the key and (after the first poll) nothing else yet."""
    from web.auth import create_user
    from extensions import db
    from api.keys import create_api_key
    from models import UnitType

    with app.app_context():
        for name, aggregation in zip(UNIT_NAMES[:shape.units], UNIT_AGGREGATIONS):
            db.session.add(UnitType(name=name, aggregation=aggregation, description=name))
        db.session.commit()
        _, raw = create_api_key("bench", "ingest")
        create_user(EMAIL, PASSWORD, "admin")
    return raw, {}, {}


def provider(app, shape: Shape) -> tuple[dict[int, int], dict[int, int]]:
    """Clients, assignments and buckets: 95% of assets bound (the rest show on Unbound), 10% not acknowledged
    (New). Returns asset index -> id and unit index -> id."""
    from sqlalchemy import insert, select, update

    from extensions import db
    from models import Asset, Bucket, Client, UnitType, bucket_assets

    with app.app_context():
        ids = {int(ext.split("-")[1]): aid for ext, aid in db.session.execute(select(Asset.external_id, Asset.id))}
        units = {UNIT_NAMES.index(name): uid for name, uid in db.session.execute(select(UnitType.name, UnitType.id))}
        clients = []
        for c in range(CLIENTS):
            client = Client(name=f"Client {c:02d}")
            db.session.add(client)
            clients.append(client)
        db.session.flush()
        for a, asset_id in ids.items():
            db.session.execute(update(Asset).where(Asset.id == asset_id).values(
                client_id=clients[a % CLIENTS].id, acknowledged=a % 10 != 0, name=f"Device {a}"))
        for c, client in enumerate(clients):
            for u, unit_id in units.items():
                bucket = Bucket(client_id=client.id, name=f"{UNIT_NAMES[u]}", unit_type_id=unit_id,
                                source_type="snmp", aggregation=UNIT_AGGREGATIONS[u], commit=1000, base_price=1,
                                overage_price=2, reviewed=True, enabled=True)
                db.session.add(bucket)
                db.session.flush()
                bound = [{"bucket_id": bucket.id, "asset_id": ids[a]} for a in ids if a % CLIENTS == c and a % 20]
                if bound:
                    db.session.execute(insert(bucket_assets), bound)
        db.session.commit()
    return ids, units


def post_polls(client, key: str, shape: Shape, polls: range) -> tuple[int, float]:
    """POST the polls' batches through the WSGI app; (readings accepted, seconds)."""
    bodies = [json.dumps(items).encode() for poll in polls for items in shape.items(poll)]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    accepted = 0
    started = time.perf_counter()
    for body in bodies:
        response = client.post("/api/v1/readings", data=body, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"endpoint answered {response.status_code}: {response.get_data(as_text=True)[:300]}")
        accepted += response.json["accepted"]
    return accepted, time.perf_counter() - started


def fill_postgres(target: Target, shape: Shape, polls: range, ids: dict[int, int], units: dict[int, int]) -> float:
    """COPY the polls' readings into readings, ~60,000 rows per COPY and transaction; seconds."""
    import psycopg

    received = datetime.now(timezone.utc).isoformat()
    started = time.perf_counter()
    with psycopg.connect(target.dsn, options=f"-csearch_path={target.schema}") as conn:
        step = max(1, 60_000 // shape.per_poll)
        for first in range(polls.start, polls.stop, step):
            with conn.cursor() as cur, cur.copy(
                    "COPY readings (asset_id, unit_type_id, ts, value, received_at) FROM STDIN") as copy:
                for poll in range(first, min(polls.stop, first + step)):
                    stamp = shape.ts(poll).isoformat()
                    lines = []
                    for u in range(shape.units):
                        unit_id = units[u]
                        lines.extend(f"{ids[a]}\t{unit_id}\t{stamp}\t{shape.value(a, poll, u)}\t{received}\n"
                                     for a in range(shape.assets))
                    copy.write("".join(lines))
            conn.commit()
    return time.perf_counter() - started


def fill_sqlite(target: Target, shape: Shape, polls: range, ids: dict[int, int], units: dict[int, int]) -> float:
    """executemany INSERT OR IGNORE of the polls' readings, one transaction per ~60,000 rows; seconds."""
    from ingest.store import sqlite_datetime

    received = sqlite_datetime(datetime.now(timezone.utc))
    conn = sqlite3.connect(target.path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    step = max(1, 60_000 // shape.per_poll)
    started = time.perf_counter()
    for first in range(polls.start, polls.stop, step):
        rows = []
        for poll in range(first, min(polls.stop, first + step)):
            stamp = sqlite_datetime(shape.ts(poll))
            for u in range(shape.units):
                unit_id = units[u]
                rows.extend((ids[a], unit_id, stamp, shape.value(a, poll, u), received) for a in range(shape.assets))
        conn.executemany("INSERT OR IGNORE INTO readings (asset_id, unit_type_id, ts, value, received_at) "
                         "VALUES (?, ?, ?, ?, ?)", rows)
        conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def vacuum_analyze(target: Target) -> None:
    """VACUUM (ANALYZE) readings outside a transaction, as autovacuum would once the month stops growing."""
    import psycopg

    with psycopg.connect(re.sub(r"^postgresql\+psycopg://", "postgresql://", target.url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) readings")


def floor_scan(app, target: Target, month: datetime) -> tuple[float, int]:
    """One `SELECT count(*), sum(value)` over the month (its partition on PostgreSQL); (seconds, rows)."""
    from sqlalchemy import text

    from billing.periods import next_period
    from database.partitions import partition_name
    from extensions import db
    from ingest.store import sqlite_datetime

    with app.app_context():
        started = time.perf_counter()
        if target.server_url:
            rows, _ = db.session.execute(text(f"SELECT count(*), sum(value) FROM {partition_name(month)}")).one()
        else:
            rows, _ = db.session.execute(text("SELECT count(*), sum(value) FROM readings WHERE ts >= :a AND ts < :b"),
                                         {"a": sqlite_datetime(month), "b": sqlite_datetime(next_period(month))}).one()
        elapsed = time.perf_counter() - started
        db.session.rollback()
    return elapsed, rows


def bill_in_child(target: Target, instance: Path, redis_url: str, month: datetime) -> dict:
    """Bill the month in a fresh process; its seconds, peak RSS and summary."""
    env = dict(os.environ, DATABASE_URL=target.url, REDIS_URL=redis_url, METERDESK_INSTANCE=str(instance),
               SECRET_KEY="bench")
    out = subprocess.run([sys.executable, __file__, "--bill-only", month.strftime("%Y-%m")], env=env, cwd=str(ROOT),
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"billing failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bill_only(period: str) -> None:
    from app import create_app
    from billing.periods import parse_period
    from billing.run import bill_period
    from extensions import db

    app = create_app()
    with app.app_context():
        started = time.perf_counter()
        summary = bill_period(db.session, parse_period(period))
        elapsed = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "rss_mb": rss, "message": summary.message}))


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


def time_pages(app, ids: dict[int, int]) -> dict[str, tuple[float, float, int]]:
    """Each page that reads readings, PAGE_SAMPLES times after one warm-up: (median ms, p95 ms, status)."""
    client = app.test_client()
    response = client.post("/login", data={"email": EMAIL, "password": PASSWORD})
    if response.status_code not in (302, 303):
        raise SystemExit(f"login failed: {response.status_code}")
    sample = sorted(ids.values())
    pages = {}
    for name, urls in {
        "asset page": [f"/admin/assets/page/{sample[i * 97 % len(sample)]}" for i in range(PAGE_SAMPLES)],
        "asset usage.json": [f"/admin/assets/page/{sample[i * 89 % len(sample)]}/usage.json"
                             for i in range(PAGE_SAMPLES)],
        "Unbound": ["/admin/assets/unbound/"] * PAGE_SAMPLES,
        "New": ["/admin/assets/new/"] * PAGE_SAMPLES,
        "Silent": ["/admin/assets/silent/"] * PAGE_SAMPLES,
        "All assets, by last seen": ["/admin/asset/?sort=6&desc=1"] * PAGE_SAMPLES,
    }.items():
        if client.get(urls[0]).status_code == 404:
            continue
        times, status = [], 0
        for url in urls:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            status = max(status, response.status_code)
        pages[name] = (sorted(times)[len(times) // 2], p95(times), status)
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="5M readings")
    parser.add_argument("--readings", type=int, default=0, help="default 52M on PostgreSQL, 10M on SQLite")
    parser.add_argument("--assets", type=int, default=2_000)
    parser.add_argument("--units", type=int, default=3, choices=(1, 2, 3))
    parser.add_argument("--month", default="", help="YYYY-MM, default the previous month")
    parser.add_argument("--bill-only", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bill_only:
        bill_only(args.bill_only)
        return

    server_url = os.environ.get("DATABASE_URL", "")
    backend = "postgresql" if server_url else "sqlite"
    total = args.readings or (5_000_000 if args.small else 52_000_000 if server_url else 10_000_000)
    month = datetime.strptime(args.month, "%Y-%m").replace(tzinfo=timezone.utc) if args.month else previous_month()
    shape = Shape(month, args.assets, args.units, total)
    workdir = Path(tempfile.mkdtemp(prefix="meterdesk-scale-"))
    instance = workdir / "instance"
    instance.mkdir()
    from jobs.embedded_redis import ensure_embedded_redis, stop_embedded_redis

    redis_url = os.environ.get("REDIS_URL") or ensure_embedded_redis(instance)
    target = Target(workdir, server_url)
    try:
        run(target, instance, redis_url, shape, backend)
    finally:
        target.drop()
        if not os.environ.get("REDIS_URL"):
            stop_embedded_redis(instance)


def run(target: Target, instance: Path, redis_url: str, shape: Shape, backend: str) -> None:
    from billing.periods import next_period
    from database.partitions import create_partitions
    from extensions import db

    app = build_app(target, instance, redis_url)
    with app.app_context():
        create_partitions(db.session, [shape.month, next_period(shape.month)])
    key, _, _ = setup(app, shape)
    client = app.test_client()
    polls = shape.polls
    print(f"backend {backend}; {polls * shape.per_poll:,} readings for {shape.month:%Y-%m}: {shape.assets:,} assets x "
          f"{shape.units} unit types x {polls:,} polls every 5 min ({polls * POLL.total_seconds() / 86400:.1f} days); "
          f"load {os.getloadavg()[0]:.2f}")

    post_polls(client, key, shape, range(0, 1))  # creates the assets, as collectors would
    gc.collect()
    gc.freeze()  # as gunicorn.conf.py does once a worker has loaded the app
    ids, units = provider(app, shape)
    endpoint = {}
    endpoint_polls = ENDPOINT_POLLS
    accepted, seconds = post_polls(client, key, shape, range(1, 1 + endpoint_polls))
    endpoint[0] = accepted / seconds
    done = 1 + endpoint_polls
    bulk = polls - done - 2 * endpoint_polls
    tenths = []
    fill = fill_postgres if target.server_url else fill_sqlite
    for tenth in range(10):
        chunk = range(done, done + bulk * (tenth + 1) // 10 - bulk * tenth // 10)
        seconds = fill(target, shape, chunk, ids, units)
        tenths.append(len(chunk) * shape.per_poll / seconds)
        done = chunk.stop
        print(f"  fill tenth {tenth + 1:>2}: {tenths[-1]:>10,.0f} readings/s  ({len(chunk) * shape.per_poll:,} in "
              f"{seconds:.1f} s; load {os.getloadavg()[0]:.2f})", flush=True)
        if tenth == 4:
            accepted, seconds = post_polls(client, key, shape, range(done, done + endpoint_polls))
            endpoint[50] = accepted / seconds
            done += endpoint_polls
    accepted, seconds = post_polls(client, key, shape, range(done, done + endpoint_polls))
    endpoint[100] = accepted / seconds
    done += endpoint_polls
    how = "COPY" if target.server_url else "executemany INSERT OR IGNORE"
    print(f"bulk fill ({how}): first tenth {tenths[0]:,.0f}/s, last tenth {tenths[-1]:,.0f}/s = "
          f"{tenths[-1] / tenths[0]:.0%} of the first (goal >= 70%)")
    print("endpoint (1,000 different assets per batch, in-process): " + ", ".join(
        f"{pct}% fill {rate:,.0f}/s" for pct, rate in endpoint.items()))
    if target.server_url:  # what autovacuum does to a month that has stopped growing (insert-triggered since PG 13):
        vacuum_analyze(target)  # statistics, and the visibility map that lets billing scan the key's index only

    floor, rows = floor_scan(app, target, shape.month)
    raw_bill = bill_in_child(target, instance, redis_url, shape.month)
    print(f"billing from the readings alone (no day sealed): {raw_bill['seconds']:.2f} s = "
          f"{raw_bill['seconds'] / floor:.2f}x the scan")
    with app.app_context():  # what the nightly job has done by billing time: every day sealed but the last one's
        from database.reading_days import day_of, seal_days

        started = time.perf_counter()
        days = seal_days(db.session, day_of(shape.ts(done - 1)))
        sealed = time.perf_counter() - started
    print(f"nightly seal: {days} days in {sealed:.2f} s ({sealed / max(days, 1):.2f} s per day, each its own "
          "transaction; the last day stays raw)")
    bill = bill_in_child(target, instance, redis_url, shape.month)
    floor_again, _ = floor_scan(app, target, shape.month)
    floor = min(floor, floor_again)
    print(f"month: {rows:,} readings; one count/sum scan {floor:.2f} s")
    print(f"billing: {bill['seconds']:.2f} s = {bill['seconds'] / floor:.2f}x the scan (goal <= 1.5x); "
          f"peak RSS {bill['rss_mb']:.0f} MB (goal < 300 MB); {bill['message']}")
    for name, (median, high, status) in time_pages(app, ids).items():
        print(f"page {name:<26} median {median:7.1f} ms  p95 {high:7.1f} ms  (HTTP {status}; goal p95 < 300 ms)")
    print(f"bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"load {os.getloadavg()[0]:.2f}")
    with app.app_context():
        db.engine.dispose()


if __name__ == "__main__":
    main()
