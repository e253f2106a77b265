"""Page benchmark: demo data at 10x the defaults (400 clients, 15,000 assets, 13 months), then every page's time.

    python bench/pages.py [--scale 10] [--loads 9] [--db /tmp/meterdesk-bench.db] [--reuse]
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python bench/pages.py --scale 2

Serves the real app with werkzeug on 127.0.0.1 (threaded) and loads each page `--loads` times through `requests`
(logged in as an admin), after one warm-up load. For each page it prints the server time (measured in the app,
from before_request to after_request) as median and p95 (nearest rank), the client round trip median, and the
number of SQL statements of one request (SQLAlchemy before_cursor_execute). Grids are also loaded at 20 and 100
rows per page: a query count that differs between the two grows with the rows shown and is flagged.
Targets: every page under 300 ms p95; no query count that grows with the rows shown.
PostgreSQL runs in its own schema `bench_pages`; SQLite in the file given by --db.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from flask import g  # noqa: E402
from sqlalchemy import event, func, select  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

SCHEMA = "bench_pages"
PASSWORD = "bench-password-123"
EMAIL = "bench@example.com"
TARGET_MS = 300.0
GRIDS = ["/admin/client/", "/admin/asset/", "/admin/assets/new/", "/admin/assets/unassigned/",
         "/admin/assets/unbound/", "/admin/assets/disregarded/", "/admin/bucket/", "/admin/billingreading/",
         "/admin/projection/", "/admin/unittype/", "/admin/suppression/", "/admin/auditlog/", "/admin/apikey/",
         "/admin/user/"]


def p95(values: list[float]) -> float:
    """Nearest rank: the value at 1-based rank ceil(0.95·n) of the sorted values."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(0.95 * len(ordered))) - 1]


def database_url(args: argparse.Namespace) -> str:
    server = os.environ.get("DATABASE_URL", "")
    if not server:
        return f"sqlite:///{args.db}"
    engine = sa.create_engine(server)
    with engine.begin() as conn:
        if not args.reuse:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    engine.dispose()
    separator = "&" if "?" in server else "?"
    return f"{server}{separator}options=-csearch_path%3D{SCHEMA}"


def build_app(url: str, instance: str):
    from app import create_app

    settings = {"DATABASE_URL": url, "INSTANCE_DIR": instance, "SECRET_KEY": "bench", "API_RATE_LIMIT": "1000000 per minute"}
    if os.environ.get("REDIS_URL"):
        settings["REDIS_URL"] = os.environ["REDIS_URL"]
    return create_app(settings)


def load(app, scale: float) -> None:
    from web.auth import create_user
    from commands.demo_data import load_demo_data
    from extensions import db
    from models import Asset

    with app.app_context():
        db.create_all()
        if (db.session.scalar(select(func.count(Asset.id))) or 0) == 0:
            started = time.perf_counter()
            print(load_demo_data(clients=max(1, round(40 * scale)), assets=max(1, round(1500 * scale)), months=13))
            print(f"demo data loaded in {time.perf_counter() - started:.0f} s")
        create_user(EMAIL, PASSWORD, "admin")


def instrument(app) -> None:
    """Count SQL statements and time each request inside the app; report both in response headers."""
    from extensions import db

    state = threading.local()

    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def count(*_args, **_kwargs) -> None:
        state.queries = getattr(state, "queries", 0) + 1

    @app.before_request
    def start() -> None:
        state.queries = 0
        g.bench_started = time.perf_counter()

    @app.after_request
    def report(response):
        response.headers["X-Bench-Ms"] = f"{(time.perf_counter() - g.bench_started) * 1000:.2f}"
        response.headers["X-Bench-Queries"] = str(getattr(state, "queries", 0))
        return response


def sample_urls(app) -> dict[str, str]:
    """Record pages of a client with many buckets, an asset with readings, and the Over/Under variants."""
    from extensions import db
    from models import Asset, Bucket

    with app.app_context():
        client_id = db.session.scalar(select(Bucket.client_id).group_by(Bucket.client_id)
                                      .order_by(func.count().desc()).limit(1))
        asset_id = db.session.scalar(select(Asset.id).where(Asset.last_seen_at.is_not(None)).order_by(Asset.id).limit(1))
    return {
        "dashboard": "/admin/",
        "over/under": "/admin/over-under/",
        "over/under mixed": "/admin/over-under/?status=mixed",
        "over/under unit type": "/admin/over-under/?unit_type=1",
        "client page": f"/admin/clients/{client_id}",
        "asset page": f"/admin/assets/page/{asset_id}",
        "asset usage.json": f"/admin/assets/page/{asset_id}/usage.json",
    }


def login(base: str) -> requests.Session:
    session = requests.Session()
    html = session.get(f"{base}/login").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    response = session.post(f"{base}/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token},
                            allow_redirects=False)
    assert response.status_code == 302, f"login failed: {response.status_code}"
    return session


def measure(session: requests.Session, url: str, loads: int) -> dict:
    """Server and client times and the query count of `loads` loads after a warm-up (`error` if not a 200)."""
    warm = session.get(url)
    if warm.status_code != 200:
        return {"error": warm.status_code}
    server, client, queries = [], [], set()
    for _ in range(loads):
        started = time.perf_counter()
        response = session.get(url)
        client.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            return {"error": response.status_code}
        server.append(float(response.headers["X-Bench-Ms"]))
        queries.add(int(response.headers["X-Bench-Queries"]))
    return {"median": statistics.median(server), "p95": p95(server), "client": statistics.median(client),
            "queries": max(queries)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=10.0, help="multiple of the demo-data defaults (default 10)")
    parser.add_argument("--loads", type=int, default=9, help="measured loads per page (default 9)")
    parser.add_argument("--db", default=str(Path(tempfile.gettempdir()) / "meterdesk-bench.db"))
    parser.add_argument("--reuse", action="store_true", help="keep an existing bench database")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL") and not args.reuse and os.path.exists(args.db):
        for suffix in ("", "-wal", "-shm"):
            Path(args.db + suffix).unlink(missing_ok=True)

    instance = tempfile.mkdtemp(prefix="meterdesk-bench-")
    app = build_app(database_url(args), instance)
    load(app, args.scale)
    instrument(app)
    urls = sample_urls(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        session = login(base)
        rows, growing = [], []
        for name, url in urls.items():
            rows.append((name, url, measure(session, base + url, args.loads)))
        for url in GRIDS:
            small = measure(session, f"{base}{url}?page_size=20", max(3, args.loads // 3))
            result = measure(session, f"{base}{url}?page_size=100", args.loads)
            rows.append((url, url + "?page_size=100", result))
            if "error" not in result and "error" not in small and result["queries"] != small["queries"]:
                growing.append(f"{url}: {small['queries']} queries at 20 rows, {result['queries']} at 100")
    finally:
        server.shutdown()

    print(f"\n{'page':32} {'median ms':>10} {'p95 ms':>8} {'client ms':>10} {'queries':>8}")
    slow = []
    for name, _url, r in rows:
        if "error" in r:
            print(f"{name:32} HTTP {r['error']}")
            slow.append(name)
            continue
        flag = "  SLOW" if r["p95"] > TARGET_MS else ""
        print(f"{name:32} {r['median']:10.1f} {r['p95']:8.1f} {r['client']:10.1f} {r['queries']:8d}{flag}")
        if flag:
            slow.append(name)
    print(f"\n{len(rows)} pages, {args.loads} loads each; target p95 < {TARGET_MS:.0f} ms: "
          + ("all met" if not slow else f"missed by {', '.join(slow)}"))
    print("query counts growing with rows shown: " + ("none" if not growing else "; ".join(growing)))
    return 1 if slow or growing else 0


if __name__ == "__main__":
    sys.exit(main())
