"""gunicorn's settings file: gunicorn reads ./gunicorn.conf.py from the directory it starts in.

Once a worker has loaded the app, the objects made at start-up (modules, the app, SQLAlchemy's mappers, pydantic's
schemas: ~80k) are moved out of the garbage collector's reach with `gc.freeze()`: they live as long as the worker,
and the full collections that a request's garbage triggers no longer scan them each time. A 1,000-reading batch
went from 33.9 to 27.7 ms in one process (SQLite, collector shape; bench/ingest.py does the same in-process)."""
from __future__ import annotations

import gc


def post_worker_init(worker) -> None:
    """After the worker has loaded the app: collect once, then freeze what is left."""
    gc.collect()
    gc.freeze()
