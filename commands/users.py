"""`flask --app app create-user`: a login for staff."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from web.auth import create_user


@click.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "staff", "viewer"]), required=True)
@click.option("--password", required=True)
@with_appcontext
def create_user_command(email: str, role: str, password: str) -> None:
    """Create a login (or reset its password and role)."""
    try:
        user = create_user(email, password, role)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(f"user {user.email} ({user.role}) ready")


COMMANDS = (create_user_command,)
