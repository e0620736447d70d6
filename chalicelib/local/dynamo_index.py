"""An index for the emulator's global secondary index queries (local mode and the tests).

moto answers a ``Query`` on a global secondary index by walking every item of the table and
keeping those whose index hash key matches; DynamoDB reads only that index partition. Under
``make run`` the minute sweep's due-entry queries, the schedule tick and the list views all
query indexes, while every DynamoDB request holds the emulator's one lock
(``dynamo_isolation``): a walk of a 10,000-execution table delays every start behind it.

Here each table keeps, per queried index, a map from the index's hash key values to the
items that carry them. It is built on the first query of that index and kept up to date
incrementally: every write path of moto's backend (put, delete, update, the transaction
replacement and its undo) marks the written item's key, and the next index query re-reads
only the marked items. moto's own ``Table.query`` then runs on that partition's items: it
still applies the key conditions, sort order, paging, filters and projections itself, so
answers are unchanged; only the walk is shorter. Statements that may touch any item
(PartiQL, table updates) drop the table's maps, which are rebuilt on the next query.

Everything here runs under ``dynamo_isolation.DYNAMODB_LOCK`` (each request holds it), so
the maps need no lock of their own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

_ATTR = "_stepline_gsi"

Key = tuple[Any, Any]  # (hash DynamoType, range DynamoType or None)


class TableIndex:
    """The maps of one moto ``Table``: index name -> hash key values -> item key -> item."""

    def __init__(self) -> None:
        self.maps: dict[str, dict[tuple[Any, ...], dict[Key, Any]]] = {}
        self.placed: dict[str, dict[Key, tuple[Any, ...]]] = {}
        self.dirty: set[Key] = set()


def index_of(table: Any) -> TableIndex:
    state = table.__dict__.get(_ATTR)
    if state is None:
        state = table.__dict__[_ATTR] = TableIndex()
    return state


def touched(table: Any, hash_value: Any, range_value: Any) -> None:
    """Note that the item at this key was written (or removed): the maps re-read it."""
    state = table.__dict__.get(_ATTR)
    if state is not None and state.maps:
        state.dirty.add((hash_value, range_value if table.range_key_attr else None))


def forget(table: Any) -> None:
    """Drop every map of ``table``: the next index query rebuilds it from the items."""
    table.__dict__.pop(_ATTR, None)


def _hash_names(index: Any) -> list[str]:
    return [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]


def _values(item: Any, names: list[str]) -> tuple[Any, ...] | None:
    values = []
    for name in names:
        value = item.attrs.get(name)
        if value is None:
            return None  # not in this (sparse) index
        values.append(value)
    return tuple(values)


def _current(table: Any, key: Key) -> Any:
    hash_value, range_value = key
    if table.range_key_attr:
        return table.items.get(hash_value, {}).get(range_value)
    return table.items.get(hash_value)


def _place(state: TableIndex, name: str, names: list[str], key: Key, item: Any) -> None:
    old = state.placed[name].pop(key, None)
    if old is not None:
        partition = state.maps[name].get(old)
        if partition is not None:
            partition.pop(key, None)
            if not partition:
                del state.maps[name][old]
    values = None if item is None else _values(item, names)
    if values is not None:
        state.maps[name].setdefault(values, {})[key] = item
        state.placed[name][key] = values


def candidates(table: Any, index_name: str, conditions: Any, walk: Callable[[Any], Any]) -> list[Any] | None:
    """The items of the index partition a query asks for, or None to let moto walk the table.

    ``conditions`` are moto's hash key conditions (attribute name, DynamoType); ``walk`` is
    moto's own ``all_items`` (the unnarrowed one), used to build a map the first time.
    """
    index = next((i for i in table.global_indexes if i.name == index_name), None)
    if index is None or not conditions:
        return None
    names = _hash_names(index)
    asked = dict(conditions)
    if not names or set(asked) != set(names):
        return None
    state = index_of(table)
    if state.dirty:
        built = [(name, _hash_names(_index(table, name))) for name in state.maps]
        for key in state.dirty:
            item = _current(table, key)
            for name, hash_names in built:
                _place(state, name, hash_names, key, item)
        state.dirty.clear()
    if index_name not in state.maps:
        state.maps[index_name], state.placed[index_name] = {}, {}
        for item in walk(table):
            key = (item.hash_key, item.range_key if table.range_key_attr else None)
            _place(state, index_name, names, key, item)
    wanted = tuple(asked[name] for name in names)
    return list(state.maps[index_name].get(wanted, {}).values())


def _index(table: Any, name: str) -> Any:
    return next(i for i in table.global_indexes if i.name == name)


def install() -> None:
    """Mark every write of moto's DynamoDB backend (called once, by ``dynamo_isolation.install``)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    put_item, delete_item = Table.put_item, Table.delete_item

    @functools.wraps(put_item)
    def put(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = put_item(self, *args, **kwargs)
        touched(self, item.hash_key, item.range_key)
        return item

    @functools.wraps(delete_item)
    def delete(self: Any, hash_key: Any, range_key: Any) -> Any:
        try:
            return delete_item(self, hash_key, range_key)
        finally:
            touched(self, hash_key, range_key)

    Table.put_item = put  # type: ignore[method-assign]
    Table.delete_item = delete  # type: ignore[method-assign]

    update_item = DynamoDBBackend.update_item

    @functools.wraps(update_item)
    def update(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return update_item(self, table_name, key, *args, **kwargs)
        finally:
            try:
                table = self.get_table(table_name)
            except Exception:  # an unknown table: moto raised already, nothing was written
                table = None
            if table is not None:
                try:
                    touched(table, *self.get_keys_value(table, key))
                except Exception:  # a malformed key: be safe, rebuild this table's maps
                    forget(table)

    DynamoDBBackend.update_item = update  # type: ignore[method-assign]

    # Operations that may change any item, or the indexes themselves: rebuild afterwards.
    def forgetting(name: str) -> None:
        original = getattr(DynamoDBBackend, name, None)
        if original is None:
            return

        @functools.wraps(original)
        def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, *args, **kwargs)
            finally:
                for table in list(self.tables.values()):
                    forget(table)

        setattr(DynamoDBBackend, name, wrapped)

    for name in ("update_table", "execute_statement", "execute_transaction", "batch_execute_statement"):
        forgetting(name)
