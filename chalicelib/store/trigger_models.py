"""PynamoDB models for triggers, all in the catalog table (see docs/design.md, "Triggers").

| item | pk | sk |
| --- | --- | --- |
| event source | ``SRC#<name>`` | ``SOURCE`` (also in GSI ``by_kind`` with kind ``source``) |
| webhook delivery (dedupe) | ``HOOK#<source>#<sha256(delivery id)>`` | ``DELIVERY`` (TTL ``expires_at``) |
| stored event | ``EVT#<event_id>`` | ``EVENT`` |
| event subscription | ``SUB#<source>#<event type>`` | ``WF#<workflow_id>`` |
| schedule | ``WF#<workflow_id>`` | ``SCHEDULE`` (sparse GSI ``by_next_fire`` while enabled) |
| schedule slot (claim + log) | ``WF#<workflow_id>`` | ``SLOT#<slot ISO>`` (TTL ``expires_at``) |

Declared at module level; ``chalicelib.store.models.bind`` points them at the deployment's table.
"""

from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.store.models import ByKind, CatalogMeta


class Source(Model):
    """A webhook source. DynamoDB encrypts items at rest; the API never returns ``secret``."""

    class Meta(CatalogMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute(default="source")
    name_sk = UnicodeAttribute()
    name = UnicodeAttribute()
    scheme = UnicodeAttribute()
    secret = UnicodeAttribute()
    previous_secret = UnicodeAttribute(null=True)
    previous_expires_at = NumberAttribute(null=True)
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute(null=True)
    rotated_at = UnicodeAttribute(null=True)
    by_kind = ByKind()


class Delivery(Model):
    class Meta(CatalogMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    event_id = UnicodeAttribute()
    answer = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    expires_at = NumberAttribute()


class StoredEvent(Model):
    class Meta(CatalogMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    event_id = UnicodeAttribute()
    source = UnicodeAttribute()
    event_type = UnicodeAttribute()
    payload = UnicodeAttribute()
    #: S3 key of the payload when it is too large to keep inline (claim check)
    payload_ref = UnicodeAttribute(null=True)
    via = UnicodeAttribute()
    delivery_id = UnicodeAttribute(null=True)
    received_at = UnicodeAttribute()
    executions = UnicodeAttribute(default="[]")


class Subscription(Model):
    class Meta(CatalogMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    workflow_id = UnicodeAttribute()
    wf_version = NumberAttribute()


class ByNextFire(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_next_fire"
        projection = AllProjection()

    sched_shard = UnicodeAttribute(hash_key=True)
    next_fire = UnicodeAttribute(range_key=True)


class Schedule(Model):
    class Meta(CatalogMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    workflow_id = UnicodeAttribute()
    cron = UnicodeAttribute()
    timezone = UnicodeAttribute()
    enabled = BooleanAttribute()
    wf_version = NumberAttribute()
    sched_shard = UnicodeAttribute(null=True)  # present only while enabled: a sparse index
    next_fire = UnicodeAttribute(null=True)
    disabled_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute()
    by_next_fire = ByNextFire()


class Slot(Model):
    class Meta(CatalogMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    scheduled_for = UnicodeAttribute()
    status = UnicodeAttribute()
    execution_id = UnicodeAttribute(null=True)
    started_at = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    coalesced = NumberAttribute(null=True)
    claimed_at = UnicodeAttribute()
    expires_at = NumberAttribute()
