"""gunicorn.conf.py: gunicorn, started from the repo as README says, reads it, and a worker that has loaded the app
freezes its start-up heap (so a request's garbage collections stop scanning the app's ~80k long-lived objects)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import gc, sys
from gunicorn.app.wsgiapp import WSGIApplication
sys.argv = ["gunicorn", "-w", "2", "app:create_app()"]
settings = WSGIApplication().cfg
app = __import__("app").create_app({"SECRET_KEY": "t", "DATABASE_URL": "sqlite://"})
before = gc.get_freeze_count()
settings.post_worker_init(None)
print(before, gc.get_freeze_count(), settings.workers)
"""


def test_gunicorn_started_in_the_repo_reads_its_settings_and_a_worker_freezes_the_loaded_app():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    before, after, workers = map(int, done.stdout.split()[-3:])
    assert (before, workers) == (0, 2)
    assert after > 50_000
