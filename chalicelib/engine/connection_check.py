"""``POST /connections/{name}/test``: does a connection work, without running a workflow?

Each kind is tried the way an agent would use it, through the same code and the same outbound
guard (``chalicelib.agents.transport``), so a pass means the next step will get through:

* model kinds (``openai``, ``anthropic``, ``bedrock``): a one-token chat request ("ping") for the
  given ``model`` through the provider's wire module, the one the ``llm`` agent sends with;
* ``oauth2``: a fresh access token from its ``token_url`` (client credentials or refresh token);
* ``bearer``, ``header``, ``basic``: a ``GET`` of the ``url`` the caller names (an endpoint of the
  service the credentials are for), with the connection's headers; without a ``url`` nothing
  remote is tried and the answer says so (``checked`` false).

The answer is ``{"ok", "checked", "kind", "detail"}``; ``detail`` is redacted of every secret
value of the connection (a provider may quote the key it refused), and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.agents.auth import Credentials
from chalicelib.agents.base import StepError
from chalicelib.agents.connections import redact
from chalicelib.agents.llm.types import ChatRequest, Turn, Wire
from chalicelib.agents.transport import HttpFailure, call_json
from chalicelib.domain.connections import AUTH_KINDS, MODEL_KINDS, ResolvedConnection
from chalicelib.errors import FieldError, ValidationError

__all__ = ["TEST_TIMEOUT_SECONDS", "check_connection", "parse_check"]

#: A test answers within this, whatever the remote side does (the API's caller waits for it).
TEST_TIMEOUT_SECONDS = 10.0
MAX_MODEL = 200
MAX_URL = 2048


def parse_check(body: Mapping[str, Any], kind: str) -> dict[str, str]:
    """The test's options: ``model`` (required for model kinds), ``url`` (optional for header kinds)."""
    errors = [FieldError(k, "unknown field") for k in sorted(set(body) - {"model", "url"})]
    options: dict[str, str] = {}
    for key, limit in (("model", MAX_MODEL), ("url", MAX_URL)):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            errors.append(FieldError(key, f"must be a non-empty string of at most {limit} characters"))
        else:
            options[key] = value.strip()
    if kind in MODEL_KINDS and "model" not in options and not any(e.field == "model" for e in errors):
        errors.append(FieldError("model", "required to test a model connection: the model a step would name"))
    if errors:
        raise ValidationError(errors)
    return options


def check_connection(
    connection: ResolvedConnection, options: Mapping[str, str], wires: Callable[[], Mapping[str, Wire]]
) -> dict[str, Any]:
    """Try ``connection`` once; never raises for a remote failure (that is the answer)."""
    try:
        checked, detail = _try(connection, options, wires)
        ok = checked  # nothing tried is not a pass
    except StepError as error:
        checked, detail, ok = True, error.message, False
    except HttpFailure as failure:
        checked, detail, ok = True, f"the service answered {failure.reason}", False
    return {"ok": ok, "checked": checked, "kind": connection.kind, "detail": redact(detail, connection)}


def _try(
    connection: ResolvedConnection, options: Mapping[str, str], wires: Callable[[], Mapping[str, Wire]]
) -> tuple[bool, str]:
    kind = connection.kind
    if kind in MODEL_KINDS:
        model = options["model"]
        request = ChatRequest(
            model=model,
            system="This is a connection test. Answer with one word.",
            turns=(Turn("user", "ping"),),
            tools=(),
            output_schema=None,
            max_tokens=1,
            temperature=None,
            timeout=TEST_TIMEOUT_SECONDS,
        )
        answer = wires()[kind].send(connection, request)
        return (
            True,
            f"{answer.model or model} answered ({answer.input_tokens} input, {answer.output_tokens} output tokens)",
        )
    if kind not in AUTH_KINDS:
        return False, f"no test is known for a {kind} connection"
    credentials = Credentials(connection, TEST_TIMEOUT_SECONDS)
    if kind == "oauth2":
        headers = credentials.refresh()  # a fresh token, not a cached one: the endpoint is what is tested
        if "url" not in options:
            return True, f"the token endpoint issued an access token ({len(headers['Authorization']) - 7} characters)"
    else:
        headers = credentials.headers()
    if "url" not in options:
        return False, "the credentials are stored; give a url of the service to try them against it"
    reply = call_json("GET", options["url"], headers=headers, timeout=TEST_TIMEOUT_SECONDS)
    return True, f"GET {options['url']} answered HTTP {reply.status}"
