"""`flask --app app create-partitions`, `archive-readings`, `restore-readings` and `seal-reading-days`: readings at
scale."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import DBAPIError

from billing.archive import ArchiveRefused, archivable_months, archive_month, archive_refusal, restore_file
from billing.periods import current_period_start, parse_period, period_label
from database.partitions import AHEAD, create_partitions, months_ahead, partitioned
from database.reading_days import seal_ended_days, sealed_before
from extensions import db


@click.command("create-partitions")
@click.option("--ahead", type=click.IntRange(0, 24), default=AHEAD, show_default=True,
              help="Months after the current one to create.")
@with_appcontext
def create_partitions_command(ahead: int) -> None:
    """PostgreSQL: create the monthly partitions of readings for this month and the next ones (idempotent)."""
    if not partitioned(db.session):
        click.echo("readings is not partitioned on this database (SQLite keeps one table); nothing to do")
        return
    created = create_partitions(db.session, months_ahead(ahead=ahead))
    click.echo(f"created {', '.join(created)}" if created else "all partitions exist already")


@click.command("archive-readings")
@click.option("--before", required=True, help="Archive the finalized months before this one, YYYY-MM.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The directory to write readings-YYYY-MM.csv.gz files into.")
@with_appcontext
def archive_readings_command(before: str, out: Path) -> None:
    """Write each finalized month's readings before --before to a file in --out and remove them (lines stay).

    Load a file back with `flask --app app restore-readings FILE`."""
    try:
        cutoff = parse_period(before)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--before") from None
    if cutoff > current_period_start():
        raise click.BadParameter(f"{period_label(cutoff)} is after the current month: only ended months can be "
                                 "archived", param_hint="--before")
    archived, skipped = 0, []
    for month in archivable_months(db.session, cutoff):
        reason = archive_refusal(db.session, month)
        if reason:
            skipped.append(reason)
            click.echo(f"skipped {reason}")
            continue
        try:
            result = archive_month(db.session, month, out)
        except ArchiveRefused as exc:
            skipped.append(str(exc))
            click.echo(f"skipped {exc}")
            continue
        except (DBAPIError, OSError) as exc:
            raise click.ClickException(f"archiving {period_label(month)} stopped, its readings are kept; run the "
                                       f"command again to finish it: {failure(exc)}") from None
        archived += 1
        click.echo(f"archived {result.period}: {result.readings:,} readings -> {result.path} (sha256 {result.sha256})")
    if skipped and not archived:
        raise click.ClickException(f"nothing archived before {period_label(cutoff)}: " + "; ".join(skipped))
    if not skipped and not archived:
        click.echo(f"no readings before {period_label(cutoff)} to archive")


def failure(exc: DBAPIError | OSError) -> str:
    """One line for an operator: the driver's message and, for the database, the statement that met it."""
    if isinstance(exc, DBAPIError):
        statement = (exc.statement or "").strip().split("\n", 1)[0][:80]
        message = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
        return f"{message} (in {statement})"
    return str(exc)


@click.command("restore-readings")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def restore_readings_command(files: tuple[Path, ...]) -> None:
    """Load archive files (readings-YYYY-MM.csv.gz) back into readings; their months can be billed again."""
    for path in files:
        try:
            result = restore_file(db.session, path)
        except ArchiveRefused as exc:
            raise click.ClickException(str(exc)) from None
        note = f" ({result.skipped:,} skipped: repeats, or assets or unit types deleted since)" if result.skipped else ""
        click.echo(f"restored {result.period}: {result.restored:,} of {result.rows:,} readings{note}")


@click.command("seal-reading-days")
@with_appcontext
def seal_reading_days_command() -> None:
    """Seal the ended days (all but yesterday and today) into reading_days, as the nightly job does: the first run
    after an upgrade counts the whole history, one day per transaction."""
    with click.progressbar(length=100, label="sealing days") as bar:
        days = seal_ended_days(db.session, lambda percent, _: bar.update(max(0, percent - bar.pos)))
    horizon = sealed_before(db.session)
    click.echo(f"sealed {days} day(s); every day before {horizon:%Y-%m-%d} is sealed")


COMMANDS = (create_partitions_command, archive_readings_command, restore_readings_command, seal_reading_days_command)
