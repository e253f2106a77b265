"""`flask --app app run-billing`, `export-csv`, `run-projections` and `run-provisioning`: the jobs' code, run here in
the foreground (as the operator) with a progress bar."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from billing.periods import current_period_start, parse_period, period_label
from extensions import db
from jobs.rights import JobRefused, Requester, check_may_start
from jobs.runs import check_parameters, latest_run, start_job
from models import JobRun

OPERATOR = Requester.operator("command line")


def checked_period(text: str) -> str:
    try:
        return period_label(parse_period(text))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None


def run_foreground(kind: str, parameters: dict[str, Any], period: str | None, **options: Any) -> str:
    """Start a run as the operator and execute it here with a progress bar; a refusal or a failure is an error.
    The parameters are checked before the bar shows, so a refusal prints its one line and nothing else."""
    db.session.execute(select(JobRun.id).limit(1))  # an unusable database is its one line, before the bar shows
    try:
        check_may_start(kind, parameters, OPERATOR)
        check_parameters(kind, parameters)
    except JobRefused as exc:
        raise click.ClickException(str(exc)) from None
    label = f"{kind} {period}" if period else kind
    with click.progressbar(length=100, label=label) as bar:
        def show(percent: int, message: str = "") -> None:
            bar.update(max(0, percent - bar.pos))

        try:
            run = start_job(kind, parameters, OPERATOR, period, here=True, progress=show, options=options)
        except JobRefused as exc:
            raise click.ClickException(str(exc)) from None
        except DBAPIError:
            raise
        except Exception as exc:
            db.session.rollback()
            failed = latest_run(kind)
            raise click.ClickException(f"{kind} run #{failed.id if failed else '?'} failed: {exc}") from None
        bar.update(100 - bar.pos)
    click.echo(run.message)
    return run.message


@click.command("run-billing")
@click.option("--period", required=True, help="The month to bill, YYYY-MM.")
@click.option("--finalize", is_flag=True, help="Finalize the lines: they never change afterwards.")
@with_appcontext
def run_billing_command(period: str, finalize: bool) -> None:
    """Bill every enabled bucket for a period (replacing its unfinalized lines)."""
    label = checked_period(period)
    run_foreground("billing", {"period": label, "finalize": finalize}, label)


@click.command("export-csv")
@click.option("--period", required=True, help="The billed month to export, YYYY-MM.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The zip file to write.")
@with_appcontext
def export_csv_command(period: str, out: Path) -> None:
    """Export a period's billing lines: a zip with one CSV per unit type."""
    label = checked_period(period)
    if not out.parent.is_dir():
        raise click.ClickException(f"--out: the folder {out.parent} does not exist (it is not created for you).")
    run_foreground("export", {"period": label}, label, out=out)


@click.command("run-projections")
@with_appcontext
def run_projections_command() -> None:
    """Project every enabled bucket for the current period."""
    period = period_label(current_period_start())
    run_foreground("projection", {"period": period}, period)


@click.command("run-provisioning")
@with_appcontext
def run_provisioning_command() -> None:
    """Bind client assets to buckets made from their unit types' templates (auto-provision on)."""
    run_foreground("provisioning", {}, None)


COMMANDS = (run_billing_command, export_csv_command, run_projections_command, run_provisioning_command)
