"""`make run`: the web app, one RQ worker and `rq cron`, sharing one database and one Redis; Ctrl-C stops all.

The worker and rq cron are supervised (supervisor.py): one that exits starts again, and so does our embedded Redis,
so the web app keeps serving while Redis is away and jobs run again once it is back.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from app import create_app
from dev.supervisor import Child, Supervisor
from jobs.embedded_redis import ensure_embedded_redis, stop_embedded_redis
from jobs.redis import redis_url

HOST, PORT = "127.0.0.1", 5000
ADMIN_EMAIL = "admin@meterdesk.local"


def ensure_admin(app) -> str:
    """Create the first admin once; its password is kept in instance/admin-login.txt (mode 600) and printed."""
    from web.auth import create_user

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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    app = create_app()
    port = int(os.environ.get("PORT") or PORT)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    subprocess.run([*flask, "db", "upgrade"], check=True)
    login = ensure_admin(app)
    if database_is_empty(app) and not os.environ.get("METERDESK_NO_DEMO"):
        subprocess.run([*flask, "demo-data"], check=True)
    url = redis_url(app)
    ours = not app.config.get("REDIS_URL")
    env = dict(os.environ, REDIS_URL=url)
    bindir = Path(sys.executable).parent
    supervisor = Supervisor(
        children=[
            Child("worker", [*flask, "worker", "--with-scheduler"], env),
            Child("rq cron", [str(bindir / "rq"), "cron", "--url", url, "jobs/schedule.py"], env),
            Child("web app", [*flask, "run", "--host", HOST, "--port", str(port)], env, restart=False),
        ],
        redis_url=url,
        restart_redis=(lambda: ensure_embedded_redis(app.config["INSTANCE_DIR"])) if ours else None,
    )
    signal.signal(signal.SIGTERM, _interrupt)
    code = 0
    try:
        supervisor.start()
        print(f"\n  Meterdesk on http://{HOST}:{port}  —  log in as {login}\n  Ctrl-C stops the web app, the worker "
              "and rq cron.\n", flush=True)
        code = supervisor.run()
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()
        if ours:
            stop_embedded_redis(app.config["INSTANCE_DIR"])
    return code


if __name__ == "__main__":
    sys.exit(main())
