"""A worker process that dies at a chosen write: a botocore hook (not a patch of our code)
that raises ``WorkerDied`` before or after the PutItem whose request carries every needle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import botocore.handlers

__all__ = ["DEATHS", "Death", "WorkerDied"]


class WorkerDied(BaseException):
    """The Lambda process stopped: no ``except Exception`` sees it."""


@dataclass
class Death:
    needles: tuple[str, ...]  # every one in the PutItem's request body
    after_the_write: bool  # True: the item is stored, then the worker dies
    hits: int = 0


class _Deaths:
    armed: Death | None = None

    def before(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        death = self.armed
        if death is None or model.name != "PutItem":
            return
        body = params.get("body") or b""
        text = body.decode() if isinstance(body, bytes) else str(body)
        if all(needle in text for needle in death.needles):
            self.armed, death.hits = None, death.hits + 1
            if not death.after_the_write:
                raise WorkerDied("before the put")
            context["stepline_test_death"] = True

    def after(self, context: dict[str, Any], **_: Any) -> None:
        if context.pop("stepline_test_death", False):
            raise WorkerDied("after the put")


DEATHS = _Deaths()
for _event, _handler in (("before-call.dynamodb", DEATHS.before), ("after-call.dynamodb", DEATHS.after)):
    botocore.handlers.BUILTIN_HANDLERS.append((_event, _handler))
