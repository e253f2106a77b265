"""`flask --app app worker`: the RQ worker, inside the app context (as Redash's `manage rq worker` does)."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from jobs.worker import run_worker


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--with-scheduler", is_flag=True, help="Also run RQ's scheduler of delayed jobs.")
@click.option("--logging-level", default="INFO", show_default=True, help="The worker's log level.")
@with_appcontext
def worker_command(queues: tuple[str, ...], burst: bool, with_scheduler: bool, logging_level: str) -> None:
    """Run jobs from the app's queue (RQ_QUEUE, or QUEUES) with the app's database and Redis."""
    run_worker(current_app._get_current_object(), queues, burst=burst, with_scheduler=with_scheduler,
               logging_level=logging_level)


COMMANDS = (worker_command,)
