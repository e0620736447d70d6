"""The only package that talks to DynamoDB. PynamoDB and botocore errors stop here."""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.config import Settings
from chalicelib.store.catalog import CatalogStore, KeyRecord, WorkflowRecord
from chalicelib.store.executions import ExecutionStore, Page, StatusChange, SummaryRecord
from chalicelib.store.models import build_models

__all__ = ["Store", "CatalogStore", "ExecutionStore", "KeyRecord", "WorkflowRecord", "Page", "StatusChange",
           "SummaryRecord"]


@dataclass(frozen=True)
class Store:
    catalog: CatalogStore
    executions: ExecutionStore

    @classmethod
    def from_settings(cls, settings: Settings) -> "Store":
        models = build_models(settings)
        return cls(CatalogStore(models), ExecutionStore(models, settings.retention_days))
