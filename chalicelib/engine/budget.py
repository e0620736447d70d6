"""Time budgets and jittered backoff for the worker.

A worker chains steps while its invocation has time left: the Lambda's remaining time and
the message's visibility, whichever ends first, less the next step's time-out and a margin.
Store retries wait with "full jitter" exponential backoff (``chalicelib.backoff``: a random
wait between 0 and the current cap, the cap doubling), and never past the budget.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# re-exported: the engine's modules take their backoff from here, beside the budget it spends
from chalicelib.backoff import Backoff as Backoff

#: What a chain keeps in hand beyond the next step's time-out: recording and handing over.
CHAIN_MARGIN_SECONDS = 30.0
#: The queue's visibility timeout (infra/template.json, 6 x the worker time-out): a message stays ours this long.
STEP_VISIBILITY_SECONDS = 5400.0
#: The run_step function's time-out (.chalice/config.json).
WORKER_TIMEOUT_SECONDS = 900.0
#: ``STEPLINE_MAX_CHAIN_STEPS``: steps one invocation may run (default 100; 1 = every step
#: hands over through SQS, as before chaining).
DEFAULT_MAX_CHAIN_STEPS = 100


@dataclass
class Budget:
    """The time this worker invocation may still spend, read from a monotonic clock."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    max_steps: int = DEFAULT_MAX_CHAIN_STEPS

    def __post_init__(self) -> None:
        self.started = self.clock()

    def remaining(self) -> float:
        return self.seconds - (self.clock() - self.started)

    def allows(self, step_timeout: float) -> bool:
        """True while a step of ``step_timeout`` seconds still fits, with the margin."""
        return self.remaining() >= step_timeout + CHAIN_MARGIN_SECONDS

    @classmethod
    def for_invocation(cls, context: Any = None) -> Budget:
        """The budget of one SQS invocation: the Lambda's remaining time and the visibility.

        Chalice's local and test contexts report a fixed 3 s that is not the function's
        configured time-out; there (and without a context) the configured time-out is used.
        """
        seconds = min(WORKER_TIMEOUT_SECONDS, STEP_VISIBILITY_SECONDS)
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is not None and not type(context).__module__.startswith("chalice."):
            seconds = min(seconds, remaining() / 1000.0)
        return cls(seconds, max_steps=max_chain_steps())


def max_chain_steps(env: dict[str, str] | None = None) -> int:
    """``STEPLINE_MAX_CHAIN_STEPS`` (read per invocation), at least 1."""
    value = (env if env is not None else os.environ).get("STEPLINE_MAX_CHAIN_STEPS", "")
    return max(1, int(value)) if value.strip().isdigit() else DEFAULT_MAX_CHAIN_STEPS
