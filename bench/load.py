"""Load with billing going on: N ingest clients post overlapping batches through gunicorn (a real multi-process
server on 127.0.0.1) while a billing run and a projection run execute in a real `flask --app app worker`.

    python bench/load.py [--readings 100000] [--assets 400] [--clients 8] [--workers 3] [--batch 1000]

SQLite in a fresh temp directory by default; PostgreSQL (a fresh schema, dropped afterwards) with DATABASE_URL;
the embedded Redis unless REDIS_URL is set. Checks what tests/hardening/test_hardening_load.py checks, on a larger run:
no 5xx, no "database is locked", every distinct reading stored exactly once, and the bill equal to a billing on
the quiet database and to tests.reference. The test imports the pieces of this module.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from queue import Empty, Queue

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

UNITS = {"cpu_hours": "sum", "mem_gb": "max", "disk_gb": "p95", "ports": "last", "iops": "avg"}
CLIENTS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(config: dict) -> dict[str, str]:
    """The environment of a gunicorn or worker process serving the same database and Redis as `config`."""
    return dict(os.environ, DATABASE_URL=config["DATABASE_URL"], REDIS_URL=config["REDIS_URL"],
                SECRET_KEY=config["SECRET_KEY"], METERDESK_INSTANCE=config["INSTANCE_DIR"],
                INSTANCE_DIR=config["INSTANCE_DIR"], API_RATE_LIMIT=config.get("API_RATE_LIMIT", "10000000 per minute"),
                PYTHONUNBUFFERED="1")


def start_gunicorn(env: dict[str, str], port: int, workers: int = 3, log: Path | None = None) -> subprocess.Popen:
    """gunicorn on 127.0.0.1:`port` in its own process group; returns once it answers."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--timeout", "120",
         "--graceful-timeout", "5", "--log-level", "warning", "app:create_app()"],
        cwd=str(ROOT), env=env, start_new_session=True, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/openapi.json")
            ok = conn.getresponse().status == 200
            conn.close()
            if ok:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise RuntimeError("gunicorn did not start within 60 s")


def start_rq_worker(env: dict[str, str], queue: str, burst: bool = True, log: Path | None = None) -> subprocess.Popen:
    """`flask --app app worker [--burst]` in its own process group (so the work horse can be killed with it)."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    args = [sys.executable, "-m", "flask", "--app", "app", "worker", "--logging-level", "WARNING", queue]
    if burst:
        args.insert(6, "--burst")
    return subprocess.Popen(args, cwd=str(ROOT), env=env, start_new_session=True, stdout=out, stderr=out)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal the process group of `proc` and wait for it (SIGKILL after 10 s)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        except ProcessLookupError:
            pass


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def make_readings(assets: int, steps: int, period_start: datetime) -> list[dict]:
    """Distinct readings: `steps` hourly timestamps x every unit type x `assets` assets, inside the period."""
    items = []
    for a in range(assets):
        for step in range(steps):
            ts = iso(period_start + timedelta(hours=step, minutes=a % 60))
            for u, unit in enumerate(UNITS):
                value = Decimal((a * 37 + step * 11 + u * 5) % 997) / 8
                items.append({"asset_id": f"host-{a:05d}", "source": "collector", "unit_type": unit,
                              "value": str(value), "timestamp": ts})
    return items


def overlapping_batches(items: list[dict], batch: int, copies: int = 2, seed: int = 7) -> list[list[dict]]:
    """Every item in `copies` different batches, the batches shuffled: concurrent clients post the same readings."""
    rng = random.Random(seed)
    batches: list[list[dict]] = []
    for copy in range(copies):
        order = list(items)
        rng.shuffle(order)
        shift = copy * batch // max(copies, 1)
        order = order[shift:] + order[:shift]
        batches.extend(order[start:start + batch] for start in range(0, len(order), batch))
    rng.shuffle(batches)
    return batches


@dataclass
class LoadResult:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def post_batches(port: int, key: str, batches: list[list[dict]], clients: int = 8,
                 extra: list[tuple[str, str]] | None = None) -> LoadResult:
    """`clients` threads, each with its own keep-alive connection, POST the batches as fast as they are answered.

    `extra` (method, path) requests (pages, API reads) are sent in between by the same clients."""
    work: Queue = Queue()
    for items in batches:
        work.put(("POST", "/api/v1/readings", json.dumps(items).encode()))
    for method, path in extra or []:
        work.put((method, path, None))
    result = LoadResult()
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            try:
                method, path, body = work.get_nowait()
            except Empty:
                break
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
            except OSError as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                with lock:
                    result.requests += 1
                    result.statuses[0] += 1
                    result.errors.append(f"{method} {path}: {exc!r}")
                continue
            with lock:
                result.requests += 1
                result.statuses[status] += 1
                text = payload[:300].decode(errors="replace")
                if status >= 500 or "locked" in text.lower():
                    result.errors.append(f"{method} {path}: HTTP {status} {text}")
                if path == "/api/v1/readings" and status == 200:
                    answer = json.loads(payload)
                    result.accepted += answer["accepted"]
                    result.duplicates += answer["duplicates"]
                    result.rejected += len(answer["rejected"])
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - started
    return result


def seed(app, assets: int) -> dict:
    """Clients, one unit type per aggregation, one bucket per client and unit type binding that client's assets
    (created here, as ingest would), an ingest key; returns {"key": raw key, "asset_ids": [...]}."""
    from extensions import db
    from api.keys import create_api_key
    from models import Asset, Bucket, Client, UnitType

    with app.app_context():
        units = {}
        for name, aggregation in UNITS.items():
            units[name] = UnitType(name=name, aggregation=aggregation, base_price=Decimal("0.5"),
                                   overage_price=Decimal("0.75"))
            db.session.add(units[name])
        owners = [Client(name=f"Load client {n}") for n in range(CLIENTS)]
        db.session.add_all(owners)
        rows = [Asset(external_id=f"host-{a:05d}", source_type="collector", name=f"host {a}", client=owners[a % CLIENTS],
                      acknowledged=True) for a in range(assets)]
        db.session.add_all(rows)
        for n, owner in enumerate(owners):
            for u, (name, aggregation) in enumerate(UNITS.items()):
                db.session.add(Bucket(
                    client=owner, name=f"{name} bucket", unit_type=units[name], source_type="collector",
                    aggregation=aggregation, commit=Decimal(500 * (n + 1) * (u + 1)), base_price=Decimal("0.125"),
                    overage_price=Decimal("0.2"), assets=[r for r in rows if r.client is owner]))
        db.session.commit()
        _, raw = create_api_key("load", "ingest")
        return {"key": raw, "asset_ids": [r.id for r in rows]}


LINE_FIELDS = ("client_id", "bucket_id", "total_usage", "commit", "base_cost", "overage_units", "overage_cost",
               "buffer_units", "buffer_cost", "final_cost", "finalized")


def bill_lines(session, period_start: datetime) -> dict[int, tuple]:
    """The period's billing lines by bucket id, as comparable tuples."""
    from sqlalchemy import select

    from models import BillingReading

    rows = session.scalars(select(BillingReading).where(BillingReading.period_start == period_start))
    return {r.bucket_id: tuple(getattr(r, name) for name in LINE_FIELDS) for r in rows}


def reference_bill(session, period_start: datetime) -> dict[int, tuple]:
    """tests.reference's usages (naive Python) priced with the one cost formula, shaped like `bill_lines`."""
    from billing.periods import period_bounds
    from billing.pricing import rate_bucket_usage
    from tests.reference import reference_usages
    from models import Bucket

    start, end = period_bounds(period_start)
    lines = {}
    for bucket_id, usage in reference_usages(session, start, end).items():
        b = session.get(Bucket, bucket_id)
        cost = rate_bucket_usage(usage.total, b.commit, b.base_price, b.overage_price)
        lines[bucket_id] = (b.client_id, bucket_id, usage.total, b.commit, cost.base_cost, cost.overage_units,
                            cost.overage_cost, cost.buffer_units, cost.buffer_cost, cost.final_cost, False)
    return lines


def stored_summary(session) -> tuple[int, int, Decimal]:
    """(readings, distinct (asset, unit type, ts), sum of values) as stored."""
    from sqlalchemy import func, select, text

    from models import Reading, from_micro

    count = session.scalar(select(func.count()).select_from(Reading))
    distinct_count = session.scalar(select(func.count()).select_from(
        select(Reading.asset_id, Reading.unit_type_id, Reading.ts).distinct().subquery()))
    raw_sum = session.scalar(text("SELECT sum(value) FROM readings")) or 0
    return count, distinct_count, from_micro(int(raw_sum))


def sent_summary(items: list[dict]) -> tuple[int, Decimal]:
    return len({(i["asset_id"], i["unit_type"], i["timestamp"]) for i in items}), sum(
        (Decimal(i["value"]) for i in items), Decimal(0))


def wait_for_runs(app, run_ids: list[int], timeout: float = 120,
                  statuses: tuple[str, ...] = ("done", "failed")) -> dict[int, tuple[str, str]]:
    """Poll the JobRuns until each is in `statuses` (or `timeout` passes); return their (status, message)."""
    from extensions import db
    from models import JobRun

    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            states = {i: (r.status, r.message) for i in run_ids if (r := db.session.get(JobRun, i))}
        if all(s in statuses for s, _ in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(0.1)


class JobsDuringLoad(threading.Thread):
    """Billing (`period`) and projection runs, requested again and again through jobs.runs.start_job and executed by
    one `flask --app app worker` subprocess, for as long as the load lasts; every run must end `done`."""

    def __init__(self, app, env: dict[str, str], period: datetime, log: Path | None = None) -> None:
        super().__init__(daemon=True)
        self.app, self.env, self.period, self.log = app, env, period, log
        self.stopping = threading.Event()
        self.run_ids: list[int] = []
        self.error: BaseException | None = None
        self.busy = threading.Event()

    def run(self) -> None:
        from billing.periods import current_period_start, period_label
        from jobs.runs import start_job
        from jobs.rights import Requester

        worker = start_rq_worker(self.env, self.app.config["RQ_QUEUE"], burst=False, log=self.log)
        try:
            while not self.stopping.is_set():
                with self.app.app_context():
                    billing, current = period_label(self.period), period_label(current_period_start())
                    load = Requester.operator("load")
                    ids = [start_job("billing", {"period": billing}, load, billing).id,
                           start_job("projection", {"period": current}, load, current).id]
                self.run_ids.extend(ids)
                wait_for_runs(self.app, ids[:1], statuses=("running", "done", "failed"))
                self.busy.set()
                wait_for_runs(self.app, ids)
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker exited with {worker.returncode}")
        except BaseException as exc:  # reported by finish()
            self.error = exc
        finally:
            stop(worker)

    def finish(self) -> dict[int, tuple[str, str]]:
        """Stop after the runs in progress; return every run's (status, message)."""
        from extensions import db
        from models import JobRun

        self.stopping.set()
        self.join(300)
        if self.error is not None:
            raise self.error
        with self.app.app_context():
            return {i: (r.status, r.message) for i in self.run_ids if (r := db.session.get(JobRun, i))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=100_000, help="distinct readings (each sent twice)")
    parser.add_argument("--assets", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    from app import create_app
    from billing.periods import current_period_start, previous_period
    from billing.run import bill_period
    from extensions import db
    from jobs.redis import redis_url

    server_db = os.environ.get("DATABASE_URL", "")
    workdir = Path(tempfile.mkdtemp(prefix="meterdesk-load-"))
    schema = f"load_{os.getpid()}"
    if server_db:
        import sqlalchemy as sa

        engine = sa.create_engine(server_db)
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        engine.dispose()
        separator = "&" if "?" in server_db else "?"
        url = f"{server_db}{separator}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{workdir / 'load.db'}"
    config = {"DATABASE_URL": url, "REDIS_URL": os.environ.get("REDIS_URL", ""), "SECRET_KEY": "load-bench",
              "INSTANCE_DIR": str(workdir / "instance"), "API_RATE_LIMIT": "10000000 per minute"}
    app = create_app(config)
    config["REDIS_URL"] = redis_url(app)
    with app.app_context():
        db.create_all()
    seeded = seed(app, args.assets)
    period = previous_period(current_period_start())
    steps = max(1, args.readings // (args.assets * len(UNITS)))
    items = make_readings(args.assets, steps, period)
    batches = overlapping_batches(items, args.batch)
    env = server_env(config)
    port = free_port()
    server = start_gunicorn(env, port, args.workers, log=workdir / "gunicorn.log")
    jobs = JobsDuringLoad(app, env, period, log=workdir / "worker.log")
    try:
        jobs.start()
        jobs.busy.wait(60)
        result = post_batches(port, seeded["key"], batches, args.clients)
    finally:
        states = jobs.finish()
        stop(server)
    with app.app_context():
        stored, distinct_stored, total = stored_summary(db.session)
        bill_period(db.session, period)
        after = bill_lines(db.session, period)
        bill_period(db.session, period)
        again = bill_lines(db.session, period)
        reference = reference_bill(db.session, period)
    distinct_sent, sent_total = sent_summary(items)
    print(f"backend: {'postgresql' if server_db else 'sqlite'}, gunicorn workers: {args.workers}, "
          f"clients: {args.clients}")
    print(f"requests: {result.requests} in {result.seconds:.1f} s, statuses {dict(result.statuses)}")
    print(f"readings sent: {len(items) * 2} ({distinct_sent} distinct); accepted {result.accepted}, "
          f"duplicates {result.duplicates}, rejected {result.rejected}")
    print(f"stored: {stored} ({distinct_stored} distinct), value sum {total} (sent {sent_total})")
    print(f"runs during load: {Counter(status for status, _ in states.values())}")
    print(f"bill: {len(after)} lines, total ${sum(line[9] for line in after.values()):,.2f}; "
          f"rerun equal: {after == again}; reference equal: {after == reference}")
    ok = (result.server_errors == 0 and not result.errors and stored == distinct_stored == distinct_sent
          and result.accepted == distinct_sent and total == sent_total and after == again == reference
          and all(s == "done" for s, _ in states.values()))
    for error in result.errors[:10]:
        print("  error:", error)
    if server_db:
        import sqlalchemy as sa

        engine = sa.create_engine(server_db)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()
    if not os.environ.get("REDIS_URL"):
        from jobs.embedded_redis import stop_embedded_redis

        stop_embedded_redis(config["INSTANCE_DIR"])
    print(f"logs in {workdir}")
    print("OK: zero loss" if ok else "FAILED")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
