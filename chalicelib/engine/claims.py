"""A worker's claim on a side-effecting step, when the commit that carries it answers with an error.

A claim commit can be stored and still answer with an error (a 5xx or a timeout after the
write: the answer is lost). The worker cannot tell that from a write that did not happen,
and a duplicate delivery of the same message would have written the same events, so each
claim carries a token only its worker knows. After an error the worker reads the history:
when the attempt is claimed with its token, the claim landed and it runs the step; when not,
it leaves the attempt to whoever claimed it (or to the message's next delivery).

Without this, a lost answer left the attempt claimed by nobody running it until the sweep
timed it out, and the side-effect ledger entry stored with the claim then made the retry
wait for an operator's replay-or-rerun choice.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import replace

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from chalicelib.backoff import Backoff
from chalicelib.domain.machine import Event, ExecutionState
from chalicelib.domain.states import StepState
from chalicelib.domain.vocabulary import EventType
from chalicelib.engine.budget import Budget
from chalicelib.engine.executions import ExecutionService
from chalicelib.errors import NotFound, StoreBusy

log = logging.getLogger("stepline.runner")

#: The claim's detail that names its worker (``StepView.claim``).
CLAIM = "claim"
#: Reads of the history before the worker gives the attempt up (each after a jittered pause).
READ_TRIES = 6
#: Time kept in hand after the reads, for the invocation to end cleanly.
RESERVE_SECONDS = 5.0
_STORE_ERRORS = (StoreBusy, PynamoDBException, ClientError, BotoCoreError)


def new_token() -> str:
    return secrets.token_hex(6)


def tagged(events: Sequence[Event], token: str) -> tuple[Event, ...]:
    """``events`` with ``token`` in the details of their ``step_started`` (the claim)."""
    return tuple(
        replace(e, details={**e.details, CLAIM: token}) if e.type == EventType.STEP_STARTED else e for e in events
    )


def landed(
    executions: ExecutionService,
    execution_id: str,
    step_id: str,
    attempt: int,
    token: str,
    budget: Budget,
    sleep: Callable[[float], None],
) -> ExecutionState | None:
    """The stored execution when this worker's claim (``token``) is in it and still running, else None."""
    backoff = Backoff(sleep)
    while True:
        try:
            state = executions.load(execution_id)
        except NotFound:
            return None
        except _STORE_ERRORS as error:
            log.warning("reading %s after a failed claim commit: %s", execution_id, error)
            if backoff.tries + 1 >= READ_TRIES or not backoff.wait(budget, RESERVE_SECONDS):
                return None
            continue
        step = state.step(step_id)
        mine = step.claim == token and step.attempt == attempt and step.state == StepState.RUNNING
        log.info("claim of %s#%s %s despite the store's error", step_id, attempt, "landed" if mine else "not stored")
        return state if mine else None
