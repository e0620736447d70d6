"""When the sweep must look at a running execution again: the re-arm of the due index.

A claim (``step_started``) and a worker's hand-over (``step_completed`` that sends the next
step's message) write no ``by_due`` entry: on the hot path most executions finish before any
entry of theirs comes due, so those index writes bought nothing. What keeps a crashed worker
or a lost message from being forgotten is this invariant:

    an active execution always has a ``by_due`` entry that comes due at or after the sweep's
    last visit of it.

The start writes one (its hand-over's grace), and so does every commit that takes an
execution back to running or hands over outside a worker's chain (operator actions, a
requeue, a delayed retry, a gate's time-out, a heartbeat). When an entry comes due, the
sweep either acts (a time-out, a re-send, a gate decision; that commit writes its own entry
or ends the execution) or finds that nothing is due yet; then it writes ONE entry on the
head for the moment the current thing comes due (``rearm_at``). So a claim that was never
reported is timed out at its deadline or lease, and a lost hand-over is re-sent a grace after
it, or at the execution's pending entry when that comes later (at most a hand-over grace or
a lease later); only a visit that finds nothing to do costs a write.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.domain.fold import ExecutionState
from chalicelib.domain.running import requeue_due
from chalicelib.domain.states import ExecutionStatus, StepState
from chalicelib.domain.timefmt import parse_iso

__all__ = ["rearm_at"]


def rearm_at(state: ExecutionState) -> datetime | None:
    """When the sweep must visit ``state`` next, or None when no re-arm is needed.

    None when the execution is not running (a waiting gate's ``approval_requested`` carries
    its time-out entry, a gate without one waits for a person, a failed execution for an
    operator, whose action commits its own entry), and when the current claim's lease was
    set by a heartbeat (that heartbeat's commit has its entry at the lease). Otherwise: a
    claimed step's deadline or lease, whichever is first; a queued step's ``requeue_due``.
    """
    if state.status != ExecutionStatus.RUNNING:
        return None
    step = state.current
    if step is None:
        return None
    if step.state == StepState.RUNNING and step.claimed:
        if step.lease_renewed:
            return None
        times = [parse_iso(t) for t in (step.deadline, step.lease_until) if t]
        return min(times) if times else None
    return requeue_due(state, step)
