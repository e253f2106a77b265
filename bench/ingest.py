"""Ingest benchmark: readings/s through POST /api/v1/readings against the driver's own bulk insert of the same rows
(the floor, in the same run) and a naive ORM loop (one object and one commit per reading).

    python bench/ingest.py [--readings 200000] [--assets 2000] [--batch 1000] [--workers <2 x cores>]

SQLite in a fresh temp directory by default; PostgreSQL (a fresh schema, dropped afterwards) with DATABASE_URL.
Never touches instance/. Two shapes of batch, each on fresh tables:
- collector (first, the one ingest is judged at; DESIGN.md "Readings at scale"): a collector polls every asset and
  posts one reading per asset, so a batch of 1,000 holds 1,000 different assets (polls of 2 unit types);
- 10 per asset: each batch holds 10 consecutive readings of 2 unit types for 50 assets.
Each shape is measured in a single process (the WSGI app called in-process, batch after batch) and through gunicorn
(collectors posting concurrently), against the floor: sqlite3 executemany INSERT OR IGNORE into an empty copy of
the table with its keys, or COPY into an empty copy of the table with its indexes, one batch per transaction.
"""
from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from queue import Empty, Queue

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

UNITS = ("cpu_hours", "storage_gb")
STEPS_PER_BATCH = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_collector_items(readings: int, assets: int, batch: int) -> list[list[dict]]:
    """Batches of items as collectors post them: per 5-minute poll and unit type, `batch` different assets each."""
    polls = max(1, readings // (assets * len(UNITS)))
    start = (datetime.now(timezone.utc) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    batches: list[list[dict]] = []
    for step in range(polls):
        ts = (start + timedelta(minutes=5 * step)).isoformat().replace("+00:00", "Z")
        for u, unit in enumerate(UNITS):
            for first in range(0, assets, batch):
                batches.append([{"asset_id": f"vm-{a:05d}", "source": "vmware", "unit_type": unit,
                                 "value": round(0.5 + (a * 7 + step * 3 + u) % 97 / 10, 3), "timestamp": ts}
                                for a in range(first, min(assets, first + batch))])
    return batches


def make_items(readings: int, assets: int, batch: int) -> list[list[dict]]:
    """Batches of items: per batch, 10 consecutive 5-minute steps x 2 unit types x (batch/20) assets."""
    per_batch_assets = max(1, batch // (STEPS_PER_BATCH * len(UNITS)))
    steps = max(1, readings // (assets * len(UNITS)))
    start = (datetime.now(timezone.utc) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    batches: list[list[dict]] = []
    for block in range(0, steps, STEPS_PER_BATCH):
        for first in range(0, assets, per_batch_assets):
            items = []
            for a in range(first, min(assets, first + per_batch_assets)):
                for step in range(block, min(steps, block + STEPS_PER_BATCH)):
                    ts = (start + timedelta(minutes=5 * step)).isoformat().replace("+00:00", "Z")
                    for u, unit in enumerate(UNITS):
                        items.append({"asset_id": f"vm-{a:05d}", "source": "vmware", "unit_type": unit,
                                      "value": round(0.5 + (a * 7 + step * 3 + u) % 97 / 10, 3), "timestamp": ts})
            batches.append(items)
    return batches


class Target:
    """A fresh database (SQLite file or PostgreSQL schema) for one measurement."""

    def __init__(self, workdir: Path, name: str, server_url: str) -> None:
        self.server_url = server_url
        if server_url:
            import sqlalchemy as sa

            self.schema = f"bench_{name}_{os.getpid()}"
            engine = sa.create_engine(server_url)
            with engine.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
                conn.execute(sa.text(f"CREATE SCHEMA {self.schema}"))
            engine.dispose()
            separator = "&" if "?" in server_url else "?"
            self.url = f"{server_url}{separator}options=-csearch_path%3D{self.schema}"
        else:
            self.schema = ""
            self.url = f"sqlite:///{workdir / f'{name}.db'}"
            self.path = workdir / f"{name}.db"

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
                      "SECRET_KEY": "bench", "API_RATE_LIMIT": "10000000 per minute"})
    with app.app_context():
        db.create_all()
    return app


def prepare(app) -> str:
    from extensions import db
    from api.keys import create_api_key
    from models import UnitType

    with app.app_context():
        for unit in UNITS:
            db.session.add(UnitType(name=unit, aggregation="sum"))
        db.session.commit()
        _, raw = create_api_key("bench", "ingest")
        return raw


def start_gunicorn(target: Target, instance: Path, redis_url: str, port: int, workers: int) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=target.url, REDIS_URL=redis_url, METERDESK_INSTANCE=str(instance),
               SECRET_KEY="bench", API_RATE_LIMIT="10000000 per minute")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
         "app:create_app()"], cwd=str(ROOT), env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/openapi.json")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("gunicorn did not start")


def post_all(port: int, key: str, bodies: list[bytes], clients: int) -> tuple[float, dict]:
    work: Queue = Queue()
    for body in bodies:
        work.put(body)
    totals = {"accepted": 0, "duplicates": 0, "suppressed": 0, "rejected": 0, "errors": 0}
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            try:
                body = work.get_nowait()
            except Empty:
                break
            conn.request("POST", "/api/v1/readings", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            with lock:
                if response.status != 200:
                    totals["errors"] += 1
                    print(f"  HTTP {response.status}: {payload[:200]!r}", file=sys.stderr)
                    continue
                result = json.loads(payload)
                for name in ("accepted", "duplicates", "suppressed"):
                    totals[name] += result[name]
                totals["rejected"] += len(result["rejected"])
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, totals


def post_in_process(app, key: str, bodies: list[bytes]) -> tuple[float, dict]:
    """POST every body through the WSGI app in this process, one after the other."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    totals = {"accepted": 0, "duplicates": 0, "suppressed": 0, "rejected": 0, "errors": 0}
    started = time.perf_counter()
    for body in bodies:
        response = client.post("/api/v1/readings", data=body, headers=headers)
        if response.status_code != 200:
            totals["errors"] += 1
            continue
        result = response.json
        for name in ("accepted", "duplicates", "suppressed"):
            totals[name] += result[name]
        totals["rejected"] += len(result["rejected"])
    return time.perf_counter() - started, totals


def stored_rows(app, batches: list[list[dict]]) -> list[tuple]:
    """The rows the endpoint wrote, as (asset_id, unit_type_id, ts, micro value) in posting order."""
    from sqlalchemy import select

    from extensions import db
    from models import Asset, UnitType, to_micro

    with app.app_context():
        assets = dict(db.session.execute(select(Asset.external_id, Asset.id)).all())
        units = dict(db.session.execute(select(UnitType.name, UnitType.id)).all())
    rows = []
    for items in batches:
        for item in items:
            ts = datetime.fromisoformat(item["timestamp"].replace("Z", "+00:00"))
            rows.append((assets[item["asset_id"]], units[item["unit_type"]], ts,
                         to_micro(Decimal(str(item["value"])))))
    return rows


def sqlite_copy_ddl(conn: sqlite3.Connection, copy: str) -> list[str]:
    """The DDL of `readings` and its indexes (foreign keys included), renamed to `copy`."""
    ddl = []
    for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'readings' AND sql IS NOT NULL "
                               "ORDER BY type DESC"):
        sql = re.sub(r'\b(readings)\b', copy, sql, count=1) if sql.startswith("CREATE TABLE") else sql
        if sql.startswith(("CREATE INDEX", "CREATE UNIQUE INDEX")):
            sql = re.sub(r'INDEX (\S+) ON (\S+)', lambda m: f"INDEX {m.group(1)}_{copy} ON {copy}", sql)
        ddl.append(sql)
    return ddl


KEY_ONLY_DDL = ["CREATE TABLE readings (asset_id INTEGER NOT NULL, unit_type_id INTEGER NOT NULL, ts DATETIME NOT NULL, "
                "value BIGINT NOT NULL, received_at DATETIME NOT NULL, UNIQUE (asset_id, unit_type_id, ts))"]


def raw_sqlite(path: Path, rows: list[tuple], batch: int, constraints: bool, key_only: bool = False) -> float:
    """sqlite3 executemany of INSERT OR IGNORE, one transaction per batch, into an empty copy of `readings`:
    in the app's database with the app's pragmas (foreign keys checked) or, without constraints, in a new file."""
    from ingest.store import sqlite_datetime

    copy = "readings_copy" if constraints else "readings"
    if constraints:
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA foreign_keys=ON")
        ddl = sqlite_copy_ddl(conn, copy)
    else:
        source = sqlite3.connect(path)
        ddl = [re.sub(r",\s*FOREIGN KEY\s*\(\w+\) REFERENCES \w+ \(id\)( ON DELETE \w+)?", "", sql)
               for sql in sqlite_copy_ddl(source, copy)]
        source.close()
        if key_only:
            ddl = KEY_ONLY_DDL
        raw_file = path.with_name(f"raw-{'key-only' if key_only else 'no-constraints'}.db")
        raw_file.unlink(missing_ok=True)
        conn = sqlite3.connect(raw_file)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for sql in ddl:
        conn.execute(sql)
    conn.commit()
    received = sqlite_datetime(datetime.now(timezone.utc))
    data = [(a, u, sqlite_datetime(ts), v, received) for a, u, ts, v in rows]
    sql = f"INSERT OR IGNORE INTO {copy} (asset_id, unit_type_id, ts, value, received_at) VALUES (?, ?, ?, ?, ?)"
    started = time.perf_counter()
    for start in range(0, len(data), batch):
        conn.executemany(sql, data[start:start + batch])
        conn.commit()
    elapsed = time.perf_counter() - started
    assert conn.execute(f"SELECT count(*) FROM {copy}").fetchone()[0] == len(data)
    conn.close()
    return elapsed


def raw_postgres(target: Target, source_schema: str, rows: list[tuple], batch: int, constraints: bool) -> float:
    """COPY, one per batch of 1,000 rows and one transaction each, into an empty copy of `readings` (LIKE …
    INCLUDING ALL, plus its foreign keys when `constraints`)."""
    import psycopg

    dsn = re.sub(r"^postgresql\+psycopg://", "postgresql://", target.server_url)
    received = datetime.now(timezone.utc)
    table = f"{target.schema}.readings_{'checked' if constraints else 'bare'}"
    with psycopg.connect(dsn) as conn:
        conn.execute(f"CREATE TABLE {table} (LIKE {source_schema}.readings INCLUDING ALL)")
        if constraints:
            fks = conn.execute(
                "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = %s AND t.relname = 'readings' "
                "AND c.contype = 'f'", (source_schema,)).fetchall()
            for (definition,) in fks:
                definition = re.sub(r"REFERENCES (\w+)\(", rf"REFERENCES {source_schema}.\1(", definition)
                conn.execute(f"ALTER TABLE {table} ADD {definition}")
        conn.commit()
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            with conn.cursor() as cur:
                with cur.copy(f"COPY {table} (asset_id, unit_type_id, ts, value, received_at) FROM STDIN") as copy:
                    for a, u, ts, v in rows[start:start + batch]:
                        copy.write_row((a, u, ts, v, received))
            conn.commit()
        elapsed = time.perf_counter() - started
        count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    assert count == len(rows), count
    return elapsed


def naive(target: Target, instance: Path, redis_url: str, items: list[dict]) -> float:
    """The baseline: per reading, look the asset up (create it if new), add one Reading object, commit."""
    from sqlalchemy import select

    from extensions import db
    from models import Asset, Reading, UnitType

    app = build_app(target, instance, redis_url)
    prepare(app)
    with app.app_context():
        started = time.perf_counter()
        for item in items:
            asset = db.session.scalar(select(Asset).where(Asset.external_id == item["asset_id"],
                                                          Asset.source_type == item["source"]))
            if asset is None:
                asset = Asset(external_id=item["asset_id"], source_type=item["source"])
                db.session.add(asset)
                db.session.flush()
            unit = db.session.scalar(select(UnitType).where(UnitType.name == item["unit_type"]))
            ts = datetime.fromisoformat(item["timestamp"].replace("Z", "+00:00"))
            db.session.add(Reading(asset_id=asset.id, unit_type_id=unit.id, ts=ts, value=Decimal(str(item["value"]))))
            if asset.last_seen_at is None or asset.last_seen_at < ts:
                asset.last_seen_at = ts
            db.session.commit()
        elapsed = time.perf_counter() - started
        db.engine.dispose()
    return elapsed


def measure_shape(name: str, batches: list[list[dict]], args, workdir: Path, instance: Path, redis_url: str,
                  server_url: str, targets: list[Target]) -> None:
    """One shape: in-process, through gunicorn, and the floor, each on fresh tables; print the figures."""
    warmup = [json.dumps(items).encode() for items in batches[:args.warmup]]
    bodies = [json.dumps(items).encode() for items in batches[args.warmup:]]
    batches = batches[args.warmup:]
    total = sum(len(items) for items in batches)
    print(f"{name}: {total:,} readings in {len(bodies)} batches of {args.batch:,}, after {len(warmup)} untimed "
          f"batches that create the assets (load {os.getloadavg()[0]:.2f})")
    tag = re.sub(r"[^a-z0-9]", "", name[:6].lower())
    single, multi = Target(workdir, f"{tag}_single", server_url), Target(workdir, f"{tag}_multi", server_url)
    targets += [single, multi]
    app = build_app(single, instance, redis_url)
    key = prepare(app)
    gc.collect()
    gc.freeze()  # as gunicorn.conf.py does once a worker has loaded the app (and the bench's data is no garbage)
    post_in_process(app, key, warmup)
    elapsed, totals = post_in_process(app, key, bodies)
    if totals["accepted"] != total or totals["errors"]:
        raise SystemExit(f"in-process endpoint stored {totals['accepted']:,} of {total:,}: {totals}")
    single_rate = total / elapsed
    rows = stored_rows(app, batches)
    if server_url:
        floor = len(rows) / raw_postgres(single, single.schema, rows, args.batch, False)
        how = "COPY per batch into an empty copy of readings with its indexes"
    else:
        floor = len(rows) / raw_sqlite(single.path, rows, args.batch, False)
        how = "executemany INSERT OR IGNORE per batch into an empty copy of readings (its key and index)"
        key_only = len(rows) / raw_sqlite(single.path, rows, args.batch, False, key_only=True)
        print(f"  raw, key only      : {key_only:>10,.0f} readings/s  (the same into a rowid table with only the "
              "unique key)")
    with app.app_context():
        from extensions import db

        db.engine.dispose()

    app_multi = build_app(multi, instance, redis_url)
    key_multi = prepare(app_multi)
    port = free_port()
    proc = start_gunicorn(multi, instance, redis_url, port, args.workers)
    try:
        post_all(port, key_multi, warmup, 1)
        elapsed, totals = post_all(port, key_multi, bodies, args.clients)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    with app_multi.app_context():
        from extensions import db

        db.engine.dispose()
    if totals["accepted"] != total or totals["errors"]:
        raise SystemExit(f"gunicorn endpoint stored {totals['accepted']:,} of {total:,}: {totals}")
    multi_rate = total / elapsed
    print(f"  raw floor          : {floor:>10,.0f} readings/s  ({how}, one process)")
    print(f"  endpoint in-process: {single_rate:>10,.0f} readings/s  = {single_rate / floor:6.1%} of the floor "
          "(one process, batch after batch; target >= 50%)")
    print(f"  endpoint gunicorn  : {multi_rate:>10,.0f} readings/s  = {multi_rate / floor:6.1%} of the floor "
          f"(-w {args.workers}, {args.clients} concurrent clients; load {os.getloadavg()[0]:.2f})")
    return single_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--assets", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1),
                        help="gunicorn workers (default: two per core, as README's deployment: a worker waiting on the "
                             "database leaves its core to another)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent posting connections")
    parser.add_argument("--naive-sample", type=int, default=2_000)
    parser.add_argument("--warmup", type=int, default=0, help="untimed first batches (default: one poll's worth, "
                                                                  "which creates every asset)")
    args = parser.parse_args()
    args.warmup = args.warmup or max(1, -(-args.assets // args.batch)) * len(UNITS)

    server_url = os.environ.get("DATABASE_URL", "")
    backend = "postgresql" if server_url else "sqlite"
    workdir = Path(tempfile.mkdtemp(prefix="meterdesk-bench-"))
    instance = workdir / "instance"
    instance.mkdir()
    from jobs.embedded_redis import ensure_embedded_redis, stop_embedded_redis

    redis_url = os.environ.get("REDIS_URL") or ensure_embedded_redis(instance)
    targets: list[Target] = []
    try:
        print(f"backend {backend}; {args.assets:,} assets; gunicorn -w {args.workers}, {args.clients} clients")
        collector = make_collector_items(args.readings, args.assets, args.batch)
        rate = measure_shape("collector shape (1,000 different assets per batch)", collector, args, workdir,
                             instance, redis_url, server_url, targets)
        grouped = make_items(args.readings, args.assets, args.batch)
        measure_shape("10-per-asset shape (10 readings x 2 units x 50 assets per batch)", grouped, args, workdir,
                      instance, redis_url, server_url, targets)
        naive_target = Target(workdir, "naive", server_url)
        targets.append(naive_target)
        sample = [item for items in collector for item in items][:args.naive_sample]
        naive_elapsed = naive(naive_target, workdir / "naive-instance", redis_url, sample)
        naive_rate = len(sample) / naive_elapsed
        print(f"naive: {naive_rate:,.0f} readings/s ({naive_elapsed:.2f} s for {len(sample):,}); collector shape "
              f"in-process = {rate / naive_rate:.1f}x naive (target >= 20x)")
    finally:
        for target in targets:
            target.drop()
        if not os.environ.get("REDIS_URL"):
            stop_embedded_redis(instance)


if __name__ == "__main__":
    main()
