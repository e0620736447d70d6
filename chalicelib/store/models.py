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

from pynamodb.attributes import BinaryAttribute, BooleanAttribute, ListAttribute, NumberAttribute, UnicodeAttribute
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


def bind(settings: Settings, fresh: bool = False) -> None:
    """Point every model at ``settings``' tables, region and endpoint (idempotent).

    ``fresh`` drops the cached connections even when nothing changed: building an engine
    does, so its connections come from botocore sessions made now (with whatever hooks the
    process registered since, as the fault injection of the chaos run does).
    """
    global _bound, _connection
    wanted = (settings.catalog_table, settings.executions_table, settings.region, settings.endpoint_url)
    with _lock:
        if wanted == _bound and not fresh:
            _connect(bound_models(), again=False)  # models imported since the last bind
            return
        CatalogMeta.table_name, ExecutionsMeta.table_name = wanted[0], wanted[1]
        for meta in (CatalogMeta, ExecutionsMeta):
            meta.region, meta.host = settings.region, settings.endpoint_url
        from chalicelib.store.busy import new_session

        new_session()
        _connect(bound_models(), again=True)
        _connection = None
        _bound = wanted


def _connect(models: list[type[Model]], again: bool) -> None:
    """Give each model a connection whose reads retry a busy store (``chalicelib.store.busy``),
    built from its Meta as PynamoDB builds one; ``again`` replaces connections made before."""
    from chalicelib.store.busy import ReadRetryingConnection  # it needs the store's error codes

    for model in models:
        if not again and isinstance(getattr(model._connection, "connection", None), ReadRetryingConnection):
            continue
        model._connection = None  # PynamoDB builds the table connection from the (new) Meta...
        table = model._get_connection()
        meta = model.Meta
        retrying = ReadRetryingConnection(
            region=meta.region,
            host=meta.host,
            connect_timeout_seconds=meta.connect_timeout_seconds,
            read_timeout_seconds=meta.read_timeout_seconds,
            max_retry_attempts=meta.max_retry_attempts,
            max_pool_connections=meta.max_pool_connections,
            extra_headers=meta.extra_headers,
        )
        retrying.add_meta_table(table.connection.get_meta_table(table.table_name))
        table.connection = retrying  # ...and its reads go through the retrying one


def connection() -> Connection:
    """The connection for transactions across the bound tables."""
    global _connection
    with _lock:
        if _connection is None:
            from chalicelib.store.busy import ReadRetryingConnection  # it needs the store's error codes

            _connection = ReadRetryingConnection(region=CatalogMeta.region, host=CatalogMeta.host)
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
class ListByWorkflow(GlobalSecondaryIndex["Summary"]):
    """Heads of one workflow, by ``<status>#<trigger>#<started_at>#<id>`` (store/lists.py)."""

    class Meta:
        index_name = "list_wf"
        # keys only: the list reads the heads with one BatchGetItem, and a status change
        # moves a row of ~100 bytes
        projection = KeysOnlyProjection()

    g_wf = UnicodeAttribute(hash_key=True)
    l_sk = UnicodeAttribute(range_key=True)


class ListByMonth(GlobalSecondaryIndex["Summary"]):
    """Heads of every workflow by start month and shard (``M#<YYYY-MM>#<k>``), same range key."""

    class Meta:
        index_name = "list_month"
        projection = KeysOnlyProjection()

    l_month = UnicodeAttribute(hash_key=True)
    l_sk = UnicodeAttribute(range_key=True)


class Summary(Model):
    """The head of an execution (``EX#<id>`` / ``SUMMARY``): what lists show, under 1 KB.

    Written when the execution starts (one put, with event 1 in ``start``) and on status
    changes only; the later history is in the commit items. A trigger or start details too
    large to keep here are in the payload bucket (``trigger_ref``, ``start_ref``).
    """

    class Meta(ExecutionsMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    execution_id = UnicodeAttribute()
    workflow_id = UnicodeAttribute()
    workflow_version = NumberAttribute()
    status = UnicodeAttribute()
    trigger_type = UnicodeAttribute()
    #: the trigger as JSON, or ``{"type": ...}`` alone when it is in the payload bucket
    trigger = UnicodeAttribute()
    trigger_ref = UnicodeAttribute(null=True)
    started_at = UnicodeAttribute()
    ended_at = UnicodeAttribute(null=True)
    #: the current step's changing part, for the status event (engine/status_events.py)
    step = UnicodeAttribute(null=True)
    #: last event sequence number of the commit that set this status: only a later one may
    #: move the head (forward only), and the aggregator replays the history up to it
    seq = NumberAttribute(null=True)
    expires_at = NumberAttribute(null=True)
    #: event 1 (``execution_started``) as JSON, as a commit list holds it (store/commits.py); absent on
    #: heads written before the start moved here, whose event 1 is the item ``E#000001``
    start = UnicodeAttribute(null=True)
    #: S3 key of event 1's details when the head would not stay under 1 KB with them
    start_ref = UnicodeAttribute(null=True)
    #: event 1's hand-over due entry (``by_due``), as a commit item's
    due_bucket = UnicodeAttribute(null=True)
    due_at = UnicodeAttribute(null=True)
    # list keys (store/lists.py): the workflow, the month shard, and the range both share;
    # absent while the execution is young (set at its first status change or sweep visit)
    g_wf = UnicodeAttribute(null=True)
    l_month = UnicodeAttribute(null=True)
    l_sk = UnicodeAttribute(null=True)
    list_wf = ListByWorkflow()
    list_month = ListByMonth()


class ByDue(GlobalSecondaryIndex["EventItem"]):
    """Commit items and heads with a due time (hand-overs, timers, delayed retries), for the sweep."""

    class Meta:
        index_name = "by_due"
        projection = KeysOnlyProjection()

    due_bucket = UnicodeAttribute(hash_key=True)
    due_at = UnicodeAttribute(range_key=True)


class EventItem(Model):
    """A commit item (``EX#<id>`` / ``E#<seq:06d>``): one or more events (store/commits.py).

    A Query of the whole partition also returns the head as an ``EventItem``: its event 1
    is then read from ``start``/``start_ref`` (declared here for that read only).
    """

    class Meta(ExecutionsMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    type = UnicodeAttribute()
    at = UnicodeAttribute()
    step_id = UnicodeAttribute(null=True)
    attempt = NumberAttribute(null=True)
    actor = UnicodeAttribute(null=True)
    #: None only when the details are compressed (``details_z``)
    details = UnicodeAttribute(null=True, default="{}")
    #: S3 key of the details when they were too large to keep inline (store/payloads.py)
    details_ref = UnicodeAttribute(null=True)
    #: a commit of several events (docs/design.md, "Commits"): their JSON list, inline or in S3
    events = UnicodeAttribute(null=True)
    events_ref = UnicodeAttribute(null=True)
    #: zlib of ``details`` or ``events`` when the item would otherwise be over one write unit
    details_z = BinaryAttribute(legacy_encoding=False, null=True)
    events_z = BinaryAttribute(legacy_encoding=False, null=True)
    #: with ``events_z``: the kinds of events inside, space-separated in first-seen order
    types = UnicodeAttribute(null=True)
    #: on the head row only (see the class docstring)
    start = UnicodeAttribute(null=True)
    start_ref = UnicodeAttribute(null=True)
    due_bucket = UnicodeAttribute(null=True)
    due_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)
    by_due = ByDue()
