"""A real worker process (`flask --app app worker`, rq inside the app) for the webhook and alert tests, on the test app's database and Redis."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def worker_env(config: dict) -> dict[str, str]:
    """The environment of a worker serving the same database, Redis and settings as `config`."""
    return dict(os.environ, DATABASE_URL=config["DATABASE_URL"], REDIS_URL=config["REDIS_URL"],
                SECRET_KEY=config["SECRET_KEY"], METERDESK_INSTANCE=config["INSTANCE_DIR"],
                ANOMALY_PCT=str(config["ANOMALY_PCT"]),
                WEBHOOK_RETRY_INTERVALS=",".join(map(str, config["WEBHOOK_RETRY_INTERVALS"])), PYTHONUNBUFFERED="1")


@contextmanager
def rq_worker(config: dict, log: Path, burst: bool = False, scheduler: bool = True) -> Iterator[subprocess.Popen]:
    """`flask --app app worker [--burst] [--with-scheduler] <queue>` in its own process group; stopped (and waited for) on exit."""
    args = [sys.executable, "-m", "flask", "--app", "app", "worker", "--logging-level", "INFO", config["RQ_QUEUE"]]
    if burst:
        args.insert(6, "--burst")
    if scheduler:
        args.insert(6, "--with-scheduler")
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, cwd=str(ROOT), env=worker_env(config), start_new_session=True, stdout=out,
                                stderr=out)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def wait_until(predicate: Callable[[], object], timeout: float = 60, step: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")
