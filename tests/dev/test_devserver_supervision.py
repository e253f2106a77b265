"""`make run` (devserver.py) with real processes: pages keep serving while Redis is away; once it is back (ours is
restarted, someone else's is waited for) a worker is registered again and runs a job; a child that keeps exiting is
restarted with backoff, and only the web app's exit ends the run."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from dev.supervisor import Child, Supervisor
from jobs.embedded_redis import ensure_embedded_redis, stop_embedded_redis
from tests.conftest import SERVER_DB, with_search_path

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextmanager
def database(tmp_path: Path) -> Iterator[str | None]:
    """A fresh database for one devserver: a new PostgreSQL schema, or None (SQLite in its instance dir)."""
    if not SERVER_DB:
        yield None
        return
    schema = f"devserver_{os.getpid()}_{tmp_path.name[-12:].lower()}"
    schema = re.sub(r"[^a-z0-9_]", "_", schema)
    engine = sa.create_engine(SERVER_DB)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield with_search_path(SERVER_DB, schema)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


class DevServer:
    def __init__(self, process: subprocess.Popen, base: str, instance: Path, log: Path) -> None:
        self.process, self.base, self.instance, self.log = process, base, instance, log

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.base + path, timeout=10, **kwargs)

    def health(self) -> tuple[int, dict]:
        response = self.get("/healthz")
        return response.status_code, response.json()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def admin_session(self) -> requests.Session:
        """A browser-like session logged in as the admin devserver created (instance/admin-login.txt)."""
        email, password = (self.instance / "admin-login.txt").read_text().split(" / ")
        session = requests.Session()
        form = session.get(self.base + "/login", timeout=10).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
        answer = session.post(self.base + "/login", data={"email": email, "password": password, "csrf_token": token},
                              allow_redirects=False, timeout=10)
        assert answer.status_code == 302 and "/login" not in answer.headers["Location"], answer.text[:300]
        return session

    def run_projections(self, session: requests.Session) -> str:
        """Click Run on the Projections page; the status line of the run it started."""
        page = session.get(self.base + "/admin/projection/", timeout=10).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        after = session.post(self.base + "/admin/projection/run", data={"csrf_token": token}, timeout=10).text
        started = re.search(r"Projection run #(\d+) started", after)
        assert started, after[-2000:]
        run_id = started.group(1)

        def finished() -> str | None:
            status = session.get(f"{self.base}/admin/jobs/{run_id}", timeout=10).json()
            return status["status"] if status["status"] in ("done", "failed") else None

        return wait_for(finished, 20, f"projection run #{run_id} to finish")


@contextmanager
def devserver(tmp_path: Path, redis_url: str | None = None) -> Iterator[DevServer]:
    """`python devserver.py` on a free port with a fresh instance dir and database, no demo data."""
    instance = tmp_path / "instance"
    port = free_port()
    log = tmp_path / "devserver.log"
    with database(tmp_path) as database_url:
        env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "REDIS_URL")}
        env.update(METERDESK_NO_DEMO="1", METERDESK_INSTANCE=str(instance), PORT=str(port))
        if database_url:
            env["DATABASE_URL"] = database_url
        if redis_url:
            env["REDIS_URL"] = redis_url
        with open(log, "wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "dev.devserver"], cwd=ROOT, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        server = DevServer(process, f"http://127.0.0.1:{port}", instance, log)
        try:
            def serving() -> bool:
                assert process.poll() is None, server.output()[-3000:]
                try:
                    return server.get("/login").status_code == 200
                except requests.ConnectionError:
                    return False

            wait_for(serving, 40, "devserver to serve /login")
            assert f"Context impl {'Postgresql' if database_url else 'SQLite'}Impl" in server.output()
            yield server
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)
            try:
                os.killpg(process.pid, signal.SIGKILL)  # whatever a failed test left in the group
            except ProcessLookupError:
                pass
            stop_embedded_redis(instance)


def redis_pid(directory: Path) -> int:
    return int((directory / "redis.pid").read_text().strip())


def kill_redis(directory: Path) -> int:
    """SIGKILL the redis-server of `directory`, as a crash would; wait until it is gone."""
    pid = redis_pid(directory)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
             5, "redis-server to die")
    return pid


def registered_worker(server: DevServer) -> bool:
    status, report = server.health()
    return status == 200 and report["redis_ok"] and (report["workers"] or 0) >= 1


def test_pages_keep_serving_while_redis_is_away_and_a_worker_runs_jobs_once_it_is_back(tmp_path):
    """Redis is someone else's (REDIS_URL): devserver cannot start it again, only outlive it."""
    redis_dir = tmp_path / "redis"
    url = ensure_embedded_redis(redis_dir)
    try:
        with devserver(tmp_path, redis_url=url) as server:
            wait_for(lambda: registered_worker(server), 20, "the worker to register")
            admin = server.admin_session()
            kill_redis(redis_dir)
            away_since = time.monotonic()
            # 3 s without Redis: every page still answers 200; /healthz says what is down
            while time.monotonic() - away_since < 3:
                for path in ("/admin/", "/admin/projection/", "/admin/client/", "/admin/billingreading/"):
                    page = admin.get(server.base + path, timeout=10)
                    assert page.status_code == 200, (path, page.text[:500])
                assert server.get("/login").status_code == 200
                status, report = server.health()
                assert (status, report["redis_ok"], report["db_ok"]) == (503, False, True)
                time.sleep(0.2)
            ensure_embedded_redis(redis_dir)  # the operator starts Redis again: a new server that kept nothing
            wait_for(lambda: registered_worker(server), 20, "a worker to register again")
            assert server.run_projections(admin) == "done"
            output = server.output()
            assert "devserver: Redis is away: pages keep serving; jobs wait until it is back" in output
            assert "devserver: Redis is back as a new server: restarting the worker and rq cron" in output
            assert server.process.poll() is None
    finally:
        stop_embedded_redis(redis_dir)


def test_our_embedded_redis_and_a_killed_worker_are_started_again_and_run_jobs(tmp_path):
    with devserver(tmp_path) as server:
        wait_for(lambda: registered_worker(server), 20, "the worker to register")
        first_worker = worker_pid(server.process.pid)
        old_redis = kill_redis(server.instance)
        # a new Redis forgot every registration, so devserver recycles the worker: wait for the new one, else the
        # kill below may find no worker or hit the one being recycled (no "exited" line: a CI run failed so)
        wait_for(lambda: (server.instance / "redis.pid").exists() and redis_pid(server.instance) != old_redis
                 and worker_pid(server.process.pid) not in (None, first_worker) and registered_worker(server),
                 30, "devserver to start Redis again and a new worker to register")
        worker = worker_pid(server.process.pid)
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: worker_pid(server.process.pid) not in (None, worker), 10, "a new worker process")
        assert server.run_projections(server.admin_session()) == "done"
        output = server.output()
        assert "devserver: the embedded Redis had stopped: started it again" in output
        assert "devserver: worker exited with -9; starting it again in 1 s" in output
        assert server.process.poll() is None


def worker_pid(parent: int) -> int | None:
    """The pid of devserver's `flask --app app worker` child (from /proc): its command line, or the title rq gives
    the process once it runs (`rq:worker:<name>: …`, through setproctitle)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == parent and (cmdline[-3:-1] == [b"worker", b"--with-scheduler"]
                                         or cmdline[0].startswith(b"rq:worker:")):
            return int(stat.parent.name)
    return None


def test_a_child_that_keeps_exiting_restarts_with_backoff_and_the_web_apps_exit_ends_the_run(tmp_path):
    starts = tmp_path / "starts"
    flaky = Child("flaky", [sys.executable, "-c", f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(3)"],
                  dict(os.environ))
    web = Child("web app", [sys.executable, "-c", "import time; time.sleep(5); raise SystemExit(7)"],
                dict(os.environ), restart=False)
    url = ensure_embedded_redis(tmp_path / "redis")
    try:
        supervisor = Supervisor([flaky, web], redis_url=url)
        began = time.monotonic()
        supervisor.start()
        code = supervisor.run(tick=0.05)
    finally:
        stop_embedded_redis(tmp_path / "redis")
    # starts at 0 s, then after 1, 2 and 4 s more (0, 1, 3, 7 s): the web app ended the run at 5 s with its code
    assert code == 7 and 4.9 < time.monotonic() - began < 6.5
    assert starts.read_text() == "xxx"
    assert flaky.failures == 3
