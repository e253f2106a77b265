"""`flask --app app post-adjustments`: a finalized period's late usage posted as adjustment lines, in the foreground
(the same code as the `adjustments` job)."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from billing.periods import current_period_start, period_label
from commands.jobs import checked_period, run_foreground


@click.command("post-adjustments")
@click.option("--period", required=True, help="The finalized month whose late usage to bill, YYYY-MM.")
@click.option("--into", "into", default=None, help="The open month to post into, YYYY-MM (default: the current one).")
@with_appcontext
def post_adjustments_command(period: str, into: str | None) -> None:
    """Post a finalized period's late usage as adjustment lines into an open period."""
    label = checked_period(period)
    target = period_label(current_period_start()) if into is None else checked_period(into)
    run_foreground("adjustments", {"period": label, "into": target}, label)


COMMANDS = (post_adjustments_command,)
