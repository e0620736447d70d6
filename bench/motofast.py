"""Give moto's DynamoDB the access paths DynamoDB has, so the bench times Stepline, not moto.

moto answers every ``Query`` by walking all items of the table (``Table.query`` iterates
``Table.all_items()``, then filters on the key), so on a table of 500,000 items one Query
takes seconds, where DynamoDB reads only the partition asked for. ``indexed_moto()``
narrows the items moto's own ``Table.query`` walks to the queried partition: the base
table's partition directly, a GSI's through a per-table map of that index's hash key, and
keeps a GSI partition's sort order; both are rebuilt lazily after any write to the table.
moto still applies every condition, limit, projection and filter itself, so answers are
unchanged; only the walk is shorter.

``bulk_put`` stores items the way ``Table.put_item`` does, without its per-attribute size
re-validation (quadratic in the attribute count): bulk set-up only.

Bench-only: the tests run on plain moto.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

_HINT = threading.local()


def _bump(table: Any) -> None:
    table._bench_version = getattr(table, "_bench_version", 0) + 1


def _index_map(table: Any, attr: str, all_items: Any) -> dict[Any, list[Any]]:
    cache = table.__dict__.setdefault("_bench_index", {})
    version = getattr(table, "_bench_version", 0)
    cached = cache.get(attr)
    if cached is None or cached[0] != version:
        mapping: dict[Any, list[Any]] = {}
        for item in all_items(table):
            value = item.attrs.get(attr)
            if value is not None:
                mapping.setdefault(value, []).append(item)
        cached = cache[attr] = (version, mapping)
    return cached[1]


@contextmanager
def indexed_moto() -> Iterator[None]:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    originals: dict[tuple[type, str], Any] = {
        (Table, "query"): Table.query,
        (Table, "all_items"): Table.all_items,
        (Table, "sorted_items"): Table.sorted_items,
        (Table, "put_item"): Table.put_item,
        (Table, "delete_item"): Table.delete_item,
        (DynamoDBBackend, "update_item"): DynamoDBBackend.update_item,
        (DynamoDBBackend, "transact_write_items"): DynamoDBBackend.transact_write_items,
        (DynamoDBBackend, "batch_write_item"): DynamoDBBackend.batch_write_item,
    }
    signature = inspect.signature(Table.query)
    orig_query, orig_all, orig_sorted = Table.query, Table.all_items, Table.sorted_items

    def all_items(self: Any) -> list[Any]:
        hint = getattr(_HINT, "value", None)
        if hint is not None and hint[0] is self:
            return list(hint[1])
        return orig_all(self)

    def sorted_items(self: Any, hash_attrs: list[str], range_attrs: list[Any], items: list[Any]) -> list[Any]:
        # a partition's order only changes when the table does: sort it once per version
        hint = getattr(_HINT, "value", None)
        if hint is None or hint[0] is not self or hint[2] is None or len(items) != len(hint[1]):
            return orig_sorted(self, hash_attrs, range_attrs, items)
        version = getattr(self, "_bench_version", 0)
        cache = self.__dict__.setdefault("_bench_sorted", {})
        cached = cache.get(hint[2])
        if cached is None or cached[0] != version:
            cached = cache[hint[2]] = (version, list(orig_sorted(self, hash_attrs, range_attrs, items)))
        return list(cached[1])

    def first_page(self: Any, partition: Any, a: dict[str, Any]) -> list[Any] | None:
        """The ``limit + 1`` items a plain first-page query can reach, from the sorted partition.

        Only for a query with a limit and no range condition, start key or legacy filter: then
        DynamoDB reads the partition from one end, and so does moto, given these items.
        """
        limit = a.get("limit")
        if (
            not isinstance(limit, int)
            or a.get("range_comparison")
            or a.get("range_key_conditions")
            or a.get("exclusive_start_key")
            or a.get("filter_kwargs")
        ):
            return None
        cached = self.__dict__.get("_bench_sorted", {}).get(partition)
        if cached is None or cached[0] != getattr(self, "_bench_version", 0):
            return None
        ordered = cached[1]
        return ordered[: limit + 1] if a.get("scan_index_forward", True) else ordered[-(limit + 1) :]

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        a = bound.arguments
        candidates, partition = None, None
        if not a.get("index_name") and a.get("hash_key") is not None and self.range_key_attr:
            candidates = list(self.items.get(a["hash_key"], {}).values())
        elif a.get("index_name") and a.get("hash_key_conditions"):
            attr, value = a["hash_key_conditions"][0]
            partition = (attr, value)
            page = first_page(self, partition, a)
            if page is not None:
                candidates, partition = page, None
            else:
                candidates = _index_map(self, attr, orig_all).get(value, [])
        if candidates is None:
            return orig_query(self, *args, **kwargs)
        _HINT.value = (self, candidates, partition)
        try:
            return orig_query(self, *args, **kwargs)
        finally:
            _HINT.value = None

    def table_write(name: str) -> Any:
        original = originals[(Table, name)]

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, *args, **kwargs)
            finally:
                _bump(self)

        return wrapper

    def backend_write(name: str, every_table: bool) -> Any:
        original = originals[(DynamoDBBackend, name)]

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, *args, **kwargs)
            finally:
                for table in (
                    self.tables.values()
                    if every_table
                    else [self.tables.get(args[0] if args else kwargs.get("table_name"))]
                ):
                    if table is not None:
                        _bump(table)

        return wrapper

    # Patching moto's classes (never our code); setattr, as the replacements' signatures differ.
    replacements: dict[tuple[type, str], Any] = {
        (Table, "query"): query,
        (Table, "all_items"): all_items,
        (Table, "sorted_items"): sorted_items,
        (Table, "put_item"): table_write("put_item"),
        (Table, "delete_item"): table_write("delete_item"),
        (DynamoDBBackend, "update_item"): backend_write("update_item", False),
        (DynamoDBBackend, "transact_write_items"): backend_write("transact_write_items", True),
        (DynamoDBBackend, "batch_write_item"): backend_write("batch_write_item", True),
    }
    for (owner, name), replacement in replacements.items():
        setattr(owner, name, replacement)
    try:
        yield
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)


def bulk_put(table: Any, items: Iterable[dict[str, Any]]) -> int:
    """Store items in a moto table as ``Table.put_item(overwrite=True)`` would. Values are
    typed JSON or ready ``DynamoType`` objects (which may be shared between items)."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    count = 0
    for attrs in items:
        item: Any = Item.__new__(Item)
        stored = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.__init__(stored)
        for key, value in attrs.items():
            dict.__setitem__(stored, key, value if type(value) is DynamoType else DynamoType(value))
        item.attrs = stored
        item.hash_key = stored[table.hash_key_attr]
        item.range_key = stored[table.range_key_attr] if table.range_key_attr else None
        if item.range_key is not None:
            table.items[item.hash_key][item.range_key] = item
        else:
            table.items[item.hash_key] = item
        count += 1
    _bump(table)
    return count
