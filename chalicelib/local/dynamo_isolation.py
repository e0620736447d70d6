"""Make moto's DynamoDB behave like DynamoDB under concurrency (local mode and the tests).

Two defects of moto 5.x (see ``/docs/design.md``, "Local mode"), both seen under ``make run``:

1. **No isolation between requests.** The threaded moto server serves requests on several
   threads at once, and the DynamoDB backend keeps items in plain dicts: a read that iterates
   a table while another thread writes fails with "dictionary changed size during
   iteration", and a condition checked by one request can be overtaken by another's write
   before its own write lands. DynamoDB serialises conflicting writes on an item, and a
   transaction is atomic and isolated. Here every DynamoDB (and DynamoDB Streams) request
   holds one process-wide lock: correct, and cheap at local scale.
2. **Transactions copy whole tables.** ``transact_write_items`` deep-copies every table it
   touches and, when any part fails, puts the copy back, wiping writes other threads made in
   between, and costing time proportional to the table (a start after 10,000 executions
   copied 10,000 executions). The replacement below checks every condition first, writes
   nothing if one fails (DynamoDB's cancellation reasons, in order), and otherwise applies
   the writes, keeping a copy of only the items it touches to undo a write that moto
   refuses half-way (a validation error). Its cost depends on the transaction, not the table.
3. **A Query reads the whole table.** moto answers a base-table ``Query`` by walking every
   item of the table and keeping the partition asked for; DynamoDB reads only that
   partition. Loading an execution (a Query on its partition) therefore slowed down with the
   history (a start took 17 times longer after 500 executions). The walk is narrowed to the
   partition; moto still applies the key condition, filters, limits and order itself.
   A query on a global secondary index walked the table too (the minute sweep's due
   entries, the lists, holding the lock that every start waits for): ``dynamo_index`` keeps
   a map per queried index, updated on every write, and the walk is narrowed to the index
   partition the same way.

``install()`` is idempotent and patches moto only: local mode calls it before starting the
embedded server, and the tests' ``conftest.py`` calls it so that the suite exercises the same
emulator behaviour.
"""

from __future__ import annotations

import copy
import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

from chalicelib.local import dynamo_index

__all__ = ["DYNAMODB_LOCK", "install"]

#: Held by every emulated DynamoDB request, in the server and in ``mock_aws``.
DYNAMODB_LOCK = threading.RLock()
_installed = False


def install() -> None:
    """Patch moto's DynamoDB handlers and backend once per process."""
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    DynamoHandler.call_action = _serialised(DynamoHandler.call_action)  # type: ignore[method-assign]
    DynamoDBStreamsHandler.call_action = _serialised(DynamoDBStreamsHandler.call_action)  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    dynamo_index.install()
    _narrow_queries()
    _installed = True


_PARTITION = threading.local()


def _narrow_queries() -> None:
    """Make moto's ``Query`` walk the queried partition instead of the table: the base
    table's directly, a global secondary index's through ``dynamo_index``'s maps."""
    from moto.dynamodb.models.table import Table

    original_query, original_all_items = Table.query, Table.all_items
    signature = inspect.signature(original_query)

    @functools.wraps(original_query)
    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        if arguments.get("index_name"):
            found = dynamo_index.candidates(
                self, arguments["index_name"], arguments.get("hash_key_conditions"), original_all_items
            )
            if found is None:
                return original_query(self, *args, **kwargs)
            _PARTITION.value = (self, found)
        elif arguments.get("hash_key") is None or not self.range_key_attr:
            return original_query(self, *args, **kwargs)
        else:
            _PARTITION.value = (self, list(self.items.get(arguments["hash_key"], {}).values()))
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _PARTITION.value = None

    @functools.wraps(original_all_items)
    def all_items(self: Any) -> Any:
        hint = getattr(_PARTITION, "value", None)
        if hint is not None and hint[0] is self:
            return iter(hint[1])
        return original_all_items(self)

    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]


def _serialised(call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with DYNAMODB_LOCK:
            return call(self, *args, **kwargs)

    return locked


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's ``DynamoDBBackend.transact_write_items`` without the whole-table copy."""
    from moto.dynamodb.comparisons import get_filter_expression as filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models.dynamo_type import DynamoType

    with DYNAMODB_LOCK:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        plan: list[tuple[str, dict[str, Any], Any, DynamoType, DynamoType | None]] = []
        seen: set[tuple[str, str]] = set()
        for item in transact_items:
            if len(item) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(item.items()))
            if op_type not in ("ConditionCheck", "Put", "Delete", "Update"):
                raise MockValidationException("Unsupported transaction operation")
            table = self.get_table(op["TableName"])
            key = _key_of(table, op["Item"] if op_type == "Put" else op["Key"])
            unique = (str(op["TableName"]), str(dict(sorted(key.items()))))
            if unique in seen:
                raise MultipleTransactionsException()
            seen.add(unique)
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            plan.append((op_type, op, table, hash_value, range_value))

        # Phase 1: every condition, against the state before the transaction; no writes yet.
        reasons: list[tuple[Any, Any, Any]] = []
        for _op_type, op, table, hash_value, range_value in plan:
            current = table.get_item(hash_value, range_value)
            expression = op.get("ConditionExpression")
            if expression is None:
                reasons.append((None, None, None))
                continue
            condition = filter_expression(
                expression, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            )
            if condition.expr(current):
                reasons.append((None, None, None))
                continue
            old = None
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                old = current.to_json()["Attributes"]
            reasons.append(("ConditionalCheckFailed", ConditionalCheckFailed(item=old).message, old))
        if any(code is not None for code, _, _ in reasons):
            raise TransactionCanceledException(reasons)

        # Phase 2: apply, keeping a copy of each touched item to undo a write moto refuses.
        undo: list[tuple[Any, DynamoType, DynamoType | None, Any]] = []
        try:
            for op_type, op, table, hash_value, range_value in plan:
                if op_type == "ConditionCheck":
                    continue
                undo.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
                names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    self.put_item(
                        op["TableName"],
                        op["Item"],
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                elif op_type == "Delete":
                    self.delete_item(
                        op["TableName"], op["Key"], expression_attribute_names=names, expression_attribute_values=values
                    )
                else:
                    self.update_item(
                        op["TableName"],
                        op["Key"],
                        update_expression=op["UpdateExpression"],
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
        except Exception:
            for table, hash_value, range_value, saved in reversed(undo):
                _restore(table, hash_value, range_value, saved)
            raise


def _key_of(table: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _restore(table: Any, hash_value: Any, range_value: Any, saved: Any) -> None:
    """Put one item back as it was (``None``: it did not exist)."""
    dynamo_index.touched(table, hash_value, range_value)
    if range_value is not None:
        if saved is None:
            table.items.get(hash_value, {}).pop(range_value, None)
        else:
            table.items[hash_value][range_value] = saved
    elif saved is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = saved
