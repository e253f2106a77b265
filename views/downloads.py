"""Serving a finished export: only files inside the export folder, never a path from the request."""
from __future__ import annotations

from pathlib import Path

from flask import abort, current_app, send_file

from models import JobRun


def send_export(run: JobRun):
    if run.kind != "export" or run.status != "done" or not run.result_path:
        abort(404)
    root = Path(current_app.config["EXPORT_DIR"]).resolve()
    path = (root / Path(run.result_path).name).resolve()
    if path.parent != root or not path.is_file():
        abort(404)
    return send_file(path, mimetype="application/zip", as_attachment=True, download_name=path.name)
