"""The ``transform`` agent: the step's instructions are a JMESPath expression over the context.

``{"agent": "transform", "instructions": "{customer: input.customer, total: input.amount}"}``
outputs that object. Pure and deterministic, so every failure is non-retryable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.agents.base import AgentContext, AgentError, evaluate, expression_problem
from chalicelib.errors import FieldError

__all__ = ["TransformAgent"]


class TransformAgent:
    """Evaluate ``instructions`` (JMESPath) over ``{"input", "prev", "steps"}``."""

    name = "transform"
    #: no side effect and no outside call: the runner chains it without a separate claim
    pure = True

    def validate(self, step: Mapping[str, Any], path: str) -> list[FieldError]:
        """Instructions are required and must compile."""
        instructions = step.get("instructions")
        if instructions is None or (isinstance(instructions, str) and not instructions.strip()):
            return [FieldError(f"{path}.instructions", "required: a JMESPath expression for the transform agent")]
        problem = expression_problem(instructions)
        return [FieldError(f"{path}.instructions", problem)] if problem else []

    def run(self, ctx: AgentContext) -> Any:
        """The expression's result is the step's output."""
        if not ctx.instructions or not ctx.instructions.strip():
            raise AgentError("the transform agent needs instructions (a JMESPath expression)", retryable=False)
        return evaluate(ctx.instructions, ctx.data)
