"""Event triggers: sources and secrets, signed webhooks, EventBridge events, replay.

A delivery is verified on its raw bytes, then parsed, then deduplicated on its delivery id,
then stored, then matched. Its event id is derived from (source, delivery id) and each
execution it starts uses ``event:<event_id>`` as idempotency key, so a delivery whose first
attempt died half-way can simply run again: it finds the same event and the same executions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jmespath.exceptions import JMESPathError

from chalicelib.domain.expressions import compile_bounded
from chalicelib.domain.machine import Actor
from chalicelib.domain.signatures import SignatureProblem
from chalicelib.domain.timefmt import iso
from chalicelib.domain.vocabulary import TriggerKind
from chalicelib.engine.executions import ExecutionService
from chalicelib.engine.webhook_schemes import DEFAULT_UNSIGNED_DEDUPE_DAYS, SCHEMES, TIMESTAMPED_DEDUPE, Inbound, scheme
from chalicelib.engine.workflows import WorkflowService
from chalicelib.errors import Conflict, FieldError, NotFound, PayloadTooLarge, Unauthorized, ValidationError
from chalicelib.jsonlimits import json_value_problem
from chalicelib.store import WorkflowRecord
from chalicelib.store.triggers import EventRecord, SourceRecord, TriggerStore

log = logging.getLogger("stepline.events")

#: Webhook bodies above this answer 413. Bodies over the store's inline limit (64 KB) are kept
#: in the payload bucket (claim check), so the cap is set by what a sender reasonably posts,
#: far below API Gateway's 10 MB and Lambda's 6 MB request limits.
MAX_WEBHOOK_BYTES = 1024 * 1024
#: EventBridge event ids are remembered this long (EventBridge retries for up to 24 hours).
DEDUPE_TTL = TIMESTAMPED_DEDUPE
#: During a rotation the previous secret keeps verifying this long unless the request says otherwise.
DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=30)
#: A source's name (the OpenAPI states this pattern).
SOURCE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_NAME = re.compile(SOURCE_NAME_PATTERN[1:-1])
INTEGRATION = Actor("eventbridge", "system")
WEBHOOK = Actor("webhook", "system")


@dataclass(frozen=True)
class Delivery:
    """The answer to one webhook delivery."""

    status: int
    body: dict[str, Any]


class EventService:
    def __init__(
        self,
        store: TriggerStore,
        workflows: WorkflowService,
        executions: ExecutionService,
        clock: Callable[[], datetime],
        unsigned_dedupe: timedelta = timedelta(days=DEFAULT_UNSIGNED_DEDUPE_DAYS),
    ) -> None:
        self.store = store
        self.workflows = workflows
        self.executions = executions
        self.clock = clock
        #: How long delivery ids of schemes without a signed timestamp (GitHub) are kept.
        self.unsigned_dedupe = unsigned_dedupe

    # ----------------------------------------------------------------- sources
    def create_source(self, body: dict[str, Any], actor: Actor) -> dict[str, Any]:
        """A new source. Without ``secret`` one is generated and shown in this answer only; a
        provider-issued ``secret`` (Stripe, Slack, your GitHub one) is kept and never shown."""
        unknown = sorted(set(body) - {"name", "scheme", "secret"})
        errors = [FieldError(k, "unknown field") for k in unknown]
        name, kind = body.get("name"), body.get("scheme", "standard")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            errors.append(
                FieldError("name", "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
            )
        elif name.lower().startswith("aws."):
            # EventBridge sources (aws.s3, aws.partner/...) arrive through the integration handler;
            # a webhook source of that name could pose as them.
            errors.append(FieldError("name", "names starting with 'aws.' are reserved for EventBridge sources"))
        if not isinstance(kind, str) or kind not in SCHEMES:
            errors.append(FieldError("scheme", f"must be one of {', '.join(SCHEMES)}"))
        else:
            errors += _secret_errors(kind, body)
        if errors:
            raise ValidationError(errors)
        given = body.get("secret")
        record = self.store.create_source(str(name), kind, given or _new_secret(), iso(self.clock()), actor.name)
        return source_view(record) if given else {**source_view(record), "secret": record.secret}

    def rotate_secret(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(body) - {"grace_seconds", "secret"})
        if unknown:
            raise ValidationError([FieldError(k, "unknown field") for k in unknown])
        grace = grace_seconds(body)
        current = self.source(name)
        errors = _secret_errors(current.scheme, body)
        if errors:
            raise ValidationError(errors)
        given = body.get("secret")
        now = self.clock()
        record = self.store.rotate_source(
            name, current.secret, given or _new_secret(), int(now.timestamp()) + grace, iso(now)
        )
        return source_view(record) if given else {**source_view(record), "secret": record.secret}

    def source(self, name: str) -> SourceRecord:
        record = self.store.get_source(name)
        if record is None:
            raise NotFound(f"source {name} not found")
        return record

    def list_sources(self) -> list[dict[str, Any]]:
        return [source_view(s) for s in self.store.list_sources()]

    # ---------------------------------------------------------------- webhooks
    def receive_webhook(self, source_name: str, headers: Mapping[str, str], body: bytes) -> Delivery:
        """Verify, dedupe, store and match one webhook delivery."""
        if len(body) > MAX_WEBHOOK_BYTES:
            raise PayloadTooLarge(f"webhook body is over {MAX_WEBHOOK_BYTES} bytes")
        source = self.store.get_source(source_name)
        if source is None:
            raise NotFound(f"source {source_name} not found")
        now = self.clock()
        try:
            inbound = scheme(source.scheme).read(headers, body, source.secrets(now.timestamp()), now)
        except SignatureProblem as problem:
            raise Unauthorized(f"webhook not authentic: {problem}") from problem
        if inbound.direct_answer is not None:  # e.g. Slack's url_verification: authentic, starts nothing
            return Delivery(200, inbound.direct_answer)
        return self._deliver(source, inbound, now)

    def _deliver(self, source: SourceRecord, inbound: Inbound, now: datetime) -> Delivery:
        event_id = _event_id(source.name, inbound.delivery_id)
        keep = TIMESTAMPED_DEDUPE if inbound.signed_timestamp else self.unsigned_dedupe
        first = self.store.claim_delivery(
            source.name, inbound.delivery_id, event_id, iso(now), int(now.timestamp()), int((now + keep).timestamp())
        )
        if first:  # seen before and answered: the first answer, nothing new
            return Delivery(200, first)
        answer = self.ingest(
            EventRecord(
                event_id, source.name, inbound.event_type, inbound.payload, "webhook", inbound.delivery_id, iso(now)
            ),
            WEBHOOK,
        )
        self.store.answer_delivery(source.name, inbound.delivery_id, answer)
        return Delivery(202 if first is None else 200, answer)

    # ------------------------------------------------------------- EventBridge
    def receive_integration(self, event: dict[str, Any]) -> dict[str, Any]:
        """An EventBridge event: source ``event.source``, type ``event.detail-type``, payload the whole event."""
        source, event_type, raw_id = event.get("source"), event.get("detail-type"), event.get("id")
        if not (isinstance(source, str) and source and isinstance(event_type, str) and event_type) or not (
            isinstance(raw_id, str) and raw_id
        ):
            log.error("dropping EventBridge event without source, detail-type or id: %s", str(event)[:500])
            return {"event_id": None, "executions": []}
        problem = json_value_problem(event)
        if problem is not None:
            # Nobody to answer a 400 to: drop it (a retry would bring the same event) and say why.
            log.error("dropping EventBridge event %s from %s: %s%s: %s", raw_id, source, "event", *problem)
            return {"event_id": None, "executions": []}
        now = self.clock()
        event_id = _event_id(source, raw_id)
        first = self.store.claim_delivery(
            source, raw_id, event_id, iso(now), int(now.timestamp()), int((now + DEDUPE_TTL).timestamp())
        )
        if first:
            return first
        answer = self.ingest(
            EventRecord(event_id, source, event_type, event, "eventbridge", raw_id, iso(now)), INTEGRATION
        )
        self.store.answer_delivery(source, raw_id, answer)
        return answer

    # ----------------------------------------------------------------- common
    def ingest(self, event: EventRecord, actor: Actor) -> dict[str, Any]:
        """Store the event (once), start every matching workflow (once each), record which."""
        self.store.put_event(event)
        started = self._start_matching(event, actor, replay=False)
        self.store.set_event_executions(event.event_id, started)
        return {"event_id": event.event_id, "executions": started}

    def replay(self, event_id: str, actor: Actor) -> dict[str, Any]:
        """Start fresh executions for a stored event, marked as replays."""
        event = self.store.get_event(event_id)
        started = self._start_matching(event, actor, replay=True)
        return {"event_id": event.event_id, "replay": True, "executions": started}

    def get_event(self, event_id: str) -> dict[str, Any]:
        e = self.store.get_event(event_id)
        return {
            "event_id": e.event_id,
            "source": e.source,
            "type": e.event_type,
            "via": e.via,
            "delivery_id": e.delivery_id,
            "received_at": e.received_at,
            "payload": e.payload,
            "executions": e.executions,
        }

    def _start_matching(self, event: EventRecord, actor: Actor, replay: bool) -> list[str]:
        started: list[str] = []
        for workflow_id in sorted(set(self.store.subscribers(event.source, event.event_type))):
            try:
                record = self.workflows.get(workflow_id)
            except NotFound:
                continue
            if not record.enabled or not matches(record, event):
                continue
            trigger = {
                "type": "event",
                "source": event.source,
                "event_type": event.event_type,
                "event_id": event.event_id,
                "replay": replay,
            }
            if replay:
                trigger["replayed_by"] = actor.name
            key = None if replay else f"event:{event.event_id}"  # a replay always starts afresh
            try:
                state = self.executions.start(workflow_id, event.payload, trigger, actor, key)
            except Conflict as error:  # disabled between the read and the start
                log.info("event %s did not start %s: %s", event.event_id, workflow_id, error)
                continue
            started.append(state.execution_id)
        return started


def matches(record: WorkflowRecord, event: EventRecord) -> bool:
    """Does the workflow's current event trigger take this event? The head is the truth,
    the subscription item only the index that found it."""
    trigger = record.definition.get("trigger") or {}
    if (
        trigger.get("type") != TriggerKind.EVENT
        or trigger.get("source") != event.source
        or trigger.get("event_type") != event.event_type
    ):
        return False
    expression = trigger.get("filter")
    if not expression:
        return True
    try:
        return _truthy(compile_bounded(expression).search(event.payload))
    except (JMESPathError, TypeError, ValueError, RecursionError) as error:  # e.g. comparing a string: not a match
        log.info("filter of %s failed on event %s: %s", record.workflow_id, event.event_id, error)
        return False


def _truthy(value: Any) -> bool:
    """JMESPath truth: false, null, empty strings, lists and objects are false; numbers are true."""
    if value is None or value is False:
        return False
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return True


def source_view(record: SourceRecord) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": record.name,
        "scheme": record.scheme,
        "created_at": record.created_at,
        "rotated_at": record.rotated_at,
    }
    if record.previous_expires_at:
        view["previous_secret_expires_at"] = iso(datetime.fromtimestamp(record.previous_expires_at, tz=UTC))
    return view


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _event_id(source: str, delivery_id: str) -> str:
    return "evt_" + hashlib.sha256(f"{source}\n{delivery_id}".encode()).hexdigest()[:32]


def grace_seconds(body: dict[str, Any]) -> int:
    """A rotation's ``grace_seconds`` (default a day), or a 400: how long the old secret stays valid."""
    grace = body.get("grace_seconds", int(DEFAULT_GRACE.total_seconds()))
    if isinstance(grace, float) and grace.is_integer():
        grace = int(grace)  # JSON Schema's "integer" includes 48417.0, and the OpenAPI says integer
    if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= MAX_GRACE.total_seconds():
        raise ValidationError(
            FieldError("grace_seconds", f"must be an integer from 0 to {int(MAX_GRACE.total_seconds())}")
        )
    return grace


def _secret_errors(kind: str, body: dict[str, Any]) -> list[FieldError]:
    """A given ``secret`` must fit its scheme; Stripe and Slack issue theirs, so it is required."""
    chosen = SCHEMES[kind]
    given = body.get("secret")
    if "secret" in body and not isinstance(given, str):
        return [FieldError("secret", "must be a string (leave it out to have one generated)")]
    if given is None:
        if chosen.provider_secret:
            return [FieldError("secret", f"{kind} issues the signing secret: pass it as 'secret'")]
        return []
    if not isinstance(given, str):
        return [FieldError("secret", "must be a string")]
    problem = chosen.check_secret(given)
    return [FieldError("secret", problem)] if problem else []


DEFAULT_EVENT_PATTERN: dict[str, Any] = {"source": ["aws.s3"], "detail-type": ["Object Created"]}


def integration_event_pattern(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The EventBridge pattern of the integration handler, per stage: ``STEPLINE_EVENT_PATTERN``
    (JSON) when packaging, else S3 "Object Created" events. Read when ``app.py`` is imported,
    because Chalice needs it to write the rule; invalid JSON fails the packaging loudly."""
    env = os.environ if env is None else env
    raw = env.get("STEPLINE_EVENT_PATTERN")
    if not raw:
        return dict(DEFAULT_EVENT_PATTERN)
    pattern = json.loads(raw)
    if not isinstance(pattern, dict) or not pattern:
        raise ValueError("STEPLINE_EVENT_PATTERN must be a non-empty JSON object (an EventBridge event pattern)")
    return pattern
