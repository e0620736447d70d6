"""The ``http`` agent: call a remote JSON API and output its answer.

Config: ``{"url": "https://billing.example/orders/{{ input.order_id }}", "method": "POST",
"headers": {"Authorization": "Bearer {{ input.token }}"}, "timeout_seconds": 10}``; only
``url`` (http or https) is required. ``{{ <jmespath> }}`` placeholders are evaluated over the
step context (URL-quoted in the url). The JSON body is ``instructions`` evaluated over the
context when given, else ``prev`` for POST/PUT/PATCH and nothing for GET/DELETE. The output
is ``{"status", "body", "headers"}``.

5xx, 408, 429, network errors and timeouts are retryable; other statuses are not (a retry
would get the same 400 or 401). Redirects are not followed, so a POST never silently turns
into a GET elsewhere. Messages show the URL without its query string or user info, which may
carry secrets.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

from chalicelib.agents.auth import Credentials, revoked
from chalicelib.agents.base import AgentContext, AgentError, IntegrationError, StepError, evaluate, expression_problem
from chalicelib.agents.connections import redact, step_connection_ref
from chalicelib.agents.ledger import PlannedCall
from chalicelib.domain.connections import AUTH_KINDS, ConnectionRef
from chalicelib.domain.side_effects import SideEffectKind, SideEffectStatus, fingerprint, public_target
from chalicelib.errors import FieldError, SteplineError
from chalicelib.jsonlimits import parse_json
from chalicelib.outbound import OutboundBlocked, open_url, url_template_problem

__all__ = ["METHODS", "HttpAgent"]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODY_METHODS = ("POST", "PUT", "PATCH")
MAX_RESPONSE_BYTES = 5 * 1024 * 1024
EXCERPT_CHARS = 200
KEPT_HEADERS = ("content-type", "location", "etag", "retry-after")
_NETWORK_REASONS = (
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset by peer"),
    (http.client.RemoteDisconnected, "the server closed the connection without answering"),
)
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class HttpAgent:
    """Call an HTTP endpoint with a JSON body built from the step context."""

    name = "http"

    def validate(self, step: Mapping[str, Any], path: str) -> list[FieldError]:
        """Check url, method, headers, timeout and instructions without calling anything."""
        config = step.get("config")
        if not isinstance(config, Mapping):
            return [FieldError(f"{path}.config", 'required: an object with at least "url" for the http agent')]
        errors = _url_errors(config.get("url"), f"{path}.config.url")
        method = config.get("method", "POST")
        if not isinstance(method, str) or method.upper() not in METHODS:
            errors.append(FieldError(f"{path}.config.method", f"must be one of {', '.join(METHODS)}"))
        errors += _header_errors(config.get("headers"), f"{path}.config.headers")
        timeout = config.get("timeout_seconds")
        if timeout is not None and not _is_positive_number(timeout):
            errors.append(FieldError(f"{path}.config.timeout_seconds", "must be a positive number of seconds"))
        connection = config.get("connection")
        if connection is not None and (not isinstance(connection, str) or not connection):
            errors.append(FieldError(f"{path}.config.connection", "must name a connection"))
        instructions = step.get("instructions")
        if instructions is not None and not (isinstance(instructions, str) and not instructions.strip()):
            problem = expression_problem(instructions)
            if problem:
                errors.append(FieldError(f"{path}.instructions", problem))
        return errors

    def connection_refs(self, step: Mapping[str, Any], path: str) -> list[ConnectionRef]:
        """``config.connection``, when given, must name a bearer, header, basic or oauth2 connection."""
        return step_connection_ref(step.get("config"), path, AUTH_KINDS, required=False)

    def plan(self, ctx: AgentContext) -> PlannedCall | None:
        """The call ``run`` will enter in the ledger (None for a GET), so the engine can commit
        it with the step's claim. Raises the ``StepError`` that ``run`` would raise first."""
        return _prepare(ctx).call

    def run(self, ctx: AgentContext) -> Any:
        """Send the request; return ``{"status", "body", "headers"}`` or raise a ``StepError``."""
        request = _prepare(ctx)
        call, headers, effect = request.call, request.headers, None
        if call is not None:  # a call that may change something: in the side-effect ledger
            recorded = ctx.ledger.replay(call.fingerprint, kind=call.kind, target=call.target)
            if recorded is not None:
                return recorded.get("result")  # replayed: the earlier attempt's answer, no second call
            effect = ctx.ledger.begin(call.kind, call.target, call.key, call.fingerprint)
        config, url, shown, timeout = ctx.config, request.url, request.shown, request.timeout
        credentials = None
        if config.get("connection"):
            credentials = Credentials(ctx.connection(str(config["connection"])), timeout)
            headers.update(credentials.headers())  # the connection wins over a same-named config header
        try:
            output = _call(url, request.body, request.method, headers, shown, timeout, credentials)
        except StepError as error:
            if effect is not None:
                ctx.ledger.finish(effect, _outcome(error), http_status=getattr(error, "status", None))
            raise
        if effect is not None:
            ctx.ledger.finish(effect, SideEffectStatus.SUCCEEDED, output, http_status=output.get("status"))
        return output


@dataclass
class _Request:
    """A rendered request, before credentials; ``call`` is its ledger entry's identity (None for a GET)."""

    method: str
    url: str
    shown: str
    body: bytes | None
    headers: dict[str, str]
    timeout: float
    call: PlannedCall | None


def _prepare(ctx: AgentContext) -> _Request:
    """Render the request from the step context, or raise the ``StepError`` of a bad one."""
    config = ctx.config
    method = str(config.get("method", "POST")).upper()
    if method not in METHODS:
        raise AgentError(f"unsupported HTTP method {method!r}", retryable=False)
    template = str(config.get("url", ""))
    problem = url_template_problem(template)
    if problem:  # definitions are validated when saved; this guards older stored ones
        raise AgentError(f"url {problem}", retryable=False)
    url = _render(template, ctx.data, for_url=True, field="url")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or parts.netloc != urlsplit(template).netloc:
        raise AgentError(
            f"url: placeholders may not change the scheme, host or port ({_shown(url)!r})", retryable=False
        )

    body = _request_body(ctx, method)
    headers = {
        "Accept": "application/json",
        "User-Agent": "Stepline/1",
        "X-Stepline-Execution": ctx.execution_id,
        "X-Stepline-Step": ctx.step_id,
        "X-Stepline-Attempt": str(ctx.attempt),
    }
    if body is not None:
        headers["Content-Type"] = "application/json"
    for name, value in (config.get("headers") or {}).items():
        rendered = _render(str(value), ctx.data, for_url=False, field=f"headers.{name}")
        if "\r" in rendered or "\n" in rendered:
            raise AgentError(f"header {name} contains a line break", retryable=False)
        headers[str(name)] = rendered
    call = None
    if method != "GET":
        digest = fingerprint("http", method, url, body.decode("utf-8") if body is not None else None)
        key = next((v for k, v in headers.items() if k.lower() == "idempotency-key"), None)
        if key is None:  # a key set in config.headers wins: the remote system may expect its own
            key = headers["Idempotency-Key"] = ctx.ledger.key(1)
        call = PlannedCall(SideEffectKind.HTTP.value, public_target(method, url), key, digest)
    timeout = _timeout(config.get("timeout_seconds"), ctx.timeout_seconds)
    return _Request(method, url, _shown(url), body, headers, timeout, call)


def _outcome(error: StepError) -> SideEffectStatus:
    """The ledger status of a failed call: ``unknown`` when the request may have arrived."""
    if getattr(error, "status", None) is not None or isinstance(error, AgentError):
        return SideEffectStatus.FAILED  # the server answered, or the request was never built
    never_sent = ("connection refused", "could not be resolved", "TLS certificate rejected", "not allowed")
    if not error.retryable or any(text in error.message for text in never_sent):
        return SideEffectStatus.FAILED
    return SideEffectStatus.UNKNOWN


def _call(
    url: str,
    body: bytes | None,
    method: str,
    headers: dict[str, str],
    shown: str,
    timeout: float,
    credentials: Credentials | None,
) -> dict[str, Any]:
    """Send the request (once more after refreshing a refused OAuth token)."""
    try:
        return _send(_request(url, body, method, headers), method, shown, timeout)
    except IntegrationError as error:
        if credentials is None:
            raise
        _scrub(error, credentials)
        if error.status not in (401, 403):
            raise
        name = credentials.connection.name
        if error.status == 401 and credentials.refreshable:
            headers.update(credentials.refresh())  # once: a second 401 means the grant itself is gone
            try:
                return _send(_request(url, body, method, headers), method, shown, timeout)
            except IntegrationError as again:
                if again.status != 401:
                    raise _scrub(again, credentials) from None
        raise revoked(
            name,
            "credentials rejected (token expired or revoked)"
            if error.status == 401
            else f"HTTP {error.status}: the credentials lack permission",
        ) from None


def _scrub(error: IntegrationError, credentials: Credentials) -> IntegrationError:
    """Remove the connection's secrets from an error (a server may echo the request back)."""
    error.message = redact(error.message, credentials.connection)
    error.args = (error.message,)
    if isinstance(error.details.get("body_excerpt"), str):
        error.details["body_excerpt"] = redact(error.details["body_excerpt"], credentials.connection)
    return error


def _request(url: str, body: bytes | None, method: str, headers: Mapping[str, str]) -> urllib.request.Request:
    request = urllib.request.Request(url, data=body, method=method)
    for name, value in headers.items():
        request.add_header(name, value)  # add_header normalises case, so config overrides defaults
    return request


def _send(request: urllib.request.Request, method: str, shown: str, timeout: float) -> dict[str, Any]:
    try:
        with open_url(request, timeout) as response:
            raw = response.read(MAX_RESPONSE_BYTES + 1)
            status, headers = response.status, response.headers
    except OutboundBlocked as exc:
        # The address will not become public between attempts: not retryable.
        raise IntegrationError(
            f"{method} {shown}: {exc}", retryable=False, details={"method": method, "url": shown}
        ) from None
    except urllib.error.HTTPError as exc:
        with exc:
            raw = _read_quietly(exc)
        raise _status_error(method, shown, exc.code, _text(raw, exc.headers), exc.headers) from None
    except urllib.error.URLError as exc:
        raise _network_error(method, shown, exc.reason, timeout) from None
    except http.client.InvalidURL as exc:
        raise AgentError(f"invalid url {shown}: {exc}", retryable=False) from None
    except (OSError, http.client.HTTPException) as exc:  # includes timeouts while reading
        raise _network_error(method, shown, exc, timeout) from None
    except ValueError as exc:  # urllib/http.client refuse malformed URLs and header values this way
        raise AgentError(f"could not build the request to {shown}: {exc}", retryable=False) from None
    if len(raw) > MAX_RESPONSE_BYTES:
        raise IntegrationError(
            f"{method} {shown} answered more than {MAX_RESPONSE_BYTES} bytes", retryable=False, status=status
        )
    kept = {name: headers[name] for name in KEPT_HEADERS if headers.get(name) is not None}
    return {"status": status, "body": _parse(raw, headers), "headers": kept}


def _status_error(method: str, shown: str, status: int, text: str, headers: Any) -> IntegrationError:
    excerpt = _excerpt(text)
    message = f"{method} {shown} returned HTTP {status}"
    if status in (401, 403):
        message += ": credentials rejected or expired (check the integration's token)"
    elif 300 <= status < 400:
        location = headers.get("Location") if headers is not None else None
        message += f": redirects are not followed (Location: {_shown(location) if location else 'none'})"
    if excerpt:
        message += f": {excerpt}"
    details: dict[str, Any] = {"method": method, "url": shown, "body_excerpt": excerpt}
    retry_after = headers.get("Retry-After") if headers is not None else None
    if retry_after:
        details["retry_after"] = retry_after
    retryable = status >= 500 or status in (408, 429)
    return IntegrationError(message, retryable=retryable, details=details, status=status)


def _network_error(method: str, shown: str, reason: Any, timeout: float) -> IntegrationError:
    details = {"method": method, "url": shown}
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return IntegrationError(f"{method} {shown} timed out after {timeout:g}s", details=details)
    if isinstance(reason, ssl.SSLCertVerificationError):
        # The certificate will not fix itself between attempts.
        return IntegrationError(
            f"could not reach {shown}: TLS certificate rejected ({reason.verify_message})",
            retryable=False,
            details=details,
        )
    if isinstance(reason, socket.gaierror):
        why: str | None = f"host {urlsplit(shown).hostname} could not be resolved"
    else:
        why = next((text for kind, text in _NETWORK_REASONS if isinstance(reason, kind)), None)
    return IntegrationError(f"could not reach {shown}: {why or reason or type(reason).__name__}", details=details)


def _request_body(ctx: AgentContext, method: str) -> bytes | None:
    if ctx.instructions and ctx.instructions.strip():
        payload = evaluate(ctx.instructions, ctx.data)
    elif method in BODY_METHODS:
        payload = ctx.data.get("prev")
    else:
        return None
    try:
        return _compact_json(payload).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise AgentError(f"the request body is not JSON-serialisable: {exc}", retryable=False) from None


def _render(template: str, data: Mapping[str, Any], *, for_url: bool, field: str) -> str:
    """Replace each ``{{ expr }}`` with its value over ``data``; a null value is an error."""

    def substitute(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        value = evaluate(expression, data)
        if value is None:
            raise AgentError(f"{field}: placeholder {{{{ {expression} }}}} evaluated to null", retryable=False)
        text = value if isinstance(value, str) else _compact_json(value)
        return quote(text, safe="") if for_url else text

    return _PLACEHOLDER.sub(substitute, template)


def _url_errors(url: Any, field: str) -> list[FieldError]:
    if url is None or url == "":
        return [FieldError(field, "required: the http(s) URL to call")]
    if not isinstance(url, str):
        return [FieldError(field, "must be a string")]
    errors = _placeholder_errors(url, field)
    # The scheme, host and port must be literal so a placeholder cannot send the call elsewhere.
    problem = None if errors else url_template_problem(url)
    if problem:
        errors.append(FieldError(field, problem))
    return errors


def _header_errors(headers: Any, field: str) -> list[FieldError]:
    if headers is None:
        return []
    if not isinstance(headers, Mapping):
        return [FieldError(field, "must be an object of header name to string value")]
    errors: list[FieldError] = []
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            errors.append(FieldError(f"{field}.{name}", "is not a valid header name"))
        elif not isinstance(value, str):
            errors.append(FieldError(f"{field}.{name}", "must be a string"))
        elif "\r" in value or "\n" in value:
            errors.append(FieldError(f"{field}.{name}", "must not contain line breaks"))
        else:
            errors += _placeholder_errors(value, f"{field}.{name}")
    return errors


def _placeholder_errors(template: str, field: str) -> list[FieldError]:
    errors = []
    for match in _PLACEHOLDER.finditer(template):
        problem = expression_problem(match.group(1).strip())
        if problem:
            errors.append(FieldError(field, f"placeholder {match.group(0)}: {problem}"))
    rest = _PLACEHOLDER.sub("", template)
    if "{{" in rest or "}}" in rest:
        errors.append(FieldError(field, "has an unbalanced {{ }} placeholder"))
    return errors


def _is_positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _timeout(configured: Any, step_limit: float) -> float:
    limit = float(step_limit)
    if _is_positive_number(configured):
        limit = min(float(configured), limit)
    return max(limit, 0.01)


def _shown(url: str) -> str:
    """The URL for messages: no user info, query or fragment (they may carry secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" + ("?…" if parts.query else "")


def _read_quietly(response: Any) -> bytes:
    try:
        return response.read(64 * 1024) or b""
    except (OSError, http.client.HTTPException):
        return b""


def _text(raw: bytes, headers: Any) -> str:
    charset = (headers.get_content_charset() if headers is not None else None) or "utf-8"
    try:
        return raw.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return raw.decode("utf-8", errors="replace")


def _parse(raw: bytes, headers: Any) -> Any:
    if not raw:
        return None
    text = _text(raw, headers)
    if "json" not in (headers.get("Content-Type") or "").lower():
        return text
    try:
        # Bounded like every JSON that enters (depth, no NaN/Infinity); otherwise kept as text.
        return parse_json(text, field="response", max_bytes=MAX_RESPONSE_BYTES)
    except SteplineError:
        return text


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    # Values read back from DynamoDB may be Decimals.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
