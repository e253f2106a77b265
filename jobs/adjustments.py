"""What posting late-usage adjustments does: JobRun parameters {"period": "YYYY-MM", "into": "YYYY-MM"}."""
from __future__ import annotations

from billing.adjustments import post_adjustments
from billing.periods import parse_period
from billing.run import Progress
from extensions import db
from models import JobRun


def adjustments_work(run: JobRun, progress: Progress) -> str:
    """Post the run's period's late differences into its `into` period; the run's closing message."""
    parameters = run.parameters or {}
    return post_adjustments(db.session, parse_period(parameters.get("period", "")),
                            parse_period(parameters.get("into", "")), progress=progress).message
