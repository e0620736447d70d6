"""The only package that talks to DynamoDB. PynamoDB and botocore errors stop here."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.config import Settings
from chalicelib.store.catalog import CatalogStore, KeyRecord, WorkflowRecord
from chalicelib.store.executions import ExecutionStore, Page, StatusChange, SummaryRecord
from chalicelib.store.models import bind
from chalicelib.store.payloads import PayloadStore

__all__ = [
    "CatalogStore",
    "ExecutionStore",
    "KeyRecord",
    "Page",
    "PayloadStore",
    "StatusChange",
    "Store",
    "SummaryRecord",
    "WorkflowRecord",
]


@dataclass(frozen=True)
class Store:
    catalog: CatalogStore
    executions: ExecutionStore
    payloads: PayloadStore

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        bind(settings, fresh=True)
        payloads = PayloadStore(settings)
        return cls(CatalogStore(), ExecutionStore(payloads, settings.retention_days), payloads)
