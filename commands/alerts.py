"""`flask --app app detect-alerts`: silent assets, usage anomalies and projected-over buckets, here and now."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from jobs.alerts import run_detection


@click.command("detect-alerts")
@with_appcontext
def detect_alerts_command() -> None:
    """Find silent assets, usage anomalies and buckets projected over commit; fire their webhook events."""
    click.echo(run_detection())


COMMANDS = (detect_alerts_command,)
