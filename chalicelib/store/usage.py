"""Model token usage per workflow and UTC hour, for the stats endpoint.

One catalog item per workflow and hour (``pk = USAGE#<workflow_id>``, ``sk = H#<YYYY-MM-DDTHH>``)
whose counters grow with an atomic ``ADD``, so concurrent workers never lose a count. Every
attempt's tokens are counted, failed ones and retries included: they were spent. A worker
that dies between recording the step and counting its tokens leaves them uncounted (the count
is a cost indicator, not a ledger).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.config import Settings
from chalicelib.store.models import CatalogMeta, bind

__all__ = ["TokenCounts", "UsageStore", "usage_store_for"]


@dataclass
class TokenCounts:
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0

    def add(self, other: TokenCounts) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.requests += other.requests

    def to_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "requests": self.requests}


class UsageItem(Model):
    class Meta(CatalogMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    input_tokens = NumberAttribute(default=0)
    output_tokens = NumberAttribute(default=0)
    requests = NumberAttribute(default=0)


class UsageStore:
    def __init__(self, settings: Settings) -> None:
        bind(settings)
        self.Item = UsageItem

    def add(self, workflow_id: str, hour: str, usage: Mapping[str, Any]) -> None:
        """Count one attempt's ``usage`` (``input_tokens``, ``output_tokens``, ``requests``) in ``hour``."""
        item = self.Item(f"USAGE#{workflow_id}", f"H#{hour}")
        # no precondition: ADD creates the item or grows it, atomically
        item.update(
            actions=[
                self.Item.input_tokens.add(int(usage.get("input_tokens") or 0)),
                self.Item.output_tokens.add(int(usage.get("output_tokens") or 0)),
                self.Item.requests.add(int(usage.get("requests") or 0)),
            ]
        )

    def read(self, workflow_id: str, first_hour: str, last_hour: str) -> dict[str, TokenCounts]:
        """Counts by hour key (``YYYY-MM-DDTHH``) in [first_hour, last_hour]."""
        rows = self.Item.query(f"USAGE#{workflow_id}", self.Item.sk.between(f"H#{first_hour}", f"H#{last_hour}"))
        return {
            row.sk[2:]: TokenCounts(int(row.input_tokens or 0), int(row.output_tokens or 0), int(row.requests or 0))
            for row in rows
        }


@lru_cache(maxsize=4)
def usage_store_for(settings: Settings) -> UsageStore:
    return UsageStore(settings)
