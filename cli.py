"""`flask --app app …` commands: users, API keys and demo data (billing commands live in jobs/cli.py)."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from extensions import db


@click.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "staff", "viewer"]), required=True)
@click.option("--password", required=True)
@with_appcontext
def create_user_command(email: str, role: str, password: str) -> None:
    """Create a login (or reset its password and role)."""
    from auth import create_user

    try:
        user = create_user(email, password, role)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(f"user {user.email} ({user.role}) ready")


@click.command("create-api-key")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "ingest", "readonly"]), required=True)
@click.option("--client-id", type=int, default=None)
@with_appcontext
def create_api_key_command(name: str, role: str, client_id: int | None) -> None:
    """Create an API key and print it alone on the last line (it is not shown again)."""
    from keys import create_api_key

    try:
        key, raw = create_api_key(name, role, client_id)
    except ValueError as exc:
        db.session.rollback()
        raise click.BadParameter(str(exc)) from None
    click.echo(f"API key {key.id} {key.name!r} ({key.role}{', client ' + str(client_id) if client_id else ''}); "
               "store it now, it is not shown again:")
    click.echo(raw)


@click.command("demo-data")
@click.option("--clients", type=click.IntRange(1, 10000), default=40, show_default=True)
@click.option("--assets", type=click.IntRange(1, 1000000), default=1500, show_default=True)
@click.option("--months", type=click.IntRange(1, 36), default=13, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@with_appcontext
def demo_data_command(clients: int, assets: int, months: int, seed: int) -> None:
    """Load a realistic provider: clients, unit types, buckets, readings and billed periods."""
    from demo_data import load_demo_data

    summary = load_demo_data(clients=clients, assets=assets, months=months, seed=seed, echo=click.echo)
    click.echo(summary)


def register_commands(app: Flask) -> None:
    for command in (create_user_command, create_api_key_command, demo_data_command):
        app.cli.add_command(command)
    from jobs.cli_projections import COMMANDS as projection_commands

    for command in projection_commands:
        app.cli.add_command(command)
    from jobs.cli import COMMANDS as billing_commands

    for command in billing_commands:
        app.cli.add_command(command)
    from commands.readings import COMMANDS as readings_commands

    for command in readings_commands:
        app.cli.add_command(command)
