"""The newcomer's commands with real processes (issue 12 items 2, 5, 6): a database that cannot be used is one line
and exit status 1, rejected input is one line with no job recorded, `--out` never creates folders, a command's
export offers no Download that would 404, and `import app` leaves the heavy modules out."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from billing.periods import current_period_start, period_label
from extensions import db
from models import JobRun
from tests.conftest import SERVER_DB
from tests.dev.test_devserver_supervision import database
from tests.jobs.test_billing_jobs import two_unit_types

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("plotly", "narwhals", "pandas", "numpy", "playwright", "alembic", "mako", "pygments", "flask_migrate")


def flask(args: list[str], instance: Path, database_url: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "REDIS_URL")}
    env.update(METERDESK_INSTANCE=str(instance), DATABASE_URL=database_url)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def one_line(result: subprocess.CompletedProcess) -> str:
    """The command's whole output, asserted to be a single line and no traceback."""
    text = (result.stdout + result.stderr).strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    return text


@pytest.fixture
def migrated(tmp_path):
    """A fresh database (SQLite file, or a PostgreSQL schema) built by `flask --app app db upgrade`."""
    with database(tmp_path) as url:
        url = url or f"sqlite:///{tmp_path / 'fresh.db'}"
        result = flask(["db", "upgrade"], tmp_path / "instance", url)
        assert result.returncode == 0, result.stderr[-2000:]
        yield url


def job_count(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(JobRun.__table__))
    finally:
        engine.dispose()


def test_an_unusable_database_is_one_line_and_status_1(tmp_path):
    instance = tmp_path / "instance"
    missing_folder = flask(["db", "upgrade"], instance, f"sqlite:///{tmp_path / 'no' / 'such' / 'x.db'}")
    assert missing_folder.returncode == 1
    assert "Cannot use the database" in one_line(missing_folder) and "does not exist" in missing_folder.stderr

    no_tables = flask(["run-billing", "--period", "2026-10"], instance, f"sqlite:///{tmp_path / 'empty.db'}")
    assert no_tables.returncode == 1
    assert "has no Meterdesk tables yet" in one_line(no_tables) and "db upgrade" in no_tables.stderr

    refused = flask(["db", "upgrade"], instance, "postgresql+psycopg://postgres:pw@127.0.0.1:1/meterdesk")
    assert refused.returncode == 1
    line = one_line(refused)
    assert "Cannot use the database postgresql+psycopg://postgres:***@127.0.0.1:1/meterdesk" in line
    assert "pw@" not in line and "Is PostgreSQL running" in line


@pytest.mark.skipif(not SERVER_DB, reason="needs the PostgreSQL server (DATABASE_URL)")
def test_a_missing_postgresql_database_says_how_to_create_it(tmp_path):
    url = sa.engine.make_url(SERVER_DB).set(database=f"meterdesk_missing_{os.getpid()}")
    for args in (["db", "upgrade"], ["create-user", "a@example.com", "--role", "admin", "--password", "pw-123456"]):
        result = flask(args, tmp_path / "instance", url.render_as_string(hide_password=False))
        assert result.returncode == 1
        line = one_line(result)
        assert f'database "{url.database}" does not exist' in line
        assert f"createdb -h {url.host} -p {url.port or 5432} -U {url.username} {url.database}" in line


def test_rejected_commands_are_one_line_and_record_no_job(tmp_path, migrated):
    instance = tmp_path / "instance"
    current = period_label(current_period_start())
    future = f"{int(current[:4]) + 1}-01"
    cases = [
        (["run-billing", "--period", current, "--finalize"], "has not ended yet"),
        (["run-billing", "--period", future], "is in the future"),
        (["export-csv", "--period", "2026-08", "--out", str(tmp_path / "x.zip")], "No billing lines for 2026-08"),
        (["export-csv", "--period", "2026-08", "--out", str(tmp_path / "nowhere" / "deep" / "x.zip")],
         "does not exist (it is not created for you)"),
    ]
    for args, words in cases:
        result = flask(args, instance, migrated)
        assert result.returncode != 0, (args, result.stdout, result.stderr)
        assert words in one_line(result), args
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "x.zip").exists()
    assert job_count(migrated) == 0


def test_a_commands_export_offers_no_download_and_a_pages_export_does(app, runner, admin_client, tmp_path):
    two_unit_types(app)
    assert runner.invoke(args=["run-billing", "--period", "2026-10"]).exit_code == 0
    out = tmp_path / "oct.zip"
    result = runner.invoke(args=["export-csv", "--period", "2026-10", "--out", str(out)])
    assert result.exit_code == 0 and out.is_file(), result.output
    with app.app_context():
        run = db.session.scalar(select(JobRun).where(JobRun.kind == "export"))
        assert run.status == "done" and run.result_path is None and str(out) in run.message
    status = admin_client.get(f"/admin/jobs/{run.id}").json
    assert status["download"] is None and str(out) in status["message"]
    page = admin_client.get("/admin/billingreading/?period=2026-10").get_data(as_text=True)
    assert 'job-download d-none"' in page.replace("\n", " ").replace("  ", " ") or "job-download d-none" in page


def test_import_app_and_flask_help_leave_the_heavy_modules_out(tmp_path):
    probe = (
        "import sys\n"
        "sys.argv = ['flask', '--app', 'app', '--help']\n"
        "from flask.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "REDIS_URL")}
    env["METERDESK_INSTANCE"] = str(tmp_path / "instance")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "  db  " in result.stdout.replace("db   ", "db  ") and "run-billing" in result.stdout
    assert "LOADED []" in result.stdout, result.stdout[-500:]
