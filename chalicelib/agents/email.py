"""The ``email`` agent: send one message with Amazon SES (API v2 ``SendEmail``) through boto3.

Config: ``{"to": [...], "cc": [...], "subject", "body", "from"}``; ``to``, ``subject`` and
``body`` are required, ``from`` defaults to ``STEPLINE_EMAIL_FROM``. Every string may hold
``{{ <JMESPath> }}`` placeholders over the step context (a recipient placeholder may yield a
list of addresses). The output is ``{"message_id", "to"}``.

SES refusing the message (unverified sender, suppressed or malformed recipient, paused
account) is an ``integration`` error that a retry cannot fix; throttling and SES's own
failures are retryable. Credentials come from the function's role (``ses:SendEmail``).

Each send is in the step's side-effect ledger; a retry that replays (the default) does not send
an identical message again: it outputs the message id the earlier attempt recorded.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from chalicelib.agents.base import AgentContext, AgentError, IntegrationError
from chalicelib.agents.http import _placeholder_errors, _render
from chalicelib.agents.ledger import PlannedCall
from chalicelib.domain.actions import EDIT_AND_RETRY, SKIP_OR_CANCEL
from chalicelib.domain.side_effects import SideEffectKind, SideEffectStatus, fingerprint
from chalicelib.errors import FieldError

__all__ = ["EmailAgent"]

CONFIG_KEYS = ("to", "cc", "subject", "body", "from")
MAX_RECIPIENTS = 50
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
_RETRYABLE = {
    "TooManyRequestsException",
    "LimitExceededException",
    "ThrottlingException",
    "InternalFailure",
    "ServiceUnavailable",
    "InternalServerError",
}


class EmailAgent:
    """Send an email built from the step context."""

    name = "email"

    def __init__(self, client: Any = None) -> None:
        self._client = client
        self._lock = threading.Lock()

    def validate(self, step: Mapping[str, Any], path: str) -> list[FieldError]:
        """Recipients, subject, body and sender are present and their placeholders compile."""
        config = step.get("config")
        at = f"{path}.config"
        if not isinstance(config, Mapping):
            return [FieldError(at, 'required: an object with "to", "subject" and "body"')]
        errors = [FieldError(f"{at}.{k}", "unknown field") for k in sorted(set(config) - set(CONFIG_KEYS))]
        for key in ("to", "cc"):
            value = config.get(key)
            if value is None and key == "cc":
                continue
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
                errors.append(FieldError(f"{at}.{key}", "must be a list of addresses (or placeholders)"))
                continue
            for index, item in enumerate(items):
                errors += _placeholder_errors(item, f"{at}.{key}[{index}]")
                if "{{" not in item and not _ADDRESS.match(item):
                    errors.append(FieldError(f"{at}.{key}[{index}]", "is not an email address"))
        for key in ("subject", "body", "from"):
            value = config.get(key)
            if value is None and key == "from":
                continue
            if not isinstance(value, str) or not value.strip():
                errors.append(FieldError(f"{at}.{key}", "required: a non-empty string"))
            else:
                errors += _placeholder_errors(value, f"{at}.{key}")
        return errors

    def plan(self, ctx: AgentContext) -> PlannedCall:
        """The send ``run`` will enter in the ledger, so the engine can commit it with the step's
        claim. Raises the ``StepError`` that ``run`` would raise first."""
        return _prepare(ctx).call

    def run(self, ctx: AgentContext) -> Any:
        """Render and send; ``{"message_id", "to"}``."""
        mail = _prepare(ctx)
        call, to = mail.call, mail.to
        recorded = ctx.ledger.replay(call.fingerprint, kind=call.kind, target=call.target)
        if recorded is not None:
            return recorded.get("result")  # replayed: the earlier attempt's message id, nothing sent again
        key = call.key
        effect = ctx.ledger.begin(call.kind, call.target, key, call.fingerprint)
        sender, destination, subject, body = mail.sender, mail.destination, mail.subject, mail.body
        try:
            answer = self.client().send_email(
                FromEmailAddress=sender,
                Destination=destination,
                Content={
                    "Simple": {
                        "Subject": {"Data": subject, "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": body, "Charset": "UTF-8"}},
                    }
                },
                EmailTags=[
                    {"Name": "stepline-execution", "Value": _tag(ctx.execution_id)},
                    {"Name": "stepline-step", "Value": _tag(ctx.step_id)},
                    {"Name": "stepline-idempotency-key", "Value": _tag(key)},
                ],
            )
        except ClientError as error:
            ctx.ledger.finish(effect, SideEffectStatus.FAILED)  # SES answered: nothing was sent
            code = str(error.response.get("Error", {}).get("Code", ""))
            message = error.response.get("Error", {}).get("Message", "")
            retryable = (
                code in _RETRYABLE or int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) >= 500
            )
            raise IntegrationError(
                f"SES {'throttled' if retryable else 'rejected'} the message: {code}: {message}",
                retryable=retryable,
                details={"ses_error": code},
                action=None if retryable else SKIP_OR_CANCEL,
            ) from None
        except BotoCoreError as error:
            # a time-out may come after SES took the message; a refused connection never reached it
            sent = SideEffectStatus.FAILED if isinstance(error, EndpointConnectionError) else SideEffectStatus.UNKNOWN
            ctx.ledger.finish(effect, sent)
            raise IntegrationError(f"could not reach SES: {type(error).__name__}", retryable=True) from None
        output = {"message_id": answer.get("MessageId"), "to": to}
        ctx.ledger.finish(effect, SideEffectStatus.SUCCEEDED, output, message_id=output["message_id"])
        return output

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from chalicelib.engine import get_engine  # late: the engine imports the agents

                settings = get_engine().settings
                self._client = boto3.client("sesv2", region_name=settings.region, endpoint_url=settings.endpoint_url)
            return self._client


@dataclass
class _Message:
    """A rendered message; ``call`` is its ledger entry's identity."""

    sender: str
    to: list[str]
    destination: dict[str, Any]
    subject: str
    body: str
    call: PlannedCall


def _prepare(ctx: AgentContext) -> _Message:
    """Render the message from the step context, or raise the ``StepError`` of a bad one."""
    config, data = ctx.config, ctx.data
    to = _addresses(config.get("to"), data, "to")
    cc = _addresses(config.get("cc") or [], data, "cc")
    if len(to) + len(cc) > MAX_RECIPIENTS:
        raise AgentError(f"{len(to) + len(cc)} recipients; at most {MAX_RECIPIENTS}", retryable=False)
    sender = _render(
        str(config.get("from") or os.environ.get("STEPLINE_EMAIL_FROM") or ""), data, for_url=False, field="from"
    ).strip()
    if not _ADDRESS.match(sender.split("<")[-1].rstrip(">").strip() if "<" in sender else sender):
        raise AgentError(
            "no sender: set config.from or STEPLINE_EMAIL_FROM to a verified SES identity",
            retryable=False,
            action=EDIT_AND_RETRY,
        )
    subject = _render(str(config["subject"]), data, for_url=False, field="subject").replace("\n", " ")
    body = _render(str(config["body"]), data, for_url=False, field="body")
    destination: dict[str, Any] = {"ToAddresses": to}
    if cc:
        destination["CcAddresses"] = cc
    call = PlannedCall(
        SideEffectKind.EMAIL.value,
        "email to " + ", ".join(to + cc),
        ctx.ledger.key("email"),
        fingerprint("email", sender, to, cc, subject, body),
    )
    return _Message(sender, to, destination, subject, body, call)


def _addresses(raw: Any, data: Mapping[str, Any], field: str) -> list[str]:
    found: list[str] = []
    for index, template in enumerate([raw] if isinstance(raw, str) else list(raw or [])):
        text = str(template).strip()
        match = re.fullmatch(r"\{\{(.*)\}\}", text, re.S)
        if match:  # a lone placeholder may give a list of addresses
            from chalicelib.agents.base import evaluate

            value = evaluate(match.group(1).strip(), data)
            values = value if isinstance(value, list) else [value]
        else:
            values = [_render(text, data, for_url=False, field=f"{field}[{index}]")]
        for value in values:
            if not isinstance(value, str) or not _ADDRESS.match(value.strip()):
                raise AgentError(f"{field}: {value!r} is not an email address", retryable=False, action=SKIP_OR_CANCEL)
            found.append(value.strip())
    return found


def _tag(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", value)[:256]
