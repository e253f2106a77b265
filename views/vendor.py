"""plotly.js served from the installed plotly package (pages never load scripts from a CDN)."""
from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from flask import Blueprint, send_from_directory

PLOTLY_DIR = Path(find_spec("plotly").origin).resolve().parent / "package_data"  # found, not imported: start-up

bp = Blueprint("vendor", __name__)


@bp.route("/static/vendor/plotly.min.js")
def plotly_js():
    return send_from_directory(PLOTLY_DIR, "plotly.min.js", mimetype="text/javascript", max_age=86400)
