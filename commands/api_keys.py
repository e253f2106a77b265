"""`flask --app app create-api-key`: a key for collectors and integrations, printed once."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from api.keys import create_api_key
from extensions import db


@click.command("create-api-key")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "ingest", "readonly"]), required=True)
@click.option("--client-id", type=int, default=None)
@with_appcontext
def create_api_key_command(name: str, role: str, client_id: int | None) -> None:
    """Create an API key and print it alone on the last line (it is not shown again)."""
    try:
        key, raw = create_api_key(name, role, client_id)
    except ValueError as exc:
        db.session.rollback()
        raise click.BadParameter(str(exc)) from None
    click.echo(f"API key {key.id} {key.name!r} ({key.role}{', client ' + str(client_id) if client_id else ''}); "
               "store it now, it is not shown again:")
    click.echo(raw)


COMMANDS = (create_api_key_command,)
