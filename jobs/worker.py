"""The app's RQ worker: `flask --app app worker` runs it inside the app context, so every job runs in the app."""
from __future__ import annotations

from collections.abc import Sequence

from flask import Flask
from redis import Redis
from rq import Queue, Worker
from rq.worker import BaseWorker

from extensions import db
from jobs.redis import redis_url


class AppWorker(Worker):
    """rq's forking worker; each work horse (a fork) opens its own database connections, never the parent's."""

    def main_work_horse(self, job, queue) -> None:
        db.engine.dispose(close=False)
        super().main_work_horse(job, queue)


def run_worker(app: Flask, queues: Sequence[str] = (), *, burst: bool = False, with_scheduler: bool = False,
               logging_level: str | None = None, worker_class: type[BaseWorker] = AppWorker) -> bool:
    """Work the app's queue (or `queues`) inside `app`'s context until stopped (or, with `burst`, until empty);
    `with_scheduler` also runs RQ's scheduler of enqueue_at/enqueue_in jobs. True when it ran any job."""
    with app.app_context():
        # its own connection without the web's short socket timeout: the worker blocks on the queue for minutes
        connection = Redis.from_url(redis_url(app))
        names = list(queues) or [app.config["RQ_QUEUE"]]
        worker = worker_class([Queue(name, connection=connection) for name in names], connection=connection)
        return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level=logging_level)
