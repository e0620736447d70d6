"""Connection records in the catalog table: the non-secret fields only.

One item per connection (``pk = CONN#<name>``, ``sk = CONN``), listed through the catalog's
``by_kind`` index (``kind = connection``), never by a Scan. The secret values are in Secrets
Manager (``chalicelib.secrets``); the item keeps the *names* of the secret fields that are set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError
from pynamodb.models import Model

from chalicelib.config import Settings
from chalicelib.errors import Conflict, NotFound, TransitionConflict
from chalicelib.store.models import ByKind, CatalogMeta, bind

__all__ = ["ConnectionRecord", "ConnectionStore"]


@dataclass(frozen=True)
class ConnectionRecord:
    name: str
    kind: str
    #: non-secret fields (``base_url``, ``username``, ``token_url``, ...)
    fields: dict[str, Any]
    #: names of the secret fields that hold a value in Secrets Manager
    secret_fields: tuple[str, ...]
    version: int
    created_at: str
    updated_at: str
    created_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _pk(name: str) -> str:
    return f"CONN#{name}"


class ConnectionItem(Model):
    class Meta(CatalogMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="CONN")
    kind = UnicodeAttribute(default="connection")
    name_sk = UnicodeAttribute()
    conn_kind = UnicodeAttribute()
    fields = UnicodeAttribute()
    secret_fields = UnicodeAttribute()
    version = NumberAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    created_by = UnicodeAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)
    by_kind = ByKind()


class ConnectionStore:
    """Create, read, list, update and delete connection items with conditional writes."""

    def __init__(self, settings: Settings) -> None:
        bind(settings)
        self.Item = ConnectionItem

    def create(self, record: ConnectionRecord) -> ConnectionRecord:
        item = self._item(record)
        try:
            # precondition: the name is not taken
            item.save(condition=self.Item.pk.does_not_exist())
        except PutError as error:
            if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
                raise Conflict(f"connection {record.name} already exists") from error
            raise
        return record

    def get(self, name: str) -> ConnectionRecord:
        try:
            return _record(self.Item.get(_pk(name), "CONN", consistent_read=True))
        except DoesNotExist:
            raise NotFound(f"connection {name} not found") from None

    def find(self, name: str) -> ConnectionRecord | None:
        try:
            return self.get(name)
        except NotFound:
            return None

    def list(self) -> list[ConnectionRecord]:
        return [_record(item) for item in self.Item.by_kind.query("connection")]

    def replace(self, record: ConnectionRecord, expected_version: int, actor: str) -> ConnectionRecord:
        item = self._item(record)
        item.updated_by = actor
        try:
            # precondition: nobody changed the connection since we read it
            item.save(condition=self.Item.version == expected_version)
        except PutError as error:
            if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
                raise TransitionConflict(f"connection {record.name}", f"version {expected_version}") from error
            raise
        return record

    def delete(self, name: str) -> None:
        try:
            # precondition: it exists (a second DELETE is a 404, not a silent success)
            self.Item(_pk(name), "CONN").delete(condition=self.Item.pk.exists())
        except DeleteError as error:
            if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
                raise NotFound(f"connection {name} not found") from error
            raise

    def _item(self, record: ConnectionRecord) -> ConnectionItem:
        return self.Item(
            _pk(record.name),
            "CONN",
            name_sk=record.name,
            conn_kind=record.kind,
            fields=json.dumps(record.fields),
            secret_fields=json.dumps(list(record.secret_fields)),
            version=record.version,
            created_at=record.created_at,
            updated_at=record.updated_at,
            created_by=record.created_by,
        )


def _record(item: ConnectionItem) -> ConnectionRecord:
    return ConnectionRecord(
        name=item.name_sk,
        kind=item.conn_kind,
        fields=json.loads(item.fields),
        secret_fields=tuple(json.loads(item.secret_fields)),
        version=int(item.version),
        created_at=item.created_at,
        updated_at=item.updated_at,
        created_by=item.created_by,
    )
