"""Job status for the pages' progress bars, and the retry button of a failed run."""
from __future__ import annotations

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user

from extensions import db
from jobs.rights import Requester
from jobs.runs import JobRefused
from jobs.runs import retry_job
from models import JobRun
from views.base import HiddenView
from web.formatting import utc
from web.redirects import safe_next


def run_json(run: JobRun) -> dict:
    return {
        "id": run.id, "kind": run.kind, "parameters": run.parameters, "status": run.status,
        "progress": run.progress, "message": run.message, "requested_by": run.requested_by,
        "created_at": utc(run.created_at), "started_at": utc(run.started_at), "finished_at": utc(run.finished_at),
        "download": url_for("jobs.download", run_id=run.id) if downloadable(run) else None,
    }


def downloadable(run: JobRun) -> bool:
    """Only an export the app wrote to its export folder can be downloaded; a command's `--out` file stays where the
    operator put it (its message says where)."""
    return run.kind == "export" and run.status == "done" and bool(run.result_path)


class JobsView(HiddenView):
    @expose("/<int:run_id>")
    def status(self, run_id: int):
        run = db.session.get(JobRun, run_id) or abort(404)
        return jsonify(run_json(run))

    @expose("/<int:run_id>/retry", methods=["POST"])
    def retry(self, run_id: int):
        try:
            run = retry_job(run_id, Requester.user(current_user))
            flash(f"Job #{run.id} queued again.", "success")
        except (JobRefused, ValueError, LookupError) as exc:
            flash(str(exc), "error")
        return redirect(safe_next(request.referrer))

    @expose("/<int:run_id>/download")
    def download(self, run_id: int):
        from views.downloads import send_export

        run = db.session.get(JobRun, run_id) or abort(404)
        return send_export(run)
