"""`make run`: the web app, one RQ worker and `rq cron`, sharing one database and one Redis; Ctrl-C stops all."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from app import create_app
from jobs.queue import redis_url

HOST, PORT = "127.0.0.1", 5000
ADMIN_EMAIL = "admin@meterdesk.local"


def ensure_admin(app) -> str:
    """Create the first admin once; its password is kept in instance/admin-login.txt (mode 600) and printed."""
    from auth import create_user

    login_file = Path(app.config["INSTANCE_DIR"]) / "admin-login.txt"
    if login_file.exists():
        return login_file.read_text().strip()
    password = secrets.token_urlsafe(12)
    with app.app_context():
        create_user(ADMIN_EMAIL, password, "admin")
    fd = os.open(login_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{ADMIN_EMAIL} / {password}")
    return f"{ADMIN_EMAIL} / {password}"


def database_is_empty(app) -> bool:
    from sqlalchemy import func, select

    from extensions import db
    from models import Client

    with app.app_context():
        return not db.session.scalar(select(func.count(Client.id)))


def main() -> int:
    app = create_app()
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    subprocess.run([*flask, "db", "upgrade"], check=True)
    login = ensure_admin(app)
    if database_is_empty(app) and not os.environ.get("METERDESK_NO_DEMO"):
        subprocess.run([*flask, "demo-data"], check=True)
    url = redis_url(app)
    env = dict(os.environ, REDIS_URL=url)
    bindir = Path(sys.executable).parent
    children = [
        subprocess.Popen([str(bindir / "rq"), "worker", "--url", url, "--with-scheduler", app.config["RQ_QUEUE"]], env=env),
        subprocess.Popen([str(bindir / "rq"), "cron", "--url", url, "jobs/schedule.py"], env=env),
        subprocess.Popen([*flask, "run", "--host", HOST, "--port", str(PORT)], env=env),
    ]
    print(f"\n  Meterdesk on http://{HOST}:{PORT}  —  log in as {login}\n  Ctrl-C stops the web app, the worker and rq cron.\n",
          flush=True)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        if not app.config.get("REDIS_URL"):
            from embedded_redis import stop_embedded_redis

            stop_embedded_redis(app.config["INSTANCE_DIR"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
