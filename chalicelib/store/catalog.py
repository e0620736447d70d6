"""The catalog: workflows with their immutable versions and counters, API keys, markers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.errors import Conflict, NotFound, TransitionConflict
from chalicelib.store.executions import _conflict, counter_sks
from chalicelib.store.models import ApiKey, CatalogMeta, Counters, Marker, WorkflowHead, WorkflowVersion, connection

_COUNTER_SKS = frozenset(counter_sks())


@dataclass(frozen=True)
class WorkflowRecord:
    workflow_id: str
    name: str
    enabled: bool
    version: int
    trigger_type: str
    definition: dict[str, Any]
    created_at: str
    updated_at: str
    active_executions: int = 0


@dataclass(frozen=True)
class KeyRecord:
    name: str
    role: str
    created_at: str | None = None
    created_by: str | None = None


@dataclass(frozen=True)
class VersionRecord:
    version: int
    created_at: str
    created_by: str | None


def _wpk(workflow_id: str) -> str:
    return f"WF#{workflow_id}"


def _vsk(version: int) -> str:
    return f"V#{version:06d}"


class CatalogStore:
    @property
    def table_name(self) -> str:
        """The bound catalog table (keys caches that must not outlive a stack)."""
        return CatalogMeta.table_name

    # --------------------------------------------------------------- workflows
    def create_workflow(self, workflow_id: str, definition: dict[str, Any], at: str, actor: str) -> WorkflowRecord:
        head = self._head(workflow_id, definition, 1, at, at, actor)
        try:
            with TransactWrite(connection=connection()) as tx:
                # precondition: a new workflow id
                tx.save(head, condition=WorkflowHead.pk.does_not_exist())
                tx.save(
                    WorkflowVersion(
                        _wpk(workflow_id), _vsk(1), definition=json.dumps(definition), created_at=at, created_by=actor
                    ),
                    condition=WorkflowVersion.pk.does_not_exist(),
                )
                tx.save(Counters(_wpk(workflow_id), "COUNTERS", active=0), condition=Counters.pk.does_not_exist())
        except TransactWriteError as error:
            if _conflict(error, "workflow", "new"):
                raise Conflict(f"workflow {workflow_id} already exists") from error
            raise
        return _to_workflow(head, 0)

    def update_workflow(
        self, workflow_id: str, definition: dict[str, Any], expected_version: int, at: str, actor: str
    ) -> WorkflowRecord:
        """Write version ``expected_version + 1`` and point the head at it."""
        version = expected_version + 1
        current = self.get_workflow(workflow_id)
        head = self._head(workflow_id, definition, version, current.created_at, at, actor)
        try:
            with TransactWrite(connection=connection()) as tx:
                # precondition: nobody published another version since we read the head
                tx.save(head, condition=WorkflowHead.version == expected_version)
                tx.save(
                    WorkflowVersion(
                        _wpk(workflow_id),
                        _vsk(version),
                        definition=json.dumps(definition),
                        created_at=at,
                        created_by=actor,
                    ),
                    condition=WorkflowVersion.pk.does_not_exist(),
                )
        except TransactWriteError as error:
            if _conflict(error, "workflow", "version"):
                raise TransitionConflict(f"workflow {workflow_id}", f"version {expected_version}") from error
            raise
        return _to_workflow(head, current.active_executions)

    def set_enabled(self, workflow_id: str, enabled: bool, at: str, actor: str) -> None:
        try:
            # precondition: the workflow exists
            WorkflowHead(_wpk(workflow_id), "HEAD").update(
                actions=[
                    WorkflowHead.enabled.set(enabled),
                    WorkflowHead.updated_at.set(at),
                    WorkflowHead.updated_by.set(actor),
                ],
                condition=WorkflowHead.pk.exists(),
            )
        except UpdateError as error:
            if _conflict(error, "workflow", "exists"):
                raise NotFound(f"workflow {workflow_id} not found") from error
            raise

    def get_workflow(self, workflow_id: str, with_count: bool = True) -> WorkflowRecord:
        """The workflow head; with ``with_count`` also its active count (one Query of the counter shards)."""
        try:
            head = WorkflowHead.get(_wpk(workflow_id), "HEAD", consistent_read=True)
        except DoesNotExist as error:
            raise NotFound(f"workflow {workflow_id} not found") from error
        return _to_workflow(head, self.active_count(workflow_id) if with_count else 0)

    def list_versions(self, workflow_id: str) -> list[VersionRecord]:
        """Every stored version of a workflow, oldest first (one Query on its partition)."""
        items = WorkflowVersion.query(
            _wpk(workflow_id),
            WorkflowVersion.sk.startswith("V#"),
            attributes_to_get=["sk", "created_at", "created_by"],
        )
        return [VersionRecord(int(i.sk[2:]), i.created_at, i.created_by) for i in items]

    def get_version(self, workflow_id: str, version: int) -> dict[str, Any]:
        try:
            item = WorkflowVersion.get(_wpk(workflow_id), _vsk(version))
        except DoesNotExist as error:
            raise NotFound(f"workflow {workflow_id} version {version} not found") from error
        return json.loads(item.definition)

    def list_workflows(self) -> list[WorkflowRecord]:
        heads = list(WorkflowHead.by_kind.query("workflow"))
        counts: dict[str, int] = {}
        keys = [(h.pk, sk) for h in heads for sk in counter_sks()]
        for start in range(0, len(keys), 100):
            for item in Counters.batch_get(keys[start : start + 100]):
                counts[item.pk] = counts.get(item.pk, 0) + int(item.active or 0)
        return [_to_workflow(h, counts.get(h.pk, 0)) for h in heads]

    def active_count(self, workflow_id: str) -> int:
        # the shards and the pre-shard item: one Query of the workflow's counter items
        rows = Counters.query(_wpk(workflow_id), Counters.sk.startswith("COUNTERS"), consistent_read=True)
        return sum(int(row.active or 0) for row in rows if row.sk in _COUNTER_SKS)

    def _head(
        self, workflow_id: str, definition: dict[str, Any], version: int, created: str, updated: str, actor: str
    ) -> Any:
        return WorkflowHead(
            _wpk(workflow_id),
            "HEAD",
            kind="workflow",
            name_sk=f"{definition['name'].lower()}#{workflow_id}",
            workflow_id=workflow_id,
            name=definition["name"],
            enabled=bool(definition.get("enabled", True)),
            version=version,
            trigger_type=definition["trigger"]["type"],
            definition=json.dumps(definition),
            created_at=created,
            updated_at=updated,
            updated_by=actor,
        )

    # -------------------------------------------------------------------- keys
    def put_key(self, key_hash: str, name: str, role: str, at: str, actor: str) -> None:
        try:
            # precondition: a new key (hash collisions would mean a reused secret)
            ApiKey(
                f"KEY#{key_hash}",
                "KEY",
                name=name,
                role=role,
                created_at=at,
                created_by=actor,
                kind="apikey",
                name_sk=f"{name}#{key_hash[:16]}",
            ).save(condition=ApiKey.pk.does_not_exist())
        except PutError as error:
            if _conflict(error, "key", "new"):
                raise Conflict("that key already exists") from error
            raise

    def get_key(self, key_hash: str) -> KeyRecord | None:
        try:
            item = ApiKey.get(f"KEY#{key_hash}", "KEY")
        except DoesNotExist:
            return None
        return KeyRecord(item.name, item.role)

    def list_keys(self, name: str | None = None) -> list[KeyRecord]:
        """Listed keys by name (only ``name``'s when given); never their hashes."""
        condition = ApiKey.name_sk.startswith(f"{name}#") if name is not None else None
        return [
            KeyRecord(i.name, i.role, i.created_at, i.created_by) for i in ApiKey.by_kind.query("apikey", condition)
        ]

    def delete_keys(self, name: str) -> int:
        """Revoke every listed key called ``name``; returns how many there were."""
        items = list(ApiKey.by_kind.query("apikey", ApiKey.name_sk.startswith(f"{name}#")))
        for item in items:
            # the index is eventually consistent: a key already revoked is not an error
            ApiKey(item.pk, item.sk).delete()
        return len(items)

    # ----------------------------------------------------------------- markers
    def get_marker(self, pk: str, sk: str) -> str | None:
        try:
            return Marker.get(pk, sk, consistent_read=True).value
        except DoesNotExist:
            return None

    def put_marker(self, pk: str, sk: str, value: str, at: str) -> None:
        Marker(pk, sk, value=value, created_at=at).save()

    def create_marker(self, pk: str, sk: str, value: str, at: str) -> bool:
        """Write a marker only if it does not exist; False when one was there already."""
        try:
            # precondition: first writer wins (a secret, once shown, is never replaced behind its owner)
            Marker(pk, sk, value=value, created_at=at).save(condition=Marker.pk.does_not_exist())
        except PutError as error:
            if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def replace_marker(self, pk: str, sk: str, value: str, at: str, expected: str | None) -> None:
        """Write a marker only if it still holds ``expected`` (None: does not exist); else a 409."""
        condition = Marker.pk.does_not_exist() if expected is None else Marker.value == expected
        try:
            # precondition: the value the caller read (two rotations at once: one wins, one gets a 409)
            Marker(pk, sk, value=value, created_at=at).save(condition=condition)
        except PutError as error:
            if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
                raise Conflict("changed concurrently; read it again") from error
            raise

    # ---------------------------------------------------------------- counters
    def add_to_count(self, pk: str, sk: str, by: int) -> int:
        """Add ``by`` to a named running total; returns the new total."""
        item = Counters(pk, sk)
        # no precondition: ADD creates the item and commutes with concurrent adds
        item.update(actions=[Counters.total.add(by)])
        return int(item.total or 0)

    def get_count(self, pk: str, sk: str) -> int:
        try:
            return int(Counters.get(pk, sk, consistent_read=True).total or 0)
        except DoesNotExist:
            return 0


def _to_workflow(head: Any, active: int) -> WorkflowRecord:
    return WorkflowRecord(
        head.workflow_id,
        head.name,
        bool(head.enabled),
        int(head.version),
        head.trigger_type,
        json.loads(head.definition),
        head.created_at,
        head.updated_at,
        active,
    )
