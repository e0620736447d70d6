"""PynamoDB models for Stepline's two tables (see docs/design.md for the key design).

Models are built per ``Settings`` (table names, region and endpoint come from the
environment at run time, never at import), and cached, so importing the app touches no AWS.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
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


def build_models(settings: Settings) -> Models:
    return _build(settings.catalog_table, settings.executions_table, settings.region, settings.endpoint_url)


@lru_cache(maxsize=8)
def _build(catalog: str, executions: str, region: str, host: str | None) -> Models:  # noqa: C901
    class CatalogMeta:
        table_name = catalog

    CatalogMeta.region = region  # type: ignore[attr-defined]
    CatalogMeta.host = host  # type: ignore[attr-defined]

    class ExecutionsMeta:
        table_name = executions

    ExecutionsMeta.region = region  # type: ignore[attr-defined]
    ExecutionsMeta.host = host  # type: ignore[attr-defined]

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

    class ApiKey(Model):
        Meta = CatalogMeta
        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        name = UnicodeAttribute()
        role = UnicodeAttribute()
        created_at = UnicodeAttribute()
        created_by = UnicodeAttribute(null=True)

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
            projection = AllProjection()

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
        g_wf = UnicodeAttribute()
        g_wf_status = UnicodeAttribute()
        start_sk = UnicodeAttribute()
        by_workflow = ByWorkflow()
        by_workflow_status = ByWorkflowStatus()

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
        due_bucket = UnicodeAttribute(null=True)
        due_at = UnicodeAttribute(null=True)
        by_due = ByDue()

    connection = Connection(region=region, host=host)
    return Models(WorkflowHead, WorkflowVersion, Counters, ApiKey, Marker, Summary, EventItem, connection)
