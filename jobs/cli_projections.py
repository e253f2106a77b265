"""`flask --app app run-projections` and `run-provisioning`: the RQ jobs' code, in the foreground, with a progress bar."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from billing.periods import current_period_start, period_label
from commands.jobs import run_foreground


@click.command("run-projections")
@with_appcontext
def run_projections_command() -> None:
    """Project every enabled bucket for the current period."""
    from jobs.projections import projection_work

    period = period_label(current_period_start())
    run_foreground("projection", {"period": period}, period, projection_work)


@click.command("run-provisioning")
@with_appcontext
def run_provisioning_command() -> None:
    """Bind client assets to buckets made from their unit types' templates (auto-provision on)."""
    from jobs.provisioning import provisioning_work

    run_foreground("provisioning", {}, None, provisioning_work)


COMMANDS = (run_projections_command, run_provisioning_command)
