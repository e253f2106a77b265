"""`flask --app app run-projections` and `run-provisioning`: the RQ jobs' code, in the foreground, with a progress bar."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from billing.periods import current_period_start, period_label
from jobs.runs import JobRefused, Progress, create_run, execute_run
from models import JobRun


def run_in_foreground(kind: str, parameters: dict, period: str | None, work) -> None:
    """Record a run (refused when one is active), execute `work` with a progress bar, exit 1 on failure."""
    try:
        run = create_run(kind, parameters, "command line", period)
    except JobRefused as exc:
        raise click.ClickException(str(exc)) from None
    with click.progressbar(length=100, label=f"{kind} run #{run.id}") as bar:
        def work_with_bar(job_run: JobRun, progress: Progress) -> str:
            def both(percent: int, message: str = "") -> None:
                progress(percent, message)
                bar.update(max(0, percent - bar.pos))

            return work(job_run, both)

        try:
            message = execute_run(run.id, work_with_bar)
        except Exception as exc:
            raise click.ClickException(f"{kind} run #{run.id} failed: {exc}") from None
        bar.update(100 - bar.pos)
    click.echo(message)


@click.command("run-projections")
@with_appcontext
def run_projections_command() -> None:
    """Project every enabled bucket for the current period."""
    from jobs.projections import projection_work

    period = period_label(current_period_start())
    run_in_foreground("projection", {"period": period}, period, projection_work)


@click.command("run-provisioning")
@with_appcontext
def run_provisioning_command() -> None:
    """Bind client assets to buckets made from their unit types' templates (auto-provision on)."""
    from jobs.provisioning import provisioning_work

    run_in_foreground("provisioning", {}, None, provisioning_work)


COMMANDS = (run_projections_command, run_provisioning_command)
