"""Telling people and systems that an execution changed status.

Two entries:

* ``Notifier.announce``, called by the stream aggregator (``chalicelib.engine.aggregator``)
  once per head change it applied: an EventBridge event on the default bus for *every*
  status change (``source`` ``stepline``, ``detail-type`` ``Execution Status Change``), as
  Step Functions emits ``Step Functions Execution Status Change`` for its executions;
* ``Notifier.notify_status_change``, called after a status change is committed (by the
  worker, the sweep or an operator action), for the workflow's ``notify`` targets that asked for this moment (``gate_waiting``,
  ``failed``, ``completed``), an email through SES v2 or a webhook POST signed with
  Standard Webhooks (https://www.standardwebhooks.com/) under the workflow's notification
  secret.

Delivery never breaks the step path: the status change is already stored, so every
failure is logged, counted (``NotificationsFailed`` metric and the ``notifications_failed``
counter in ``GET /health`` details) and swallowed. Webhooks get a short time-out so a slow
receiver delays a worker by seconds at most.

A webhook that fails is tried again later, as Standard Webhooks senders do: a ``notify`` task
on the step queue with an SQS delay (``RETRY_DELAYS``, jittered; ``STEPLINE_NOTIFY_RETRY_DELAYS``
overrides them), same ``webhook-id`` so the receiver can drop a repeat, freshly signed. Each
failed attempt is logged and counted; after the last one the delivery is given up (logged at
error level with the message id).

The secret can be rotated (``rotate_secret``): the previous one keeps signing beside the new
one (``webhook-signature`` carries both, as the scheme allows) for a grace period, so a
receiver can switch without losing a delivery.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import random
import secrets
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain.machine import ExecutionState
from chalicelib.domain.notify import NotifyTarget, notify_event, webhook_url_problem
from chalicelib.domain.signatures import sign_standard
from chalicelib.domain.states import StepState
from chalicelib.observability import metric
from chalicelib.outbound import open_url, url_template_problem

log = logging.getLogger("stepline.notifications")

EVENT_SOURCE = "stepline"
EVENT_DETAIL_TYPE = "Execution Status Change"
WEBHOOK_TIMEOUT_SECONDS = 5.0
#: Catalog items: a workflow's notification secret, the one it replaced (with its expiry), the failure counter.
SECRET_KEY = ("NOTIFY#{workflow_id}", "SECRET")
PREVIOUS_KEY = ("NOTIFY#{workflow_id}", "PREVIOUS")
FAILED_COUNTER = ("COUNT#NOTIFY", "FAILED")
#: Seconds before each further webhook attempt (so 1 + len attempts in all); SQS delays stop at 900 s.
RETRY_DELAYS = (30, 120, 600)
RETRY_DELAYS_ENV = "STEPLINE_NOTIFY_RETRY_DELAYS"
#: A retry task carries the event's detail; larger ones are not retried (an SQS message holds 256 KB).
MAX_RETRY_TASK_BYTES = 200_000
TASK_KIND = "notify"


class SecretStore(Protocol):
    def get_marker(self, pk: str, sk: str) -> str | None: ...

    def create_marker(self, pk: str, sk: str, value: str, at: str) -> bool: ...

    def put_marker(self, pk: str, sk: str, value: str, at: str) -> None: ...

    def replace_marker(self, pk: str, sk: str, value: str, at: str, expected: str | None) -> None: ...

    def add_to_count(self, pk: str, sk: str, by: int) -> int: ...

    def get_count(self, pk: str, sk: str) -> int: ...


#: POSTs ``body`` with ``headers`` to ``url`` within ``timeout`` seconds; returns the HTTP status.
Poster = Callable[[str, bytes, dict[str, str], float], int]
#: Sends a task message (kind, payload, delay in seconds) on the step queue.
TaskSender = Callable[[str, dict[str, Any], int], None]


def retry_delays(env: Any = None) -> tuple[int, ...]:
    """``RETRY_DELAYS``, or ``STEPLINE_NOTIFY_RETRY_DELAYS`` (comma-separated seconds, 0-900)."""
    raw = (os.environ if env is None else env).get(RETRY_DELAYS_ENV)
    if not raw:
        return RETRY_DELAYS
    return tuple(min(900, max(0, int(part))) for part in raw.split(",") if part.strip())


def _jittered(seconds: int) -> int:
    """Up to 20% either way, so receivers that failed together are not retried together."""
    return min(900, max(0, round(seconds * random.uniform(0.8, 1.2))))


@dataclass
class Delivery:
    """What one status change sent: channel -> outcome (``sent`` or the error text)."""

    event: str | None
    outcomes: dict[str, str] = field(default_factory=dict)


def new_notification_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST through the outbound guard (no private addresses, no redirects); non-2xx raises."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with open_url(request, timeout) as response:
        return int(response.status)


class Notifier:
    def __init__(
        self,
        catalog: SecretStore,
        clients: Callable[[str], Any],
        sender: str,
        clock: Callable[[], datetime],
        post: Poster = _post,
        send_task: TaskSender | None = None,
    ) -> None:
        self.catalog = catalog
        self.clients = clients  # boto3 client factory, called lazily: "events", "sesv2"
        self.sender = sender
        self.clock = clock
        self.post = post
        self.send_task = send_task  # None: no retries (a failed webhook is only counted)

    # --------------------------------------------------------------- the entry
    def notify_status_change(self, state: ExecutionState, before: str | None, seq: int | None = None) -> Delivery:
        """Announce that ``state`` just moved from ``before`` (None: it just started). Never raises."""
        after = state.status.value
        detail = status_detail(state, before)
        delivery = Delivery(notify_event(after))
        if delivery.event is None:
            return delivery
        message_id = f"msg_{state.execution_id}_{seq if seq is not None else state.seq}"
        for index, target in enumerate(state.definition.notify):
            if delivery.event not in target.on:
                continue
            name = f"{target.channel}[{index}]"
            self._attempt(
                delivery, name, functools.partial(self._deliver, target, delivery.event or "", detail, message_id)
            )
            if delivery.outcomes.get(name) == "sent":
                log.info("notified %s of %s", target.email or target.webhook, delivery.event)
        return delivery

    def announce(self, state: ExecutionState, before: str | None) -> Delivery:
        """Put the EventBridge status event of ``state`` (just moved from ``before``). Never raises."""
        return self.announce_detail(status_detail(state, before))

    def announce_detail(self, detail: dict[str, Any]) -> Delivery:
        """Put one EventBridge status event with this ``detail``. Never raises."""
        delivery = Delivery(None)
        self._attempt(delivery, "eventbridge", lambda: self._put_event(detail))
        return delivery

    def _attempt(self, delivery: Delivery, name: str, send: Callable[[], None]) -> None:
        try:
            send()
            delivery.outcomes[name] = "sent"
        except Exception as error:
            delivery.outcomes[name] = f"{type(error).__name__}: {error}"
            log.warning("notification %s for %s failed: %s", name, delivery.event or "status change", error)
            metric("NotificationsFailed", 1, dimensions={"Channel": name.split("[")[0]})
            try:
                self.catalog.add_to_count(*FAILED_COUNTER, by=1)
            except Exception:
                log.exception("could not count a failed notification")

    # --------------------------------------------------------------- channels
    def _put_event(self, detail: dict[str, Any]) -> None:
        answer = self.clients("events").put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": EVENT_DETAIL_TYPE,
                    "Detail": json.dumps(detail, default=str),
                    "Resources": [],
                }
            ]
        )
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the event: {answer.get('Entries')}")

    def _deliver(self, target: NotifyTarget, event: str, detail: dict[str, Any], message_id: str) -> None:
        if target.email:
            self._email(target.email, event, detail)
            return
        try:
            self._webhook(target.webhook or "", event, detail, message_id)
        except Exception:
            self._schedule_retry(target.webhook or "", event, detail, message_id, attempt=1)
            raise

    # ----------------------------------------------------------------- retries
    def _schedule_retry(self, url: str, event: str, detail: dict[str, Any], message_id: str, attempt: int) -> None:
        """Queue attempt ``attempt + 1`` of a failed webhook, or give up after the last one."""
        delays = retry_delays()
        if self.send_task is None:
            return
        if attempt > len(delays):
            log.error("notification %s to %s given up after %d attempts", message_id, url, attempt)
            metric("NotificationsGivenUp", 1)
            return
        task = {"url": url, "event": event, "detail": detail, "message_id": message_id, "attempt": attempt + 1}
        if len(json.dumps(task, default=str)) > MAX_RETRY_TASK_BYTES:
            log.error("notification %s to %s not retried: its event is too large for a queue message", message_id, url)
            return
        delay = _jittered(delays[attempt - 1])
        try:
            self.send_task(TASK_KIND, task, delay)
            log.info("notification %s to %s: attempt %d in %d s", message_id, url, attempt + 1, delay)
        except Exception:
            log.exception("could not queue the retry of notification %s", message_id)

    def redeliver(self, task: dict[str, Any]) -> str:
        """Run one queued webhook retry (a ``notify`` task); never raises (the task is not redelivered)."""
        try:
            url, event, message_id = str(task["url"]), str(task["event"]), str(task["message_id"])
            detail, attempt = dict(task["detail"]), int(task["attempt"])
        except (KeyError, TypeError, ValueError) as error:
            log.error("dropping a malformed notification task: %s", error)
            return "malformed"
        delivery = Delivery(event)
        self._attempt(delivery, f"webhook retry {attempt}", lambda: self._webhook(url, event, detail, message_id))
        if delivery.outcomes[f"webhook retry {attempt}"] == "sent":
            log.info("notification %s delivered on attempt %d", message_id, attempt)
            return "sent"
        self._schedule_retry(url, event, detail, message_id, attempt)
        return "failed"

    def _email(self, address: str, event: str, detail: dict[str, Any]) -> None:
        subject, text = email_text(event, detail)
        self.clients("sesv2").send_email(
            FromEmailAddress=self.sender,
            Destination={"ToAddresses": [address]},
            Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}}},
        )

    def _webhook(self, url: str, event: str, detail: dict[str, Any], message_id: str) -> None:
        problem = webhook_url_problem(url) or url_template_problem(url)
        if problem:
            raise ValueError(f"webhook URL {problem}")
        now = self.clock()
        keys = self.signing_secrets(detail["workflow_id"], now)
        if not keys:
            raise RuntimeError("the workflow has no notification secret")
        body = json.dumps(
            {"type": f"execution.{event}", "timestamp": now.isoformat().replace("+00:00", "Z"), "data": detail},
            default=str,
        ).encode()
        stamp = int(now.timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": "Stepline-Notifications",
            "webhook-id": message_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": " ".join(sign_standard(key, message_id, stamp, body) for key in keys),
        }
        status = self.post(url, body, headers, WEBHOOK_TIMEOUT_SECONDS)
        if not 200 <= status < 300:
            raise RuntimeError(f"webhook answered HTTP {status}")

    # ----------------------------------------------------------------- secrets
    def ensure_secret(self, workflow_id: str, targets: tuple[NotifyTarget, ...], at: str) -> str | None:
        """Create the workflow's notification secret when it first gets a webhook target.

        Returns the new secret (shown once, in that answer), or None when none was needed
        or one exists already.
        """
        if not any(t.webhook for t in targets):
            return None
        secret = new_notification_secret()
        # precondition (in the store): no secret yet; a concurrent update that lost shows none
        return secret if self.catalog.create_marker(*_secret_key(workflow_id), value=secret, at=at) else None

    def signing_secrets(self, workflow_id: str, now: datetime) -> list[str]:
        """The current secret, and the previous one while its grace period lasts."""
        current = self.catalog.get_marker(*_secret_key(workflow_id))
        keys = [current] if current else []
        previous = self.catalog.get_marker(*_previous_key(workflow_id))
        if previous:
            old = json.loads(previous)
            if float(old["until"]) > now.timestamp():
                keys.append(str(old["secret"]))
        return keys

    def rotate_secret(self, workflow_id: str, grace_seconds: int, at: datetime) -> tuple[str, str]:
        """A new notification secret (answered once); the old one signs too for ``grace_seconds``.
        Returns the new secret and when the old one stops signing (ISO)."""
        old = self.catalog.get_marker(*_secret_key(workflow_id))
        until = at.timestamp() + grace_seconds
        stamp = at.isoformat().replace("+00:00", "Z")
        secret = new_notification_secret()
        self.catalog.replace_marker(*_secret_key(workflow_id), secret, stamp, expected=old)  # 409 if raced
        if old:
            self.catalog.put_marker(*_previous_key(workflow_id), json.dumps({"secret": old, "until": until}), stamp)
        return secret, datetime.fromtimestamp(until, at.tzinfo).isoformat().replace("+00:00", "Z")

    def failures(self) -> int:
        return self.catalog.get_count(*FAILED_COUNTER)


def _secret_key(workflow_id: str) -> tuple[str, str]:
    return SECRET_KEY[0].format(workflow_id=workflow_id), SECRET_KEY[1]


def _previous_key(workflow_id: str) -> tuple[str, str]:
    return PREVIOUS_KEY[0].format(workflow_id=workflow_id), PREVIOUS_KEY[1]


def status_detail(state: ExecutionState, before: str | None) -> dict[str, Any]:
    """The event's ``detail`` (and a webhook's ``data``): the execution and its current step."""
    detail: dict[str, Any] = {
        "execution_id": state.execution_id,
        "workflow_id": state.workflow_id,
        "workflow_name": state.definition.name,
        "workflow_version": state.workflow_version,
        "status": state.status.value,
        "previous_status": before,
        "started_at": state.started_at,
        "ended_at": state.ended_at,
        "trigger": str(state.trigger.get("type", "manual")),
    }
    step = state.current
    if step is not None:
        sdef = state.step_def(step.id)
        current: dict[str, Any] = {"id": step.id, "name": sdef.name, "state": step.state.value, "attempt": step.attempt}
        if sdef.gate is not None and step.state == StepState.WAITING_FOR_APPROVAL:
            current["gate"] = sdef.gate.type
            current["approvers"] = list(sdef.gate.approvers)
            current["output"] = step.output
            if step.gate_due:
                current["gate_timeout_at"] = step.gate_due
        if step.error:
            current["error"] = step.error
        detail["step"] = current
    return detail


_SUBJECTS = {
    "gate_waiting": "waits for a decision",
    "failed": "failed and waits for an operator",
    "completed": "completed",
}


def email_text(event: str, detail: dict[str, Any]) -> tuple[str, str]:
    """Subject and plain-text body of a notification email."""
    name, ex = detail.get("workflow_name"), detail["execution_id"]
    subject = f"[Stepline] {name}: execution {_SUBJECTS.get(event, event)}"
    lines = [
        f"Workflow: {name} ({detail['workflow_id']} v{detail['workflow_version']})",
        f"Execution: {ex}",
        f"Status: {detail['status']} (was {detail.get('previous_status')})",
    ]
    step = detail.get("step") or {}
    if event == "gate_waiting" and step:
        who = ", ".join(step.get("approvers") or []) or "any operator"
        lines += [
            f"Step {step['id']} waits for {step.get('gate')} by {who}.",
            f"Output to decide on: {json.dumps(step.get('output'), default=str)[:2000]}",
            f"Approve:  stepline approve {ex} {step['id']}",
            f"Reject:   stepline reject {ex} {step['id']} -m '<reason>'",
        ]
        if step.get("gate_timeout_at"):
            lines.append(f"Decided by the system at {step['gate_timeout_at']} if nobody decides.")
    elif event == "failed" and step:
        error = step.get("error") or {}
        lines += [
            f"Step {step['id']} failed: {error.get('kind')}: {error.get('message')}",
            f"Retry:    stepline retry {ex} {step['id']}",
            f"Skip:     stepline skip {ex} {step['id']}",
        ]
    return subject, "\n".join(lines) + "\n"
