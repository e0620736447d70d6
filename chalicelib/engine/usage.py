"""Token usage in the stats: each bucket of ``GET /workflows/{id}/stats`` gets its ``tokens``.

The buckets are the ones ``chalicelib.engine.stats`` computed (UTC starts); token counts are
kept per UTC hour (``chalicelib.store.usage``), so each hour falls in exactly one bucket.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.timefmt import parse_iso
from chalicelib.store.usage import TokenCounts, UsageStore

__all__ = ["add_token_sums", "count_attempt"]


def _hour(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def add_token_sums(document: dict[str, Any], store: UsageStore, workflow_id: str) -> dict[str, Any]:
    """Add ``tokens`` to every bucket and to ``totals`` of a stats document."""
    buckets = document.get("buckets") or []
    starts = [parse_iso(b["start"]) for b in buckets]
    total = TokenCounts()
    sums = [TokenCounts() for _ in buckets]
    if starts:
        end = parse_iso(document["to"])
        keys = [_hour(s) for s in starts]
        for hour, counts in store.read(workflow_id, keys[0], _hour(end - timedelta(hours=1))).items():
            index = bisect.bisect_right(keys, hour) - 1
            if 0 <= index < len(sums):
                sums[index].add(counts)
    for bucket, counts in zip(buckets, sums, strict=True):
        bucket["tokens"] = counts.to_dict()
        total.add(counts)
    document.setdefault("totals", {})["tokens"] = total.to_dict()
    return document


def count_attempt(store: UsageStore, workflow_id: str, at: datetime, usage: Mapping[str, Any] | None) -> None:
    """Count an attempt's model usage (no-op without usage)."""
    if usage and (usage.get("input_tokens") or usage.get("output_tokens") or usage.get("requests")):
        store.add(workflow_id, _hour(at), usage)
