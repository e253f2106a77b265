"""Keeps `make run`'s processes up: restarts a worker or `rq cron` that exits, and our embedded Redis when it dies.

The web app never waits on them, so it keeps serving pages while Redis or a worker is away. Only the web app
exiting (or Ctrl-C / SIGTERM, handled by the caller) stops everything.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

BACKOFF_MAX = 30.0  # seconds between starts of a child that keeps exiting
STABLE_AFTER = 30.0  # a child that ran this long starts again at once after an exit, and its backoff starts over
REDIS_CHECK_EVERY = 1.0
STOP_WAIT = 1.3  # seconds the children get to exit after SIGTERM before SIGKILL (all stopped within 3 s)


def say(message: str) -> None:
    print(f"devserver: {message}", flush=True)


@dataclass
class Child:
    """One supervised process; `restart` False means its exit ends the whole run (the web app)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    restart: bool = True
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    start_at: float | None = None  # when to start it again after an exit
    recycling: bool = False  # asked to exit (Redis came back): start again at once

    def start(self) -> None:
        """Start it in a process group of its own, so what it forks can be cleaned up with it (`reap`)."""
        self.process = subprocess.Popen(self.argv, env=self.env, process_group=0)
        self.started_at = time.monotonic()
        self.start_at = None

    def reap(self) -> None:
        """Kill what an exited child left in its group: a killed rq worker's scheduler or work horse keeps the
        worker's Redis connections open, and Redis would hand the next job to its dead blocking pop."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(self, sig: int) -> None:
        if self.running():
            self.process.send_signal(sig)

    def backoff(self, now: float) -> float:
        """Seconds to wait before starting it again: 0 after a requested exit or a long run, else 1, 2, 4… 30."""
        if self.recycling or now - self.started_at >= STABLE_AFTER:
            self.failures = 0
            return 0.0
        delay = min(BACKOFF_MAX, 2.0 ** self.failures)
        self.failures += 1
        return delay


@dataclass
class Supervisor:
    """The children of `make run` and the Redis they share; `restart_redis` starts our embedded server (None when
    Redis is someone else's: then it is only watched)."""

    children: list[Child]
    redis_url: str
    restart_redis: Callable[[], object] | None = None
    redis_run_id: str | None = None
    redis_away: bool = False
    next_redis_check: float = 0.0
    _redis: redis.Redis | None = field(default=None, repr=False)

    def start(self) -> None:
        for child in self.children:
            child.start()

    def run(self, tick: float = 0.5) -> int:
        """Supervise until the web app exits (its exit code); Ctrl-C / SIGTERM end it as KeyboardInterrupt."""
        while True:
            code = self.check()
            if code is not None:
                return code
            time.sleep(tick)

    def check(self) -> int | None:
        """One round: watch Redis, restart exited children when due; the exit code of a child that ends the run."""
        now = time.monotonic()
        if now >= self.next_redis_check:
            self.watch_redis()
            self.next_redis_check = now + REDIS_CHECK_EVERY
        for child in self.children:
            if child.process is None or child.running():
                continue
            if child.start_at is None:  # an exit not seen before
                child.reap()
                code = child.process.returncode
                if not child.restart:
                    say(f"{child.name} exited with {code}; stopping")
                    return code
                delay = child.backoff(now)
                child.start_at = now + delay
                if not child.recycling:
                    say(f"{child.name} exited with {code}; starting it again in {delay:.0f} s")
                child.recycling = False
            if now >= child.start_at:
                child.start()
        return None

    def watch_redis(self) -> None:
        """Start our Redis again when it stopped; when Redis is back as a new server (restarted: it forgot every
        registration), restart the worker and rq cron so they register again (the health panel counts registered
        workers, and a worker that outlived its server is never registered again)."""
        run_id = self._run_id()
        if run_id is None and self.restart_redis is not None:
            try:
                self.restart_redis()
            except Exception as exc:  # the next round tries again
                say(f"could not start the embedded Redis again: {exc}")
            else:
                say("the embedded Redis had stopped: started it again (it kept no data)")
                run_id = self._run_id()
        if run_id is None:
            if not self.redis_away:
                self.redis_away = True
                say("Redis is away: pages keep serving; jobs wait until it is back")
            return
        if run_id != self.redis_run_id and (self.redis_run_id is not None or self.redis_away):
            say("Redis is back as a new server: restarting the worker and rq cron so they register again")
            for child in self.children:
                if child.restart and child.running():
                    child.recycling = True
                    child.send(signal.SIGTERM)
        elif self.redis_away:
            say("Redis is back")
        self.redis_away, self.redis_run_id = False, run_id

    def _run_id(self) -> str | None:
        """The Redis server's run id (new at every start), or None when it does not answer."""
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.redis_url, socket_connect_timeout=1, socket_timeout=1,
                                               retry=Retry(NoBackoff(), 0))
        try:
            return self._redis.info("server")["run_id"]
        except (redis.RedisError, OSError, KeyError):
            return None

    def stop(self) -> None:
        """SIGTERM every child (rq: warm shutdown), then SIGKILL what is still running after STOP_WAIT seconds.
        SIGTERM, not SIGINT: a shell starts background jobs with SIGINT ignored, and children inherit that."""
        running = [child for child in self.children if child.running()]
        for child in running:
            child.send(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT
        for child in running:
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            child.reap()
            child.process.wait()
