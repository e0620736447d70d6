"""DynamoDB's published capacity rules: item sizes, write and read request units, GSI writes.

Sources (read 2026-11-25):
- item sizes: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
- units: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
- GSI writes: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations

Items are in DynamoDB's typed JSON (``{"name": {"S": "..."}}``), as botocore sends and
receives them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096

Item = Mapping[str, Mapping[str, Any]]


def _number_size(text: str) -> int:
    """1 byte per two significant digits, plus 1 byte (leading and trailing zeros trimmed)."""
    digits = text.lstrip("+-").split("e")[0].split("E")[0].replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Size in bytes of one typed attribute value."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode("utf-8"))
    if kind == "N":
        return _number_size(str(raw))
    if kind == "B":
        return len(raw) if isinstance(raw, (bytes, bytearray)) else len(str(raw).encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in raw)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in raw)
    if kind == "BS":
        return sum(len(b) for b in raw)
    if kind == "L":
        # 3 bytes for the list, 1 byte per element
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in raw.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Item | None) -> int:
    """Attribute names plus values, in bytes (0 for no item)."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """Standard write request units for an item of ``size`` bytes: 1 KB each, rounded up, at least 1."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool) -> float:
    """Read request units for ``size`` bytes read in one request: 4 KB each, rounded up,
    at least one; eventually consistent reads cost half."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


@dataclass(frozen=True)
class Index:
    """A global secondary index: its key attributes and what it projects."""

    name: str
    keys: tuple[str, ...]
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    included: tuple[str, ...] = ()

    def holds(self, item: Item | None) -> bool:
        """A sparse index holds only items that carry all its key attributes."""
        return item is not None and bool(item) and all(k in item for k in self.keys)

    def project(self, item: Item, table_keys: Iterable[str]) -> dict[str, Any]:
        if self.projection == "ALL":
            return dict(item)
        keep = set(table_keys) | set(self.keys) | set(self.included)
        return {k: v for k, v in item.items() if k in keep}


@dataclass(frozen=True)
class TableSpec:
    keys: tuple[str, ...]
    indexes: tuple[Index, ...]


def table_specs(template_path: Path) -> dict[str, TableSpec]:
    """Table specs by the template's logical id, read from ``infra/template.json``."""
    template = json.loads(template_path.read_text())
    specs: dict[str, TableSpec] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::DynamoDB::Table":
            continue
        props = resource.get("Properties", {})
        indexes = []
        for gsi in props.get("GlobalSecondaryIndexes", []):
            projection = gsi.get("Projection", {})
            indexes.append(
                Index(
                    gsi["IndexName"],
                    tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                    projection.get("ProjectionType", "ALL"),
                    tuple(projection.get("NonKeyAttributes", [])),
                )
            )
        specs[logical_id] = TableSpec(tuple(k["AttributeName"] for k in props["KeySchema"]), tuple(indexes))
    return specs


def index_writes(spec: TableSpec, before: Item | None, after: Item | None) -> int:
    """Write units the table's GSIs consume when ``before`` becomes ``after``.

    Per index: a new entry is one put, a removed entry one delete, a changed key attribute a
    delete plus a put, and a changed projected attribute one update; each costs the
    projected item's size in 1 KB units.
    """
    total = 0
    for index in spec.indexes:
        old = index.project(before, spec.keys) if before is not None and index.holds(before) else None
        new = index.project(after, spec.keys) if after is not None and index.holds(after) else None
        if old is None and new is None:
            continue
        if old is None:
            total += write_units(item_size(new))
        elif new is None:
            total += write_units(item_size(old))
        elif any(_canon(old.get(k)) != _canon(new.get(k)) for k in index.keys):
            total += write_units(item_size(old)) + write_units(item_size(new))
        elif _canon(old) != _canon(new):
            total += write_units(max(item_size(old), item_size(new)))
    return total


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=lambda v: str(v) if isinstance(v, Decimal) else repr(v))
