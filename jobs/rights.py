"""Who may start a run with given parameters: the one rule every start path (page, retry, API, command, schedule)
applies, and the refusals a start path answers with."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

API_KEY_REQUESTER = "api-key:"  # a run requested by an API key is recorded as requested by `api-key:<id>`
OPERATOR = "operator"  # the command line and rq cron: whoever runs them already holds the database and the queue
STARTERS = frozenset({OPERATOR, "admin", "staff"})
FINALIZERS = frozenset({OPERATOR, "admin"})


class JobRefused(Exception):
    """The run was not started: not allowed, parameters that cannot run, one of the same kind and period is
    already queued or running, or the queue is down."""


class JobNotAllowed(JobRefused):
    """The requester's role (or a key's client scope) does not allow this run."""


@dataclass(frozen=True, slots=True)
class Requester:
    """Who starts a run and with which rights: `name` is recorded as the run's `requested_by` (the audit actor);
    `role` is a user role (admin, staff, viewer), an API key role (admin, ingest, readonly) or `operator`;
    `client_id` is a client-scoped key's client."""

    name: str
    role: str
    client_id: int | None = None

    @classmethod
    def user(cls, user: Any) -> Requester:
        return cls(user.email, user.role)

    @classmethod
    def api_key(cls, key: Any) -> Requester:
        return cls(f"{API_KEY_REQUESTER}{key.id}", key.role, key.client_id)

    @classmethod
    def operator(cls, name: str) -> Requester:
        return cls(name, OPERATOR)


def finalizes(kind: str, parameters: dict[str, Any]) -> bool:
    return kind == "billing" and bool(parameters.get("finalize"))


def check_may_start(kind: str, parameters: dict[str, Any], requester: Requester) -> None:
    """Raise JobNotAllowed unless `requester` may start a `kind` run with `parameters`: every kind of run covers
    every client, so no client-scoped key may start one; admins, staff and the operator start runs; only admins
    and the operator finalize billing."""
    if requester.client_id is not None:
        raise JobNotAllowed(f"A client-scoped key may not start {kind} runs: they cover every client.")
    if requester.role not in STARTERS:
        raise JobNotAllowed(f"The role {requester.role!r} may not start {kind} runs.")
    if finalizes(kind, parameters) and requester.role not in FINALIZERS:
        period = parameters.get("period", "")
        raise JobNotAllowed(f"Only an admin may finalize billing: finalizing {period} was refused. "
                            f"Ask an admin, or run billing for {period} without finalizing.")


def may_start(kind: str, parameters: dict[str, Any], requester: Requester) -> bool:
    try:
        check_may_start(kind, parameters, requester)
    except JobNotAllowed:
        return False
    return True
