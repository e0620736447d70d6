"""The agent interface: what a step runs, what it sees, and how it reports failure.

An agent is a small plugin with two methods. ``validate`` checks a raw step dict when a
definition is saved (so a typo fails at ``POST /workflows``, not at 3 a.m.), and ``run``
does the work for one attempt of one step. Failures are ``StepError`` subclasses that say
whether another attempt could help, the way Temporal's ``ApplicationError`` carries
``non_retryable``.

The JMESPath helpers at the bottom are shared by the agents that evaluate expressions over
the step context (``transform`` and ``http``), so both report a bad expression the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions
from jmespath.parser import ParsedResult

from chalicelib.domain.actions import with_action
from chalicelib.domain.expressions import compile_bounded, one_line
from chalicelib.domain.vocabulary import ErrorKind
from chalicelib.errors import FieldError

__all__ = [
    "Agent",
    "AgentContext",
    "AgentError",
    "IntegrationError",
    "StepError",
    "compile_expression",
    "evaluate",
    "expression_problem",
    "is_pure",
]


@dataclass(frozen=True)
class AgentContext:
    """Everything one attempt of one step may look at.

    ``data`` is ``{"input": ..., "prev": ..., "steps": {"<id>": {"output": ...}}}``;
    ``instructions`` may have been edited by an operator for this execution.
    """

    execution_id: str
    step_id: str
    attempt: int
    instructions: str | None
    config: Mapping[str, Any]
    data: Mapping[str, Any]
    timeout_seconds: float
    #: comments left on earlier attempts of this step (llm agents show them to the model)
    comments: tuple[Mapping[str, Any], ...] = ()
    #: what the agent reports besides its output (``usage``); the runner records it
    report: dict[str, Any] = field(default_factory=dict)
    #: looks up a connection with its secrets; None: the process's default (the engine's settings)
    connections: Any = None
    #: the attempt's side-effect ledger (``chalicelib.agents.ledger.SideEffectLedger``); the engine
    #: gives one that commits each call before it is made; None: one kept in memory only
    ledger: Any = None

    def __post_init__(self) -> None:
        if self.ledger is None:
            from chalicelib.agents.ledger import SideEffectLedger  # the ledger module imports this one

            object.__setattr__(self, "ledger", SideEffectLedger(self.execution_id, self.step_id, self.attempt))

    def connection(self, name: str) -> Any:
        """The named connection with its secrets (``ResolvedConnection``)."""
        if self.connections is not None:
            return self.connections(name)
        from chalicelib.agents.connections import resolve_connection

        return resolve_connection(name)


class StepError(Exception):
    """A failure an agent reports on purpose; ``retryable`` says if a new attempt may help."""

    kind: str = ErrorKind.AGENT

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        details: dict[str, Any] | None = None,
        action: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.details: dict[str, Any] = dict(details or {})
        self.action = action
        #: fields the contract puts beside kind and message (``missing`` of ``cannot_complete``)
        self.extra: dict[str, Any] = dict(extra or {})

    def to_dict(self) -> dict[str, Any]:
        """The error as stored in history and shown in ``GET /executions/{id}``, with its ``action``."""
        error = {
            "kind": self.kind,
            "message": self.message,
            "retryable": self.retryable,
            "details": dict(self.details),
        }
        if self.action:
            error["action"] = self.action
        error.update({k: v for k, v in self.extra.items() if k not in error})
        return with_action(error)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, retryable={self.retryable})"


class AgentError(StepError):
    """The agent could not complete the task (bad expression, failing callable, ...)."""

    kind = ErrorKind.AGENT


class IntegrationError(StepError):
    """A remote system failed or refused the call; ``status`` is its HTTP status if any."""

    kind = ErrorKind.INTEGRATION

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        details: dict[str, Any] | None = None,
        status: int | None = None,
        action: str | None = None,
    ) -> None:
        super().__init__(message, retryable=retryable, details=details, action=action)
        self.status = status
        if status is not None:
            self.details.setdefault("status", status)


@runtime_checkable
class Agent(Protocol):
    """What the engine needs from a step implementation."""

    name: str

    def validate(self, step: Mapping[str, Any], path: str) -> list[FieldError]:
        """Definition-time checks of the raw step dict; fields are prefixed with ``path``."""
        ...

    def run(self, ctx: AgentContext) -> Any:
        """Do one attempt; return a JSON-serialisable output or raise ``StepError``."""
        ...


def is_pure(agent: Any) -> bool:
    """True for an agent without side effects (``pure = True``): the runner may run it inside a
    chain and commit it with its neighbours without committing a claim first. Agents are
    side-effecting unless they say otherwise."""
    return bool(getattr(agent, "pure", False))


# --- JMESPath over the step context -------------------------------------------------------

_FUNCTIONS = Functions().FUNCTION_TABLE


@lru_cache(maxsize=512)
def compile_expression(expression: str) -> ParsedResult:
    """Compile (and cache) a JMESPath expression; raises ``ValueError`` with a readable message.

    Besides syntax, this checks function names and argument counts, which jmespath itself
    only discovers when the call is evaluated (possibly never, on a null branch).
    """
    parsed = compile_bounded(expression)  # length and nesting bounded: no RecursionError later
    problem = _function_problem(parsed.parsed)
    if problem:
        raise ValueError(f"invalid JMESPath: {problem}")
    return parsed


def expression_problem(expression: Any) -> str | None:
    """Why ``expression`` is not a usable JMESPath expression, or None if it is."""
    if not isinstance(expression, str) or not expression.strip():
        return "must be a non-empty JMESPath expression"
    try:
        compile_expression(expression)
    except ValueError as exc:
        return str(exc)
    return None


def evaluate(expression: str, data: Mapping[str, Any]) -> Any:
    """Evaluate ``expression`` over the step context; errors become non-retryable ``AgentError``.

    A retry would evaluate the same expression over the same data, so it cannot help;
    the operator fixes it with edit-and-retry.
    """
    try:
        parsed = compile_expression(expression)
    except ValueError as exc:
        raise AgentError(str(exc), retryable=False, details={"expression": expression}) from None
    try:
        # jmespath's type checks want plain dicts, not arbitrary Mappings.
        return parsed.search(data if isinstance(data, dict) else dict(data))
    except JMESPathError as exc:
        raise AgentError(
            f"JMESPath evaluation failed: {_one_line(exc)}", retryable=False, details={"expression": expression}
        ) from None
    except RecursionError:  # data is bounded at every entry; this is the last line of defence
        raise AgentError(
            "JMESPath evaluation failed: the data or expression is nested too deeply",
            retryable=False,
            details={"expression": expression},
        ) from None


_one_line = one_line


def _function_problem(node: Any) -> str | None:
    if not isinstance(node, dict):
        return None
    if node.get("type") == "function_expression":
        name, args = node.get("value"), node.get("children", [])
        spec = _FUNCTIONS.get(name)
        if spec is None:
            return f"unknown function {name}()"
        signature = spec["signature"]
        variadic = bool(signature) and signature[-1].get("variadic", False)
        if (variadic and len(args) < len(signature)) or (not variadic and len(args) != len(signature)):
            expected = f"at least {len(signature)}" if variadic else str(len(signature))
            return f"function {name}() expects {expected} argument(s), got {len(args)}"
    for child in node.get("children", []):
        problem = _function_problem(child)
        if problem:
            return problem
    return None
