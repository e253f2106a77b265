"""`make run` as a newcomer meets it, with real processes (issue 12 items 1, 3, 4): a busy or bad port is one line and
a non-zero exit before any login is printed; the printed login works on the database in use even when
instance/admin-login.txt holds another one; Ctrl-C and SIGTERM stop the web app, worker, rq cron and the embedded
redis-server within 3 s."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.dev.test_devserver_supervision import ROOT, devserver, free_port, registered_worker, wait_for

pytestmark = pytest.mark.slow
STOP_WITHIN = 3.0


def run_devserver(tmp_path: Path, port: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "REDIS_URL")}
    env.update(METERDESK_NO_DEMO="1", METERDESK_INSTANCE=str(tmp_path / "instance"), PORT=port)
    return subprocess.run([sys.executable, "-m", "dev.devserver"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_a_busy_port_is_one_clear_line_and_a_failure_before_any_login(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = run_devserver(tmp_path, str(port))
    assert result.returncode == 1 and time.monotonic() - started < 20
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr and f"PORT={port + 1} make run" in result.stderr
    assert "log in as" not in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "instance" / "redis.pid").exists()


def test_a_port_that_is_not_a_number_is_refused(tmp_path):
    result = run_devserver(tmp_path, "50x0")
    assert result.returncode == 2 and "PORT='50x0' is not a port number" in result.stderr
    assert "log in as" not in result.stdout


def test_the_printed_login_works_on_the_database_in_use_even_over_a_stale_saved_one(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "admin-login.txt").write_text("admin@meterdesk.local / from-another-database")
    with devserver(tmp_path) as server:
        printed = wait_for(lambda: [line.split("log in as ", 1)[1].strip() for line in server.output().splitlines()
                                    if "log in as " in line], 20, "the login line")[0]
        saved = (instance / "admin-login.txt").read_text().strip()
        assert printed == saved and printed != "admin@meterdesk.local / from-another-database"
        assert "the saved admin login does not work on this database" in server.output()
        assert server.admin_session().get(server.base + "/admin/", timeout=10).status_code == 200
        assert oct(os.stat(instance / "admin-login.txt").st_mode & 0o777) == "0o600"


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children by their parent id, at any depth)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_stop_everything_within_3_seconds(tmp_path, signum):
    with devserver(tmp_path) as server:
        wait_for(lambda: registered_worker(server), 30, "the worker to register")
        processes = descendants(server.process.pid)
        redis_file = server.instance / "redis.pid"
        if redis_file.exists():  # our embedded Redis (daemonized: not a descendant)
            processes.add(int(redis_file.read_text().strip()))
        assert len(processes) >= 4, processes  # web app, worker (+ its scheduler), rq cron, redis-server
        started = time.monotonic()
        server.process.send_signal(signum)
        server.process.wait(10)
        stopped = wait_for(lambda: not any(alive(pid) for pid in processes) and time.monotonic() - started,
                           10, "every process to stop", step=0.05)
        assert stopped < STOP_WITHIN, f"stopping took {stopped:.2f} s"
        assert server.process.returncode == 0
