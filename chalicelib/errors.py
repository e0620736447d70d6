"""Domain errors: one root, mapped to HTTP once, in ``chalicelib.api.boundary``.

Every module below the API raises these (never Chalice or botocore errors), so
that the same engine code serves HTTP routes, SQS workers and schedules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class SteplineError(Exception):
    """Root of every error the engine raises on purpose."""

    status = 500
    code = "InternalServerError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"Code": self.code, "Message": self.message}


@dataclass(frozen=True)
class FieldError:
    """One bad field: a dotted path into the request body and what is wrong."""

    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class ValidationError(SteplineError):
    """Bad input (400). Names each offending field."""

    status = 400
    code = "BadRequestError"

    def __init__(self, errors: list[FieldError] | FieldError, message: str | None = None) -> None:
        if isinstance(errors, FieldError):
            errors = [errors]
        self.errors = list(errors)
        text = message or "; ".join(f"{e.field}: {e.message}" for e in self.errors)
        super().__init__(text or "invalid request")

    def body(self) -> dict[str, Any]:
        return {**super().body(), "errors": [e.to_dict() for e in self.errors]}


class NotFound(SteplineError):
    status = 404
    code = "NotFoundError"


class Unauthorized(SteplineError):
    status = 401
    code = "UnauthorizedError"


class Forbidden(SteplineError):
    status = 403
    code = "ForbiddenError"


class Conflict(SteplineError):
    """The action does not fit the current state, or a concurrent writer won (409)."""

    status = 409
    code = "ConflictError"


class Refused(Conflict):
    """The state machine refuses a command: it does not fit the current state (409), it names a
    step the execution does not have (404), or it needs a higher role (403).

    Raised by the pure ``decide()``; as a ``SteplineError`` it reaches HTTP through the same
    boundary as every other error, with the status its flags give.
    """

    def __init__(self, message: str, *, not_found: bool = False, forbidden: bool = False) -> None:
        super().__init__(message)
        self.not_found, self.forbidden = not_found, forbidden
        if not_found:
            self.status, self.code = NotFound.status, NotFound.code
        elif forbidden:
            self.status, self.code = Forbidden.status, Forbidden.code


class UnknownEventType(SteplineError):
    """An execution's history holds an event type this release does not define (written by a
    newer release, or by hand): the fold stops rather than guess what the event meant."""

    def __init__(self, execution_id: str, seq: int, event_type: str) -> None:
        self.execution_id, self.seq, self.event_type = execution_id, seq, event_type
        super().__init__(
            f"execution {execution_id}: history event #{seq} has type {event_type!r}, which this release "
            "does not know; it cannot be replayed until a release that defines it is deployed"
        )


class TransitionConflict(Conflict):
    """A conditional write lost: the record moved on since it was read."""

    def __init__(self, entity: str, expected: str, actual: str | None = None) -> None:
        self.entity = entity
        self.expected = expected
        self.actual = actual
        detail = f" (found {actual})" if actual else ""
        super().__init__(f"{entity} changed concurrently: expected {expected}{detail}; reload and try again")


class StoreBusy(SteplineError):
    """The store refused a write for load, not for state: a transaction collided with another
    on a shared item, or requests were throttled. Callers retry with backoff; only when the
    retries run out does a client see 503 (never 409: nothing about the state clashed)."""

    status = 503
    code = "ServiceUnavailableError"


class HeadBehind(StoreBusy):
    """The worker's commit is stored but the head item could not follow it (throttled): the
    invocation fails so that the message is delivered again, and that delivery moves the head
    (``ExecutionService.repair_head``)."""


class PayloadTooLarge(SteplineError):
    status = 413
    code = "RequestEntityTooLargeError"
