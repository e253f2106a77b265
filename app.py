"""The Meterdesk application factory: `flask --app app …` runs every command."""
from __future__ import annotations

from pathlib import Path

from flask import Flask, redirect, url_for
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.engine import Engine

from database import audit  # noqa: F401  (registers the audit session events)
from database import integrity  # noqa: F401  (registers the delete guard)
from database import triggers  # noqa: F401  (creates the finalized-line triggers with the tables)
import billing.terms  # noqa: F401  (bucket commit and price writes become contract terms)
from config import BASE_DIR, build_config
from database.deadline import SQLITE_BUSY_MS
from extensions import csrf, db, login_manager
from web.formatting import FILTERS
from web.security import init_security


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """WAL, a busy timeout and foreign keys for every SQLite connection."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def create_app(overrides: dict | None = None) -> Flask:
    settings = build_config(overrides)
    app = Flask(__name__, instance_path=settings["INSTANCE_DIR"], instance_relative_config=False)
    app.config.update(settings)

    db.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see this page."
    csrf.init_app(app)
    app.jinja_env.filters.update(FILTERS)
    init_security(app)

    from web.auth import bp as auth_bp
    from commands import register_commands
    from views import init_admin

    app.register_blueprint(auth_bp)
    from web.health_view import bp as health_bp

    app.register_blueprint(health_bp)
    init_admin(app)
    from api import init_api

    init_api(app)
    register_commands(app)
    from commands.database import init_database_commands

    init_database_commands(app, db, str(Path(BASE_DIR) / "migrations"))

    @app.before_request
    def name_the_actor() -> None:
        from database.audit import set_actor

        if current_user.is_authenticated:
            set_actor(user_id=current_user.id)

    @app.route("/")
    def home():
        return redirect(url_for("admin.index"))

    @app.route("/favicon.ico")
    def favicon():
        return app.send_static_file("favicon.svg")

    return app
