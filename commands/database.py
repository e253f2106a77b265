"""The database side of every command: `flask --app app db …` (Flask-Migrate, imported only when a `db` command runs,
so the other commands start fast) and one clear line, never a traceback, when the database cannot be reached, does
not exist or has no tables yet."""
from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

UPGRADE_HINT = "run `flask --app app db upgrade` first"
UNDEFINED_TABLE = "42P01"  # PostgreSQL's SQLSTATE for a missing table


def shown_url(url: str) -> str:
    """A database URL fit to print: its password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unreadable DATABASE_URL)"


def database_problem(exc: BaseException, url: str) -> str | None:
    """One line saying what is wrong with the database behind `exc`, or None when `exc` is not about reaching it."""
    if not isinstance(exc, (OperationalError, ProgrammingError)):
        return None
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = detail[0] if detail else type(exc).__name__
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if sqlstate == UNDEFINED_TABLE or first.startswith("no such table"):
        return f"The database {shown_url(url)} has no Meterdesk tables yet ({first}): {UPGRADE_HINT}."
    if isinstance(exc, ProgrammingError):
        return None
    hint = create_hint(url, first)
    return f"Cannot use the database {shown_url(url)}: {first}{hint}"


def create_hint(url: str, detail: str) -> str:
    """What to do next, for the common cases: a PostgreSQL database that does not exist, a server that is down."""
    try:
        parsed = make_url(url)
    except Exception:
        return ". Check DATABASE_URL."
    if parsed.get_backend_name() == "postgresql":
        if "does not exist" in detail and parsed.database:
            return (f". Create it (createdb -h {parsed.host or '127.0.0.1'} -p {parsed.port or 5432} "
                    f"-U {parsed.username or 'postgres'} {parsed.database}), then run `flask --app app db upgrade`.")
        return ". Is PostgreSQL running there, and is DATABASE_URL right?"
    if parsed.database and not Path(parsed.database).parent.is_dir():
        return f" (the folder {Path(parsed.database).parent} does not exist). Check DATABASE_URL."
    return ". Check DATABASE_URL."


def guarded(callback: Callable[..., Any], url: Callable[[], str]) -> Callable[..., Any]:
    """`callback` with a database it cannot use turned into one line on stderr and exit status 1."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except DBAPIError as exc:
            problem = database_problem(exc, url())
            if problem is None:
                raise
            raise click.ClickException(problem) from None

    return run


class MigrateConfig:
    """What Flask-Migrate keeps in `app.extensions["migrate"]` (migrations/env.py reads `db` and `configure_args`),
    with its Migrate object made on first use."""

    def __init__(self, db: Any, directory: str, **configure_args: Any) -> None:
        self.db, self.directory, self.configure_args = db, directory, configure_args
        self._migrate: Any = None

    @property
    def migrate(self) -> Any:
        if self._migrate is None:
            from flask_migrate import Migrate

            self._migrate = Migrate(db=self.db, directory=self.directory, **self.configure_args)
        return self._migrate

    @property
    def metadata(self) -> Any:
        return self.db.metadata


class _GuardedGroup(click.Group):
    """A click group whose commands answer an unusable database with one line."""

    def __init__(self, url: Callable[[], str], **attrs: Any) -> None:
        super().__init__(**attrs)
        self._url = url

    def invoke(self, ctx: click.Context) -> Any:
        return guarded(super().invoke, self._url)(ctx)


class MigrateCommands(click.Group):
    """`flask --app app db …`: Flask-Migrate's commands (alembic), imported when one of them is asked for; a
    database that cannot be used is one line and exit status 1."""

    def __init__(self, url: Callable[[], str]) -> None:
        super().__init__("db", help="Create or migrate the schema (Alembic): `db upgrade`.")
        self._url = url
        self._group: click.Group | None = None

    def _real(self) -> click.Group:
        if self._group is None:
            from flask_migrate.cli import db as group

            self._group = _GuardedGroup(self._url, name=self.name, commands=group.commands, callback=group.callback,
                                        params=group.params, help=group.help)
        return self._group

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._real().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._real().get_command(ctx, name)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        return self._real().make_context(info_name, args, parent=parent, **extra)


def init_database_commands(app: Flask, db: Any, directory: str) -> None:
    """Register `db …` (lazily) and guard every command the app has so far against an unusable database."""
    url = lambda: app.config.get("SQLALCHEMY_DATABASE_URI", "")  # noqa: E731
    app.extensions["migrate"] = MigrateConfig(db, directory, compare_type=True, render_as_batch=True)
    for command in app.cli.commands.values():
        if command.callback is not None:
            command.callback = guarded(command.callback, url)
    app.cli.add_command(MigrateCommands(url))
