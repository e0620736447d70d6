"""Bulk jobs: the job record, its chunk counter and one result item per execution.

Item ``BULK#<job_id>`` / ``JOB`` holds the action, the filters, the counts and ``chunk``,
the number of the next chunk to run; ``BULK#<job_id>`` / ``R#<execution_id>`` holds what
happened to one execution. A result is *reserved* (conditional put) before the action
runs, so a chunk delivered twice by SQS never acts twice on an execution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.domain.timefmt import parse_iso
from chalicelib.errors import FieldError, NotFound, ValidationError
from chalicelib.store.executions import _conflict
from chalicelib.store.models import BulkJob, BulkResult, Marker, connection
from chalicelib.store.tokens import decode_token, encode_token

PENDING = "pending"
#: One marker item per job (sk = job id): the sweep finds stalled jobs with a Query. A finished
#: job's marker says ``done`` and expires a day later (TTL), so the Query stays short.
RUNNING_PK = "BULK#RUNNING"
DONE = "done"
DONE_MARKER_SECONDS = 86_400


@dataclass(frozen=True)
class BulkJobRecord:
    job_id: str
    action: str
    filters: dict[str, Any]
    state: str
    created_at: str
    created_by: str
    created_role: str
    max_items: int
    chunk_size: int
    chunk: int
    processed: int
    succeeded: int
    conflicts: int
    errors: int
    finished_at: str | None
    updated_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "action": self.action,
            "filters": self.filters,
            "state": self.state,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "limit": self.max_items,
            "chunk_size": self.chunk_size,
            "processed": self.processed,
            "succeeded": self.succeeded,
            "conflicts": self.conflicts,
            "errors": self.errors,
            "finished_at": self.finished_at,
        }


def _pk(job_id: str) -> str:
    return f"BULK#{job_id}"


class BulkStore:
    def create(self, job: BulkJobRecord) -> None:
        item = BulkJob(
            _pk(job.job_id),
            "JOB",
            job_id=job.job_id,
            action=job.action,
            filters=json.dumps(job.filters),
            state=job.state,
            created_at=job.created_at,
            created_by=job.created_by,
            created_role=job.created_role,
            max_items=job.max_items,
            chunk_size=job.chunk_size,
            chunk=0,
            processed=0,
            succeeded=0,
            conflicts=0,
            errors=0,
            updated_at=job.created_at,
        )
        with TransactWrite(connection=connection()) as tx:
            # precondition: a new job id
            tx.save(item, condition=BulkJob.pk.does_not_exist())
            tx.save(Marker(RUNNING_PK, job.job_id, value=job.job_id, created_at=job.created_at))

    def get(self, job_id: str) -> BulkJobRecord:
        try:
            item = BulkJob.get(_pk(job_id), "JOB", consistent_read=True)
        except DoesNotExist as error:
            raise NotFound(f"bulk job {job_id} not found") from error
        return BulkJobRecord(
            item.job_id,
            item.action,
            json.loads(item.filters),
            item.state,
            item.created_at,
            item.created_by,
            item.created_role,
            int(item.max_items),
            int(item.chunk_size),
            int(item.chunk),
            int(item.processed),
            int(item.succeeded),
            int(item.conflicts),
            int(item.errors),
            item.finished_at,
            item.updated_at,
        )

    def reserve(self, job_id: str, execution_id: str, at: str) -> bool:
        """Claim one execution for this job; False when an earlier delivery already did."""
        try:
            # precondition: this job has not touched this execution yet
            BulkResult(_pk(job_id), f"R#{execution_id}", execution_id=execution_id, outcome=PENDING, at=at).save(
                condition=BulkResult.pk.does_not_exist()
            )
        except PutError as error:
            if _conflict(error, "bulk result", "new"):
                return False
            raise
        return True

    def outcome(self, job_id: str, execution_id: str) -> str | None:
        """The recorded outcome for one execution (``pending``: reserved, never recorded)."""
        try:
            return BulkResult.get(_pk(job_id), f"R#{execution_id}", consistent_read=True).outcome
        except DoesNotExist:
            return None

    def record(self, job_id: str, execution_id: str, outcome: str, status: int, message: str | None, at: str) -> bool:
        """Write one execution's outcome and count it on the job, together; False when another
        delivery of the chunk recorded it first."""
        counter = {"ok": BulkJob.succeeded, "conflict": BulkJob.conflicts}.get(outcome, BulkJob.errors)
        try:
            with TransactWrite(connection=connection()) as tx:
                # precondition: the reservation of this delivery is still pending
                tx.update(
                    BulkResult(_pk(job_id), f"R#{execution_id}"),
                    actions=[
                        BulkResult.outcome.set(outcome),
                        BulkResult.status.set(status),
                        BulkResult.message.set(message) if message is not None else BulkResult.message.remove(),
                        BulkResult.at.set(at),
                    ],
                    condition=BulkResult.outcome == PENDING,
                )
                tx.update(
                    BulkJob(_pk(job_id), "JOB"),
                    actions=[BulkJob.processed.add(1), counter.add(1), BulkJob.updated_at.set(at)],
                )
        except TransactWriteError as error:
            if _conflict(error, "bulk result", PENDING):
                return False
            raise
        return True

    def advance(self, job_id: str, chunk: int, done: bool, at: str, cursor: str | None = None) -> bool:
        """Move the job past ``chunk`` (and finish it); False when another delivery already did.
        ``cursor`` is where the next chunk starts (kept so that a stalled job can be re-driven)."""
        keep = BulkJob.cursor.set(cursor) if cursor is not None else BulkJob.cursor.remove()
        actions: list[Action] = [BulkJob.chunk.set(chunk + 1), BulkJob.updated_at.set(at), keep]
        if done:
            actions += [BulkJob.state.set("done"), BulkJob.finished_at.set(at)]
        try:
            # precondition: this chunk is the job's current one
            BulkJob(_pk(job_id), "JOB").update(actions=actions, condition=BulkJob.chunk == chunk)
        except (UpdateError, TransactWriteError) as error:
            if _conflict(error, "bulk job", "chunk"):
                return False
            raise
        if done:
            self.forget_running(job_id, at)
        return True

    def running(self) -> list[str]:
        """Ids of the jobs not finished yet (a Query on the running markers, never a Scan)."""
        return [item.sk for item in Marker.query(RUNNING_PK, consistent_read=True) if item.value != DONE]

    def forget_running(self, job_id: str, at: str) -> None:
        # an overwrite, not a delete: the functions' policy grants no DeleteItem on the catalog
        Marker(
            RUNNING_PK,
            job_id,
            value=DONE,
            created_at=at,
            expires_at=int(parse_iso(at).timestamp()) + DONE_MARKER_SECONDS,
        ).save()

    def cursor(self, job_id: str) -> str | None:
        return BulkJob.get(_pk(job_id), "JOB", consistent_read=True).cursor

    def touch(self, job_id: str, chunk: int, at: str) -> bool:
        """Mark a re-drive of ``chunk``; False when the job moved on meanwhile."""
        try:
            # precondition: the job is still on this chunk
            BulkJob(_pk(job_id), "JOB").update(actions=[BulkJob.updated_at.set(at)], condition=BulkJob.chunk == chunk)
        except UpdateError as error:
            if _conflict(error, "bulk job", "chunk"):
                return False
            raise
        return True

    def results(self, job_id: str, limit: int, token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        scope = _pk(job_id)
        start = decode_token(token, scope, {"pk", "sk"})
        if start is not None and (start["pk"]["S"] != scope or not start["sk"]["S"].startswith("R#")):
            raise ValidationError(FieldError("next_token", "invalid or foreign pagination token"))
        rows = BulkResult.query(scope, BulkResult.sk.startswith("R#"), limit=limit, last_evaluated_key=start)
        items = [
            {
                "execution_id": r.execution_id,
                "outcome": r.outcome,
                "status": int(r.status) if r.status is not None else None,
                "message": r.message,
                "at": r.at,
            }
            for r in rows
        ]
        return items, encode_token(rows.last_evaluated_key, scope)
