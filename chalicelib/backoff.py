"""Full-jitter exponential backoff, shared by the engine (store retries of workers, starts and
operator actions) and the store (its read retry), which must not import the engine."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Protocol

BACKOFF_BASE_SECONDS = 0.02
BACKOFF_CAP_SECONDS = 1.0


class Remaining(Protocol):
    """A time budget: what is left of it, in seconds (``chalicelib.engine.budget.Budget``)."""

    def remaining(self) -> float: ...


class Backoff:
    """Full-jitter exponential backoff: wait ``uniform(0, cap)``, the cap doubling each time."""

    def __init__(
        self,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        base: float = BACKOFF_BASE_SECONDS,
        cap: float = BACKOFF_CAP_SECONDS,
    ) -> None:
        self.sleep, self.rng, self.base, self.cap = sleep, rng or random.Random(), base, cap
        self.tries = 0

    def next_wait(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.tries)
        self.tries += 1
        return self.rng.uniform(0, ceiling)

    def wait(self, budget: Remaining | None = None, reserve: float = 0.0) -> bool:
        """Sleep before the next try; False (without sleeping) when the budget cannot afford it."""
        pause = self.next_wait()
        if budget is not None and budget.remaining() < pause + reserve:
            return False
        self.sleep(pause)
        return True
