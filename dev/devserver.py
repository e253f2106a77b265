"""`make run`: the web app, one RQ worker and `rq cron`, sharing one database and one Redis; Ctrl-C or SIGTERM stops
all of them (and our embedded Redis) within a few seconds. The port is checked first (`PORT=5001 make run`), and the
admin login printed is checked against the database in use.

The worker and rq cron are supervised (supervisor.py): one that exits starts again, and so does our embedded Redis,
so the web app keeps serving while Redis is away and jobs run again once it is back.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from app import create_app
from dev.supervisor import STOP_WAIT, Child, Supervisor
from jobs.embedded_redis import ensure_embedded_redis, stop_embedded_redis
from jobs.redis import redis_url

HOST, PORT = "127.0.0.1", 5000
ADMIN_EMAIL = "admin@meterdesk.local"
SERVE_WAIT = 60.0  # seconds the web app may take to answer on its port before the run is given up
REDIS_STOP_WAIT = 0.5  # after the children (STOP_WAIT): everything is stopped within 3 s


def say(message: str) -> None:
    print(f"devserver: {message}", file=sys.stderr, flush=True)


def chosen_port() -> int:
    """PORT from the environment (`PORT=5001 make run`), else 5000; SystemExit with a clear line when it is not a port."""
    text = os.environ.get("PORT") or str(PORT)
    if not text.isdigit() or not 0 < int(text) < 65536:
        say(f"PORT={text!r} is not a port number (1-65535), e.g. PORT=5001 make run")
        raise SystemExit(2)
    return int(text)


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (what `flask run` will do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def login_works(email: str, password: str) -> bool:
    """Whether `email` / `password` logs in as an active admin in the database in use (the app context's)."""
    from sqlalchemy import func, select
    from werkzeug.security import check_password_hash

    from extensions import db
    from models import User

    user = db.session.scalar(select(User).where(func.lower(User.email) == email.lower()))
    return bool(user and user.active and user.role == "admin" and check_password_hash(user.password_hash, password))


def ensure_admin(app) -> str:
    """The admin login to print, checked against the database `make run` uses: the one kept in
    instance/admin-login.txt (mode 600) when it logs in there, else admin@meterdesk.local with a new password (the
    user created, or its password reset and the user made an active admin), saved to that file."""
    from web.auth import create_user

    login_file = Path(app.config["INSTANCE_DIR"]) / "admin-login.txt"
    saved = login_file.read_text().strip() if login_file.exists() else ""
    email, _, password = saved.partition(" / ")
    with app.app_context():
        if saved and login_works(email, password):
            return saved
        password = secrets.token_urlsafe(12)
        create_user(ADMIN_EMAIL, password, "admin")
    if saved:
        say(f"the saved admin login does not work on this database: {ADMIN_EMAIL} has a new password")
    login_file.unlink(missing_ok=True)  # created anew: mode 600 whatever the old file's mode was
    fd = os.open(login_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
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


def _foreground(argv: list[str]) -> int:
    """Run a setup command (db upgrade, demo-data) to its end; Ctrl-C / SIGTERM stop it too."""
    child = subprocess.Popen(argv)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.terminate()
        try:
            child.wait(2)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise


def wait_until_serving(supervisor: Supervisor, web: Child, port: int) -> int | None:
    """Supervise until the web app answers on its port (None), or its exit code if it ends first."""
    deadline = time.monotonic() + SERVE_WAIT
    while not answers(HOST, port):
        code = supervisor.check()
        if code is not None:
            return code
        if time.monotonic() > deadline:
            say(f"the web app did not answer on port {port} within {SERVE_WAIT:.0f} s; stopping")
            return 1
        time.sleep(0.2)
    return None


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even when started with SIGINT ignored
    port = chosen_port()
    if not port_is_free(HOST, port):
        say(f"port {port} on {HOST} is already in use (another `make run`?): stop what uses it, or choose another "
            f"port: PORT={port + 1} make run")
        return 1
    app = create_app()
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    ours = not app.config.get("REDIS_URL")
    supervisor: Supervisor | None = None
    try:
        code = _foreground([*flask, "db", "upgrade"])
        if code:
            return code  # the command printed its one line
        login = ensure_admin(app)
        if database_is_empty(app) and not os.environ.get("METERDESK_NO_DEMO"):
            code = _foreground([*flask, "demo-data"])
            if code:
                return code
        url = redis_url(app)
        env = dict(os.environ, REDIS_URL=url)
        bindir = Path(sys.executable).parent
        web = Child("web app", [*flask, "run", "--host", HOST, "--port", str(port)], env, restart=False)
        supervisor = Supervisor(
            children=[
                Child("worker", [*flask, "worker", "--with-scheduler"], env),
                Child("rq cron", [str(bindir / "rq"), "cron", "--url", url, "jobs/schedule.py"], env),
                web,
            ],
            redis_url=url,
            restart_redis=(lambda: ensure_embedded_redis(app.config["INSTANCE_DIR"])) if ours else None,
        )
        supervisor.start()
        code = wait_until_serving(supervisor, web, port)
        if code is not None:
            return code or 1
        print(f"\n  Meterdesk on http://{HOST}:{port}  —  log in as {login}\n  Ctrl-C stops the web app, the worker "
              "and rq cron.\n", flush=True)
        return supervisor.run()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if supervisor is not None:
            supervisor.stop()
        if ours:
            stop_embedded_redis(app.config["INSTANCE_DIR"], wait=REDIS_STOP_WAIT)


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # everything it started is stopped by now; skip the interpreter's teardown (about a second on a busy machine)
    os._exit(status)
