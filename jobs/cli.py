"""`flask --app app run-billing` and `export-csv`: the RQ jobs' code, in the foreground, with a progress bar."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import click
from flask.cli import with_appcontext

from billing.periods import parse_period, period_label
from jobs.registry import record_run
from jobs.rights import Requester
from jobs.runs import JobRefused, Progress, execute_run
from models import JobRun


def checked_period(text: str) -> str:
    try:
        return period_label(parse_period(text))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None


def run_foreground(kind: str, parameters: dict, period: str | None, work: Callable[[JobRun, Progress], str]) -> str:
    """Record a run as the operator (refused when its parameters cannot run or one of the same kind and period is
    active) and execute `work` with a progress bar."""
    try:
        run = record_run(kind, parameters, Requester.operator("command line"), period)
    except JobRefused as exc:
        raise click.ClickException(str(exc)) from None
    label = f"{kind} {period}" if period else kind
    with click.progressbar(length=100, label=f"{label} (job #{run.id})") as bar:
        def with_bar(job_run: JobRun, progress: Progress) -> str:
            def both(percent: int, message: str = "") -> None:
                progress(percent, message)
                bar.update(max(0, percent - bar.pos))

            return work(job_run, both)

        try:
            message = execute_run(run.id, with_bar)
        except Exception as exc:
            raise click.ClickException(f"{kind} run #{run.id} failed: {exc}") from None
        bar.update(100 - bar.pos)
    click.echo(message)
    return message


@click.command("run-billing")
@click.option("--period", required=True, help="The month to bill, YYYY-MM.")
@click.option("--finalize", is_flag=True, help="Finalize the lines: they never change afterwards.")
@with_appcontext
def run_billing_command(period: str, finalize: bool) -> None:
    """Bill every enabled bucket for a period (replacing its unfinalized lines)."""
    from jobs.billing import billing_work

    label = checked_period(period)
    run_foreground("billing", {"period": label, "finalize": finalize}, label, billing_work)


@click.command("export-csv")
@click.option("--period", required=True, help="The billed month to export, YYYY-MM.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The zip file to write.")
@with_appcontext
def export_csv_command(period: str, out: Path) -> None:
    """Export a period's billing lines: a zip with one CSV per unit type."""
    from jobs.export import export_work

    label = checked_period(period)
    run_foreground("export", {"period": label}, label, partial(export_work, out=out))


@click.command("post-adjustments")
@click.option("--period", required=True, help="The finalized month whose late usage to bill, YYYY-MM.")
@click.option("--into", "into", default=None, help="The open month to post into, YYYY-MM (default: the current one).")
@with_appcontext
def post_adjustments_command(period: str, into: str | None) -> None:
    """Post a finalized period's late usage as adjustment lines into an open period."""
    from billing.periods import current_period_start
    from jobs.adjustments import adjustments_work

    label = checked_period(period)
    target = period_label(current_period_start()) if into is None else checked_period(into)
    run_foreground("adjustments", {"period": label, "into": target}, label, adjustments_work)


COMMANDS = (run_billing_command, export_csv_command, post_adjustments_command)
