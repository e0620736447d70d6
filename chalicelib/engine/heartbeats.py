"""Heartbeats of a long step: while its agent runs, the worker extends the attempt's lease
(``StepRunner.heartbeat``: a ``step_heartbeat`` commit) and its SQS message's visibility
every third of a lease, so that a live worker is never taken for a dead one."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from chalicelib.domain.machine import LEASE_SECONDS

if TYPE_CHECKING:
    from chalicelib.engine.runner import StepRunner

__all__ = ["Heartbeats"]

log = logging.getLogger("stepline.runner")


class Heartbeats:
    """While a long step runs: extend its lease and its message's visibility every third of a lease."""

    def __init__(
        self,
        runner: StepRunner,
        execution_id: str,
        step_id: str,
        attempt: int,
        receipt: str | None,
        every: float = LEASE_SECONDS / 3,
    ) -> None:
        self.runner, self.args, self.receipt, self.every = runner, (execution_id, step_id, attempt), receipt, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stepline-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.runner.heartbeat(*self.args)
                if self.receipt:
                    self.runner.executions.queue.extend_visibility(self.receipt, int(LEASE_SECONDS * 2))
            except Exception:
                log.warning("heartbeat of %s failed", self.args, exc_info=True)

    def stop(self) -> None:
        self._stop.set()
