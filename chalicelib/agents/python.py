"""The ``python`` agent: call a function shipped with the deployment.

``{"agent": "python", "config": {"callable": "workflows.billing:draft_note"}}`` calls
``draft_note(ctx)`` with the ``AgentContext`` and outputs what it returns. Instructions are
optional; the function can read them from ``ctx.instructions``.

Only modules under an allow-list of package prefixes may be named, so a definition (which
an admin writes through the API) cannot reach ``os:system`` or ``subprocess:run``.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from chalicelib.agents.base import AgentContext, AgentError, StepError
from chalicelib.errors import FieldError

__all__ = ["DEFAULT_ALLOWED_PREFIXES", "PythonAgent", "configure"]

#: Local mode and the tests: the samples and a ``workflows`` package. A deployed stack sets
#: ``STEPLINE_PYTHON_MODULES`` (template parameter ``PythonModules``) instead, and its package
#: leaves the samples out (infra/package.py), so production runs only what it declares.
DEFAULT_ALLOWED_PREFIXES = ("chalicelib.samples.", "workflows.")
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_CALLABLE = re.compile(rf"^({_IDENTIFIER}(?:\.{_IDENTIFIER})*):({_IDENTIFIER})$")


class PythonAgent:
    """Run an allow-listed ``package.module:function`` as ``function(ctx)``."""

    name = "python"

    def __init__(self, allowed_prefixes: Iterable[str] = DEFAULT_ALLOWED_PREFIXES) -> None:
        self.allowed_prefixes = tuple(allowed_prefixes)

    def validate(self, step: Mapping[str, Any], path: str) -> list[FieldError]:
        """The callable must be ``module:function``, allowed, importable and callable."""
        config = step.get("config")
        field = f"{path}.config.callable"
        if not isinstance(config, Mapping) or config.get("callable") in (None, ""):
            return [FieldError(field, 'required: "package.module:function" for the python agent')]
        try:
            self.resolve(config["callable"])
        except ValueError as exc:
            return [FieldError(field, str(exc))]
        return []

    def run(self, ctx: AgentContext) -> Any:
        """Call the function; a ``StepError`` it raises passes through, others become ``AgentError``."""
        try:
            function = self.resolve(ctx.config.get("callable"))
        except ValueError as exc:
            raise AgentError(str(exc), retryable=False) from None
        try:
            output = function(ctx)
        except StepError:
            raise
        except Exception as exc:  # the callable is user code: any failure is the step's failure
            raise AgentError(
                f"{type(exc).__name__}: {exc}", retryable=True, details={"exception": type(exc).__name__}
            ) from exc
        try:
            json.dumps(output)
        except (TypeError, ValueError) as exc:
            raise AgentError(
                f"{ctx.config.get('callable')} returned a value that is not JSON-serialisable: {exc}", retryable=False
            ) from None
        return output

    def resolve(self, spec: Any) -> Callable[[AgentContext], Any]:
        """Import ``module:function`` after checking it; raises ``ValueError`` saying why not."""
        if not isinstance(spec, str):
            raise ValueError('must be a string "package.module:function"')
        match = _CALLABLE.match(spec.strip())
        if not match:
            raise ValueError(f'{spec!r} is not of the form "package.module:function"')
        module_name, attribute = match.groups()
        if not self.is_allowed(module_name):
            allowed = ", ".join(f"{p.rstrip('.')}.*" for p in self.allowed_prefixes) or "(none)"
            raise ValueError(
                f"module {module_name!r} is not allowed; python steps may only call modules under {allowed}"
            )
        if attribute.startswith("__"):
            raise ValueError(f"{attribute!r} is not a function name a step may call")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # ImportError, or whatever the module raises while loading
            raise ValueError(f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from None
        function = getattr(module, attribute, None)
        if function is None:
            raise ValueError(f"module {module_name!r} has no attribute {attribute!r}")
        if not callable(function):
            raise ValueError(f"{spec} is not callable")
        return cast("Callable[[AgentContext], Any]", function)

    def is_allowed(self, module_name: str) -> bool:
        """True if ``module_name`` is under one of the allowed package prefixes."""
        return any(
            module_name.startswith(prefix) or module_name == prefix.rstrip(".") for prefix in self.allowed_prefixes
        )


def configure(python_modules: Iterable[str] | None) -> None:
    """Set the registered python agent's allow-list from the settings (None: the defaults)."""
    from chalicelib.agents.registry import AGENTS

    agent = AGENTS.get("python")
    if isinstance(agent, PythonAgent):
        agent.allowed_prefixes = DEFAULT_ALLOWED_PREFIXES if python_modules is None else tuple(python_modules)
