"""Bulk actions: cancel or retry every execution a list filter matches.

A dry run (the default) counts the matches and shows the first ids. Applying creates a
job record and sends its first chunk message on the step queue (``{"kind": "bulk",
"job_id", "chunk", "cursor"}``). Each chunk handler lists the next ``CHUNK_SIZE`` matches
from the cursor (the list's own page token), applies the action to each one as a normal
conditional command (a 409 is that execution's result, not the job's failure), moves the
job to the next chunk with a conditional update and sends the next message. So no request
and no Lambda invocation does more than one chunk of work, whatever the number of matches.

Pages walk newest first along the index range key, so executions the job itself moves out
of (or back into) the filter are never visited twice; a reserved result item per execution
makes a chunk delivered twice harmless.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from chalicelib.domain.machine import Actor, CancelExecution, RetryStep
from chalicelib.domain.states import StepState
from chalicelib.domain.timefmt import iso, parse_iso
from chalicelib.engine import Engine
from chalicelib.engine.listing import STATUSES, TRIGGERS, moment_problem
from chalicelib.errors import Conflict, FieldError, NotFound, SteplineError, StoreBusy, ValidationError
from chalicelib.store.bulk import PENDING, BulkJobRecord, BulkStore
from chalicelib.store.busy import STORE_ERRORS, transient
from chalicelib.store.lists import ListFilter

log = logging.getLogger("stepline.bulk")

ACTIONS = ("cancel", "retry")
CHUNK_SIZE = 25
MAX_CHUNK = 100
PREVIEW_IDS = 20
MAX_ITEMS = 10_000
#: A running job whose chunk has not moved for this long is re-driven by the sweep.
STALLED_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class BulkRequest:
    action: str
    filters: ListFilter
    dry_run: bool
    limit: int
    chunk_size: int = CHUNK_SIZE


def parse_bulk(body: dict[str, Any]) -> BulkRequest:
    """Validate a ``POST /executions/bulk`` body; every bad field is named."""
    errors: list[FieldError] = []
    unknown = sorted(set(body) - {"action", "filters", "dry_run", "limit", "chunk_size"})
    errors += [FieldError(k, "unknown field") for k in unknown]
    action = body.get("action")
    if action not in ACTIONS:
        errors.append(FieldError("action", "must be cancel or retry"))
    dry_run = body.get("dry_run", True)
    if not isinstance(dry_run, bool):
        errors.append(FieldError("dry_run", "must be true or false"))
    limit = body.get("limit", MAX_ITEMS)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_ITEMS:
        errors.append(FieldError("limit", f"must be an integer from 1 to {MAX_ITEMS}"))
    chunk_size = body.get("chunk_size", CHUNK_SIZE)
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or not 1 <= chunk_size <= MAX_CHUNK:
        errors.append(FieldError("chunk_size", f"must be an integer from 1 to {MAX_CHUNK}"))
    raw = body.get("filters", {})
    values: dict[str, str | None] = {}
    if not isinstance(raw, dict):
        errors.append(FieldError("filters", "must be an object"))
        raw = {}
    errors += [
        FieldError(f"filters.{k}", "unknown filter")
        for k in sorted(set(raw) - {"workflow_id", "status", "trigger", "from", "to"})
    ]
    # An explicit null would silently widen the filter to every workflow (or status, or time):
    # a bulk action must say what it matches, so null is refused; leave the key out instead.
    errors += [
        FieldError(f"filters.{k}", "must not be null; leave the filter out to match everything")
        for k in sorted(k for k, v in raw.items() if v is None)
    ]
    for name, allowed in (("status", STATUSES), ("trigger", TRIGGERS)):
        value = raw.get(name)
        if value is not None and value not in allowed:
            errors.append(FieldError(f"filters.{name}", f"must be one of {', '.join(allowed)}"))
        values[name] = value
    workflow_id = raw.get("workflow_id")
    if workflow_id is not None and (not isinstance(workflow_id, str) or not workflow_id):
        errors.append(FieldError("filters.workflow_id", "must be a workflow id"))
    for name in ("from", "to"):
        value = raw.get(name)
        problem = moment_problem(value) if value is not None else None
        if problem:
            errors.append(FieldError(f"filters.{name}", problem))
        values[name] = iso(parse_iso(value)) if value is not None and not problem else None
    if errors:
        raise ValidationError(errors)
    status = values["status"] or ("failed" if action == "retry" else None)
    filters = ListFilter(workflow_id, status, values["trigger"], values["from"], values["to"])
    return BulkRequest(str(action), filters, dry_run, int(limit), int(chunk_size))


class BulkService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lists = engine.store.executions.lists
        self.jobs = BulkStore()

    def _now(self) -> str:
        return iso(self.engine.executions.clock())

    def preview(self, request: BulkRequest) -> dict[str, Any]:
        """The dry run: how many executions match (up to the limit) and the first ids."""
        self._check_workflow(request.filters)
        now = self._now()
        count = self.lists.count(request.filters, now, request.limit)
        first, _ = self.lists.page(request.filters, PREVIEW_IDS, None, now)
        return {
            "dry_run": True,
            "action": request.action,
            "filters": request.filters.to_dict(),
            "count": count,
            "limit": request.limit,
            "first_ids": [row.execution_id for row in first],
        }

    def submit(self, request: BulkRequest, actor: Actor) -> BulkJobRecord:
        """Create the job and send its first chunk."""
        self._check_workflow(request.filters)
        job = BulkJobRecord(
            f"bulk_{uuid.uuid4().hex}",
            request.action,
            request.filters.to_dict(),
            "running",
            self._now(),
            actor.name,
            actor.role,
            request.limit,
            request.chunk_size,
            0,
            0,
            0,
            0,
            0,
            None,
        )
        self.jobs.create(job)
        self.engine.queue.send_task("bulk", {"job_id": job.job_id, "chunk": 0, "cursor": None})
        return job

    def run_chunk(self, payload: dict[str, Any]) -> str:
        """Process one chunk message. Returns what happened (for logs and tests)."""
        job_id, chunk, cursor = payload.get("job_id"), payload.get("chunk"), payload.get("cursor")
        if not isinstance(job_id, str) or not isinstance(chunk, int) or not (cursor is None or isinstance(cursor, str)):
            log.error("dropping malformed bulk message %r", payload)
            return "malformed"
        try:
            job = self.jobs.get(job_id)
        except NotFound:
            log.error("dropping bulk message for unknown job %s", job_id)
            return "unknown job"
        if job.state != "running" or job.chunk != chunk:
            return "stale"
        f = job.filters
        filters = ListFilter(f.get("workflow_id"), f.get("status"), f.get("trigger"), f.get("from"), f.get("to"))
        room = job.max_items - job.processed
        items, next_cursor = (
            self.lists.page(filters, min(job.chunk_size, room), cursor, job.created_at) if room > 0 else ([], None)
        )
        actor = Actor(job.created_by, job.created_role)
        handled = 0
        for row in items:
            if (
                not self.jobs.reserve(job_id, row.execution_id, self._now())
                and self.jobs.outcome(job_id, row.execution_id) != PENDING
            ):
                continue  # an earlier delivery handled it; a reservation still pending was cut short: redo it
            # apply_one turns any failure of the action into this execution's result
            outcome, status, message = self.apply_one(job.action, row.execution_id, actor, job_id)
            if self.jobs.record(job_id, row.execution_id, outcome, status, message, self._now()):
                handled += 1
        done = next_cursor is None or job.processed + handled >= job.max_items
        if not self.jobs.advance(job_id, chunk, done, self._now(), next_cursor):
            return "duplicate"
        if not done:
            self.engine.queue.send_task("bulk", {"job_id": job_id, "chunk": chunk + 1, "cursor": next_cursor})
        return "done" if done else "chunk"

    def redrive_stalled(self, stalled_after: timedelta = STALLED_AFTER) -> dict[str, int]:
        """Re-send the current chunk of every running job that has not moved for ``stalled_after``
        (its worker died between chunks, or the message was lost). Called by the sweep; each
        job is handled on its own, so one failing job does not stop the others."""
        now = self.engine.executions.clock()
        counts = {"bulk_redriven": 0, "bulk_errors": 0}
        for job_id in self.jobs.running():
            try:
                job = self.jobs.get(job_id)
                if job.state != "running":
                    self.jobs.forget_running(job_id, iso(now))
                    continue
                moved = parse_iso(job.updated_at or job.created_at)
                if now - moved < stalled_after or not self.jobs.touch(job_id, job.chunk, iso(now)):
                    continue
                cursor = self.jobs.cursor(job_id) if job.chunk else None
                self.engine.queue.send_task("bulk", {"job_id": job_id, "chunk": job.chunk, "cursor": cursor})
                log.warning("bulk job %s stalled at chunk %s since %s: re-driven", job_id, job.chunk, job.updated_at)
                counts["bulk_redriven"] += 1
            except NotFound:
                self.jobs.forget_running(job_id, iso(now))
            except Exception:
                log.exception("re-driving bulk job %s failed", job_id)
                counts["bulk_errors"] += 1
        return counts

    def apply_one(self, action: str, execution_id: str, actor: Actor, job_id: str) -> tuple[str, int, str | None]:
        """Apply the action to one execution: ("ok" | "conflict" | "error", HTTP status, message)."""
        executions = self.engine.executions
        try:
            if action == "cancel":
                state = executions.act(execution_id, CancelExecution(actor, f"bulk job {job_id}"))
            else:
                current = executions.load(execution_id).current
                if current is None or current.state != StepState.FAILED:
                    raise Conflict(f"execution {execution_id} has no failed step to retry")
                state = executions.act(execution_id, RetryStep(current.id, actor, None))
        except Conflict as error:
            return "conflict", error.status, error.message
        except SteplineError as error:
            return "error", error.status, error.message
        except Exception as error:
            if isinstance(error, STORE_ERRORS) and transient(error):
                # busy past the action's own retries: a 503 as an API client gets, to try again later
                busy = StoreBusy("the store is busy; try this execution again shortly")
                return "error", busy.status, busy.message
            log.exception("bulk %s of %s failed", action, execution_id)
            return "error", 500, f"{type(error).__name__}: {error}"
        return "ok", 200, f"now {state.status.value}"

    def _check_workflow(self, filters: ListFilter) -> None:
        if filters.workflow_id:
            self.engine.workflows.get(filters.workflow_id)  # 404 for an unknown workflow


def run_bulk_chunk(engine: Engine, payload: dict[str, Any]) -> str:
    """Entry point of the SQS handler for ``kind: "bulk"`` messages."""
    return BulkService(engine).run_chunk(payload)
