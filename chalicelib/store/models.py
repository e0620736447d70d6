"""PynamoDB models of Stepline's two tables, declared once at module level (see docs/design.md).

Every model's ``Meta`` derives from one of two shared classes, ``CatalogMeta`` and
``ExecutionsMeta``, whose table name, region and endpoint are set by ``bind(settings)`` at start-up (the stores
call it when they are built), never at import: importing the app touches no AWS. One
process serves one deployment, so one binding holds for the whole process; binding other
settings (a test's other stack) re-points every model and drops the cached connections.
"""

from __future__ import annotations

import threading
from typing import Any

from pynamodb.attributes import BooleanAttribute, ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.config import Settings

#: Execution statuses counted per stats item (``n_<status>``).
STAT_STATUSES = ("running", "waiting", "completed", "failed", "cancelled")
#: Duration histogram bins (``d_<bin>`` counts, ``s_<bin>`` sums), see chalicelib/domain/histogram.py.
STAT_BINS = 106


class CatalogMeta:
    """The catalog table (workflows, keys, counters, markers, triggers); set by ``bind``."""

    table_name = "stepline-dev-catalog"
    region = "us-east-1"
    host: str | None = None


class ExecutionsMeta:
    """The executions table (summaries and commit items); set by ``bind``."""

    table_name = "stepline-dev-executions"
    region = "us-east-1"
    host: str | None = None


_lock = threading.Lock()
_bound: tuple[str, str, str, str | None] | None = None
_connection: Connection | None = None


def bind(settings: Settings) -> None:
    """Point every model at ``settings``' tables, region and endpoint (idempotent)."""
    global _bound, _connection
    wanted = (settings.catalog_table, settings.executions_table, settings.region, settings.endpoint_url)
    with _lock:
        if wanted == _bound:
            return
        CatalogMeta.table_name, ExecutionsMeta.table_name = wanted[0], wanted[1]
        for meta in (CatalogMeta, ExecutionsMeta):
            meta.region, meta.host = settings.region, settings.endpoint_url
        for model in bound_models():
            model._connection = None  # PynamoDB re-creates it from the new Meta on next use
        _connection = None
        _bound = wanted


def connection() -> Connection:
    """The connection for transactions across the bound tables."""
    global _connection
    with _lock:
        if _connection is None:
            _connection = Connection(region=CatalogMeta.region, host=CatalogMeta.host)
        return _connection


def bound_models(base: type[Model] = Model) -> list[type[Model]]:
    """Every model class on the two tables (those of trigger_models.py, connections.py... too)."""
    found: list[type[Model]] = []
    for sub in base.__subclasses__():
        if issubclass(getattr(sub, "Meta", object), (CatalogMeta, ExecutionsMeta)):
            found.append(sub)
        found.extend(bound_models(sub))
    return found


# ------------------------------------------------------------------ catalog table
class ByKind(GlobalSecondaryIndex[Any]):
    """Catalog items listed by kind (workflows, API keys, sources, connections), by name."""

    class Meta:
        index_name = "by_kind"
        projection = AllProjection()

    kind = UnicodeAttribute(hash_key=True)
    name_sk = UnicodeAttribute(range_key=True)


class WorkflowHead(Model):
    class Meta(CatalogMeta):
        pass

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
    class Meta(CatalogMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    definition = UnicodeAttribute()
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute(null=True)


class Counters(Model):
    class Meta(CatalogMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    active = NumberAttribute(default=0)
    #: running totals kept by named counters (e.g. dead letters handled)
    total = NumberAttribute(null=True)


class ApiKey(Model):
    class Meta(CatalogMeta):
        pass

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

    class Meta(CatalogMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    value = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)


class Stats(Model):
    """Per-workflow, per-hour statistics (store/stats.py)."""

    class Meta(CatalogMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    d_sum = NumberAttribute(null=True)
    #: the first few durations, exact
    samples = ListAttribute(of=NumberAttribute, null=True)
    # n_<status> counts, d_<bin> counts and s_<bin> seconds summed in the bin: read and
    # written by name (getattr), so declared in a loop over the class namespace
    for _name in (
        *(f"n_{status}" for status in STAT_STATUSES),
        *(f"{prefix}_{index}" for index in range(STAT_BINS) for prefix in ("d", "s")),
    ):
        locals()[_name] = NumberAttribute(null=True)
    del _name


class BulkJob(Model):
    class Meta(CatalogMeta):
        pass

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
    class Meta(CatalogMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    execution_id = UnicodeAttribute()
    outcome = UnicodeAttribute()
    status = NumberAttribute(null=True)
    message = UnicodeAttribute(null=True)
    at = UnicodeAttribute()


# --------------------------------------------------------------- executions table
def _start_index(name: str, hash_attr: str, *, keys_only: bool) -> Any:
    """A summary GSI hashed on ``hash_attr`` and ranged on ``start_sk`` (newest first)."""
    meta = type("Meta", (), {"index_name": name, "projection": KeysOnlyProjection() if keys_only else AllProjection()})
    attrs = {"Meta": meta, hash_attr: UnicodeAttribute(hash_key=True), "start_sk": UnicodeAttribute(range_key=True)}
    return type(f"Index_{name}", (GlobalSecondaryIndex,), attrs)()


class Summary(Model):
    class Meta(ExecutionsMeta):
        pass

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
    g_wf = UnicodeAttribute()
    g_wf_status = UnicodeAttribute()
    start_sk = UnicodeAttribute()
    # list indexes of chalicelib/store/lists.py (see docs/design.md, "Lists")
    g_wf_trigger = UnicodeAttribute(null=True)
    g_wf_st = UnicodeAttribute(null=True)
    g_month = UnicodeAttribute(null=True)
    g_month_trigger = UnicodeAttribute(null=True)
    g_month_status = UnicodeAttribute(null=True)
    g_month_st = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)
    # keys only: status changes then cost this index nothing (lists read the summaries)
    by_workflow = _start_index("by_workflow", "g_wf", keys_only=True)
    by_workflow_status = _start_index("by_workflow_status", "g_wf_status", keys_only=False)
    by_workflow_trigger = _start_index("by_workflow_trigger", "g_wf_trigger", keys_only=True)
    by_workflow_status_trigger = _start_index("by_workflow_status_trigger", "g_wf_st", keys_only=False)
    by_month = _start_index("by_month", "g_month", keys_only=True)
    by_month_trigger = _start_index("by_month_trigger", "g_month_trigger", keys_only=True)
    by_month_status = _start_index("by_month_status", "g_month_status", keys_only=False)
    by_month_status_trigger = _start_index("by_month_status_trigger", "g_month_st", keys_only=False)


class ByDue(GlobalSecondaryIndex["EventItem"]):
    """Commit items with a due time (timers, delayed retries), for the sweep."""

    class Meta:
        index_name = "by_due"
        projection = KeysOnlyProjection()

    due_bucket = UnicodeAttribute(hash_key=True)
    due_at = UnicodeAttribute(range_key=True)


class EventItem(Model):
    class Meta(ExecutionsMeta):
        pass

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
