"""PynamoDB models for Stepline's two tables (see docs/design.md for the key design).

Models are built per ``Settings`` (table names, region and endpoint come from the
environment at run time, never at import), and cached, so importing the app touches no AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pynamodb.attributes import BooleanAttribute, ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.config import Settings


@dataclass(frozen=True)
class Models:
    """The model classes bound to one deployment's tables."""

    WorkflowHead: Any
    WorkflowVersion: Any
    Counters: Any
    ApiKey: Any
    Marker: Any
    Summary: Any
    EventItem: Any
    connection: Connection
    #: monitoring (issue 6): per-workflow per-hour statistics, bulk jobs and their results
    Stats: Any = None
    BulkJob: Any = None
    BulkResult: Any = None


def build_models(settings: Settings) -> Models:
    return _build(settings.catalog_table, settings.executions_table, settings.region, settings.endpoint_url)


def table_meta(table: str, region: str, host: str | None) -> type:
    """A PynamoDB ``Meta`` for one table; names and endpoint come from ``Settings`` at run time."""
    return type("Meta", (), {"table_name": table, "region": region, "host": host})


@lru_cache(maxsize=8)
def _build(catalog: str, executions: str, region: str, host: str | None) -> Models:
    CatalogMeta = table_meta(catalog, region, host)
    ExecutionsMeta = table_meta(executions, region, host)

    class ByKind(GlobalSecondaryIndex):
        class Meta:
            index_name = "by_kind"
            projection = AllProjection()

        kind = UnicodeAttribute(hash_key=True)
        name_sk = UnicodeAttribute(range_key=True)

    class WorkflowHead(Model):
        Meta = CatalogMeta
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        kind = UnicodeAttribute(default="workflow")
        name_sk = UnicodeAttribute()
        workflow_id = UnicodeAttribute()
        name = UnicodeAttribute()
        enabled = BooleanAttribute()
        version = NumberAttribute()
        trigger_type = UnicodeAttribute()
        definition = UnicodeAttribute()
        created_at = UnicodeAttribute()
        updated_at = UnicodeAttribute()
        updated_by = UnicodeAttribute(null=True)
        by_kind = ByKind()

    class WorkflowVersion(Model):
        Meta = CatalogMeta
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        definition = UnicodeAttribute()
        created_at = UnicodeAttribute()
        created_by = UnicodeAttribute(null=True)

    class Counters(Model):
        Meta = CatalogMeta
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        active = NumberAttribute(default=0)
        #: running totals kept by named counters (e.g. dead letters handled)
        total = NumberAttribute(null=True)

    class ApiKey(Model):
        Meta = CatalogMeta
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        name = UnicodeAttribute()
        role = UnicodeAttribute()
        created_at = UnicodeAttribute()
        created_by = UnicodeAttribute(null=True)
        #: listed through by_kind ("apikey", "<name>#<hash prefix>"); keys made before the
        #: list existed carry neither and are not listed
        kind = UnicodeAttribute(null=True)
        name_sk = UnicodeAttribute(null=True)
        by_kind = ByKind()

    class Marker(Model):
        """Small keyed records: idempotency keys, sweep watermarks."""

        Meta = CatalogMeta
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        value = UnicodeAttribute(null=True)
        created_at = UnicodeAttribute(null=True)
        expires_at = NumberAttribute(null=True)

    class ByWorkflow(GlobalSecondaryIndex):
        class Meta:
            index_name = "by_workflow"
            # keys only: status changes then cost this index nothing (lists read the summaries)
            projection = KeysOnlyProjection()

        g_wf = UnicodeAttribute(hash_key=True)
        start_sk = UnicodeAttribute(range_key=True)

    class ByWorkflowStatus(GlobalSecondaryIndex):
        class Meta:
            index_name = "by_workflow_status"
            projection = AllProjection()

        g_wf_status = UnicodeAttribute(hash_key=True)
        start_sk = UnicodeAttribute(range_key=True)

    class Summary(Model):
        Meta = ExecutionsMeta
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        execution_id = UnicodeAttribute()
        workflow_id = UnicodeAttribute()
        workflow_version = NumberAttribute()
        status = UnicodeAttribute()
        trigger_type = UnicodeAttribute()
        trigger = UnicodeAttribute()
        started_at = UnicodeAttribute()
        ended_at = UnicodeAttribute(null=True)
        #: last event sequence number of the commit that set this status: only a later one may
        #: move the head (forward only), and the aggregator replays the history up to it
        seq = NumberAttribute(null=True)
        g_wf = UnicodeAttribute()
        g_wf_status = UnicodeAttribute()
        start_sk = UnicodeAttribute()
        by_workflow = ByWorkflow()
        by_workflow_status = ByWorkflowStatus()
        # list indexes of chalicelib/store/lists.py (see docs/design.md, "Lists")
        g_wf_trigger = UnicodeAttribute(null=True)
        g_wf_st = UnicodeAttribute(null=True)
        g_month = UnicodeAttribute(null=True)
        g_month_trigger = UnicodeAttribute(null=True)
        g_month_status = UnicodeAttribute(null=True)
        g_month_st = UnicodeAttribute(null=True)
        expires_at = NumberAttribute(null=True)
        by_workflow_trigger = _gsi("by_workflow_trigger", "g_wf_trigger", keys_only=True)
        by_workflow_status_trigger = _gsi("by_workflow_status_trigger", "g_wf_st", keys_only=False)
        by_month = _gsi("by_month", "g_month", keys_only=True)
        by_month_trigger = _gsi("by_month_trigger", "g_month_trigger", keys_only=True)
        by_month_status = _gsi("by_month_status", "g_month_status", keys_only=False)
        by_month_status_trigger = _gsi("by_month_status_trigger", "g_month_st", keys_only=False)

    class ByDue(GlobalSecondaryIndex):
        class Meta:
            index_name = "by_due"
            projection = KeysOnlyProjection()

        due_bucket = UnicodeAttribute(hash_key=True)
        due_at = UnicodeAttribute(range_key=True)

    class EventItem(Model):
        Meta = ExecutionsMeta
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        type = UnicodeAttribute()
        at = UnicodeAttribute()
        step_id = UnicodeAttribute(null=True)
        attempt = NumberAttribute(null=True)
        actor = UnicodeAttribute(null=True)
        details = UnicodeAttribute(default="{}")
        #: S3 key of the details when they were too large to keep inline (store/payloads.py)
        details_ref = UnicodeAttribute(null=True)
        #: a commit of several events (docs/design.md, "Commits"): their JSON list, inline or in S3
        events = UnicodeAttribute(null=True)
        events_ref = UnicodeAttribute(null=True)
        due_bucket = UnicodeAttribute(null=True)
        due_at = UnicodeAttribute(null=True)
        expires_at = NumberAttribute(null=True)
        by_due = ByDue()

    connection = Connection(region=region, host=host)
    stats, job, result = _monitoring_models(CatalogMeta)
    return Models(
        WorkflowHead, WorkflowVersion, Counters, ApiKey, Marker, Summary, EventItem, connection, stats, job, result
    )


def _gsi(name: str, hash_attr: str, *, keys_only: bool) -> Any:
    """A summary GSI hashed on ``hash_attr`` and ranged on ``start_sk`` (newest first)."""
    meta = type("Meta", (), {"index_name": name, "projection": KeysOnlyProjection() if keys_only else AllProjection()})
    attrs = {"Meta": meta, hash_attr: UnicodeAttribute(hash_key=True), "start_sk": UnicodeAttribute(range_key=True)}
    return type(f"Index_{name}", (GlobalSecondaryIndex,), attrs)()


#: Execution statuses counted per stats item (``n_<status>``).
STAT_STATUSES = ("running", "waiting", "completed", "failed", "cancelled")
#: Duration histogram bins (``d_<bin>`` counts, ``s_<bin>`` sums), see chalicelib/domain/histogram.py.
STAT_BINS = 106


def _monitoring_models(catalog_meta: Any) -> tuple[Any, Any, Any]:
    stats_attrs: dict[str, Any] = {
        "Meta": catalog_meta,
        "pk": UnicodeAttribute(hash_key=True),
        "sk": UnicodeAttribute(range_key=True),
        "d_sum": NumberAttribute(null=True),
    }
    for status in STAT_STATUSES:
        stats_attrs[f"n_{status}"] = NumberAttribute(null=True)
    for index in range(STAT_BINS):
        stats_attrs[f"d_{index}"] = NumberAttribute(null=True)
        stats_attrs[f"s_{index}"] = NumberAttribute(null=True)  # seconds summed in the bin
    stats_attrs["samples"] = ListAttribute(of=NumberAttribute, null=True)  # the first few, exact
    Stats = type("Stats", (Model,), stats_attrs)

    class BulkJob(Model):
        Meta = catalog_meta
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        job_id = UnicodeAttribute()
        action = UnicodeAttribute()
        filters = UnicodeAttribute()
        state = UnicodeAttribute()
        created_at = UnicodeAttribute()
        created_by = UnicodeAttribute()
        created_role = UnicodeAttribute()
        max_items = NumberAttribute()
        chunk_size = NumberAttribute(default=25)
        chunk = NumberAttribute(default=0)
        processed = NumberAttribute(default=0)
        succeeded = NumberAttribute(default=0)
        conflicts = NumberAttribute(default=0)
        errors = NumberAttribute(default=0)
        updated_at = UnicodeAttribute(null=True)
        finished_at = UnicodeAttribute(null=True)
        #: the list cursor of chunk ``chunk``, so a stalled job can be re-driven from it
        cursor = UnicodeAttribute(null=True)

    class BulkResult(Model):
        Meta = catalog_meta
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        execution_id = UnicodeAttribute()
        outcome = UnicodeAttribute()
        status = NumberAttribute(null=True)
        message = UnicodeAttribute(null=True)
        at = UnicodeAttribute()

    return Stats, BulkJob, BulkResult
