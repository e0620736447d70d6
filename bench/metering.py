"""Count every AWS API call through botocore's event hooks, with the request units each
DynamoDB call would consume.

One module-level dispatcher is registered on botocore event emitters
(``before-parameter-build`` and ``after-call``) and forwards to the active ``Meter``:

- ``install_global()`` adds it to ``botocore.handlers.BUILTIN_HANDLERS``, so every botocore
  session created afterwards (boto3's default session, and each session PynamoDB's
  ``Connection`` makes with ``botocore.session.get_session()``) carries it;
- ``attach(emitter)`` registers it on an existing session or client (clients copy their
  session's emitter when they are created, so clients that already exist need this).

A call seen twice (global and attached) is counted once: the request context is marked.
DynamoDB write sizes are the stored item before and after the call, read from the moto
backend the calls go to (``ItemSource``); read sizes come from the response.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.capacity import TableSpec, index_writes, item_size, read_units, write_units

_SEEN = "stepline_bench_seen"
_STATE = "stepline_bench_state"
_UNIQUE = "stepline-bench-meter"

_ACTIVE: Meter | None = None

WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
READ_OPS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}


class ItemSource(Protocol):
    def get(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The stored item (typed JSON) with this key, or None."""


@dataclass
class Call:
    service: str
    operation: str
    seconds: float
    tag: str
    label: str = ""
    failed: bool = False
    wcu: float = 0.0  # base-table write units (transactional writes doubled)
    gsi_wcu: float = 0.0  # index write units
    rcu: float = 0.0
    #: EventBridge entries put (billed per entry, each 64 KB chunk of one)
    event_entries: int = 0
    #: CPU time of this thread inside the call (moto runs in-process; the meter's sizing too)
    cpu_seconds: float = 0.0

    @property
    def is_write(self) -> bool:
        return self.service == "dynamodb" and self.operation in WRITE_OPS

    @property
    def is_read(self) -> bool:
        return self.service == "dynamodb" and self.operation in READ_OPS


@dataclass
class Invocation:
    function: str
    tag: str
    seconds: float
    aws_seconds: float
    #: CPU time of the engine's own work (thread CPU, less that spent inside AWS calls):
    #: unlike the wall time, not stretched by other processes on a loaded machine
    cpu_seconds: float = 0.0


#: Memory (MB) each function is billed at; the bench fills it from the prod stage of
#: .chalice/config.json (``bench.cost.function_memory``).
FUNCTION_MEMORY_MB: dict[str, int] = {}
#: The meter's names of invocations that differ from the Chalice config's function names.
FUNCTION_NAMES = {"api": "api_handler"}
#: Lambda gives a function CPU in proportion to its memory, one full vCPU at 1,769 MB.
FULL_CPU_MB = 1769


def memory_of(function: str) -> int:
    return FUNCTION_MEMORY_MB.get(FUNCTION_NAMES.get(function, function), 128)


def billed_seconds_at(cpu_seconds: float, aws_seconds: float, memory_mb: int) -> float:
    """An invocation's billed seconds at ``memory_mb``, from what it measured here.

    The time inside AWS calls is waiting (the same at any memory); the engine's own CPU
    time, measured on one core, is stretched below 1,769 MB, where Lambda gives a share
    of a vCPU in proportion to the memory. Rounded up to the millisecond."""
    return math.ceil((cpu_seconds * max(1.0, FULL_CPU_MB / memory_mb) + aws_seconds) * 1000) / 1000


@dataclass
class Tally:
    """Sums over a set of calls and invocations."""

    ddb_writes: float = 0.0
    ddb_reads: float = 0.0
    wcu: float = 0.0
    gsi_wcu: float = 0.0
    rcu: float = 0.0
    sqs: float = 0.0
    other: float = 0.0
    #: EventBridge ``PutEvents`` entries
    event_entries: float = 0.0
    invocations: float = 0.0
    lambda_seconds: float = 0.0
    billed_seconds: float = 0.0  # Lambda bills each invocation in whole milliseconds
    aws_seconds: float = 0.0
    #: billed seconds at the function's memory (``billed_seconds_at``) x that memory in GB
    gb_seconds: float = 0.0
    #: Calls per "service.Operation"; fractional once scaled to a per-execution average.
    operations: dict[str, float] = field(default_factory=dict)

    @property
    def write_units(self) -> float:
        return self.wcu + self.gsi_wcu

    def add_call(self, c: Call) -> None:
        name = f"{c.service}.{c.operation}"
        self.operations[name] = self.operations.get(name, 0) + 1
        if c.is_write:
            self.ddb_writes += 1
        elif c.is_read:
            self.ddb_reads += 1
        elif c.service == "sqs":
            self.sqs += 1
        else:
            self.other += 1
        self.wcu += c.wcu
        self.gsi_wcu += c.gsi_wcu
        self.rcu += c.rcu
        self.event_entries += c.event_entries

    def add_invocation(self, i: Invocation) -> None:
        self.invocations += 1
        self.lambda_seconds += i.seconds
        self.billed_seconds += math.ceil(i.seconds * 1000) / 1000
        memory = memory_of(i.function)
        self.gb_seconds += billed_seconds_at(i.cpu_seconds, i.aws_seconds, memory) * memory / 1024
        self.aws_seconds += i.aws_seconds

    def scaled(self, factor: float) -> Tally:
        t = Tally(**{k: getattr(self, k) * factor for k in _NUMBERS})
        t.operations = {k: v * factor for k, v in self.operations.items()}
        return t

    def plus(self, other: Tally) -> Tally:
        t = Tally(**{k: getattr(self, k) + getattr(other, k) for k in _NUMBERS})
        t.operations = dict(self.operations)
        for name, count in other.operations.items():
            t.operations[name] = t.operations.get(name, 0) + count
        return t

    def minus(self, other: Tally) -> Tally:
        return self.plus(other.scaled(-1.0))

    def to_dict(self) -> dict[str, Any]:
        d = {k: round(getattr(self, k), 6) for k in _NUMBERS}
        d["write_units"] = round(self.write_units, 6)
        d["operations"] = {k: round(v, 6) for k, v in sorted(self.operations.items()) if abs(v) > 1e-9}
        return d


_NUMBERS = (
    "ddb_writes",
    "ddb_reads",
    "wcu",
    "gsi_wcu",
    "rcu",
    "sqs",
    "other",
    "event_entries",
    "invocations",
    "lambda_seconds",
    "billed_seconds",
    "aws_seconds",
    "gb_seconds",
)


class Meter:
    """Records calls while active; the harness sets ``tag`` to say what they belong to."""

    def __init__(self, tables: Mapping[str, TableSpec], items: ItemSource | None = None) -> None:
        self.tables = dict(tables)
        self.items = items
        self.calls: list[Call] = []
        self.invocations: list[Invocation] = []
        self.tag = ""
        self.paused = False

    # -------------------------------------------------------------- control
    @contextmanager
    def active(self) -> Iterator[Meter]:
        global _ACTIVE
        previous, _ACTIVE = _ACTIVE, self
        try:
            yield self
        finally:
            _ACTIVE = previous

    @contextmanager
    def tagged(self, tag: str) -> Iterator[None]:
        previous, self.tag = self.tag, tag
        try:
            yield
        finally:
            self.tag = previous

    @contextmanager
    def pause(self) -> Iterator[None]:
        previous, self.paused = self.paused, True
        try:
            yield
        finally:
            self.paused = previous

    def reset(self) -> None:
        self.calls.clear()
        self.invocations.clear()

    def invoke(self, function: str, call: Callable[[], Any]) -> Any:
        """Run one Lambda invocation and record its in-process duration and AWS time."""
        mark = len(self.calls)
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return call()
        finally:
            seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
            if not self.paused:
                aws = sum(c.seconds for c in self.calls[mark:])
                engine_cpu = max(0.0, cpu - sum(c.cpu_seconds for c in self.calls[mark:]))
                self.invocations.append(Invocation(function, self.tag, seconds, aws, engine_cpu))

    def tally(self, accept: Callable[[str], bool] = lambda tag: True) -> Tally:
        t = Tally()
        for c in self.calls:
            if accept(c.tag):
                t.add_call(c)
        for i in self.invocations:
            if accept(i.tag):
                t.add_invocation(i)
        return t

    # ---------------------------------------------------------------- hooks
    def before(self, params: dict[str, Any], model: Any, context: dict[str, Any]) -> None:
        # the call's time starts here: the meter's own sizing counts as AWS time, not the engine's
        started, cpu = time.perf_counter(), time.thread_time()
        service = model.service_model.service_name
        before: list[Any] = []
        if service == "dynamodb" and model.name in WRITE_OPS:
            before = [(table, key, self._lookup(table, key)) for table, key, _ in _write_targets(model.name, params)]
        context[_STATE] = (started, cpu, params, before)

    def after(self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any]) -> None:
        started, cpu, params, before = context.pop(_STATE)
        service, op = model.service_model.service_name, model.name
        failed = getattr(http_response, "status_code", 200) >= 300
        call = Call(service, op, 0.0, self.tag, failed=failed)
        if service == "dynamodb" and op in WRITE_OPS:
            self._writes(call, op, params, before)
        elif service == "dynamodb" and op in READ_OPS:
            self._reads(call, op, params, parsed)
        elif service == "events" and op == "PutEvents" and not failed:
            call.event_entries = len(params.get("Entries", [])) - int(parsed.get("FailedEntryCount", 0))
        call.seconds = time.perf_counter() - started
        call.cpu_seconds = time.thread_time() - cpu
        self.calls.append(call)

    # ------------------------------------------------------------- DynamoDB
    def _lookup(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        if self.items is None:
            return None
        try:
            return self.items.get(table, key)
        except Exception:
            return None

    def _writes(self, call: Call, op: str, params: dict[str, Any], before: list[Any]) -> None:
        factor = 2.0 if op == "TransactWriteItems" else 1.0
        labels = []
        for (table, key, old), (_, _, sent) in zip(before, _write_targets(op, params), strict=False):
            new = old if call.failed else (self._lookup(table, key) if self.items else sent)
            size = max(item_size(old), item_size(new), item_size(sent) if self.items is None else 0)
            call.wcu += factor * write_units(size)
            spec = self.tables.get(table)
            if spec is not None and not call.failed:
                call.gsi_wcu += index_writes(spec, old, new)
            labels.append(_label(new or old or sent or key))
        call.label = "+".join(labels)

    def _reads(self, call: Call, op: str, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        if call.failed:
            call.rcu = read_units(0, bool(params.get("ConsistentRead")))
            return
        if op == "GetItem":
            call.rcu = read_units(item_size(parsed.get("Item")), bool(params.get("ConsistentRead")))
            call.label = _label(parsed.get("Item") or params.get("Key"))
        elif op in ("Query", "Scan"):
            # one request: the sizes of all items read are summed, then rounded up
            size = sum(item_size(i) for i in parsed.get("Items", []))
            call.rcu = read_units(size, bool(params.get("ConsistentRead")))
            call.label = params.get("IndexName") or "table"
        elif op == "BatchGetItem":
            for table, items in parsed.get("Responses", {}).items():
                consistent = bool(params.get("RequestItems", {}).get(table, {}).get("ConsistentRead"))
                call.rcu += sum(read_units(item_size(i), consistent) for i in items)
        elif op == "TransactGetItems":
            call.rcu = sum(2 * read_units(item_size(r.get("Item")), True) for r in parsed.get("Responses", []))


def _write_targets(op: str, params: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """(table, key attributes, item sent or None) for each item a write request touches."""
    if op == "PutItem":
        return [(params["TableName"], _key_of(params["Item"]), params["Item"])]
    if op in ("UpdateItem", "DeleteItem"):
        return [(params["TableName"], dict(params["Key"]), None)]
    targets = []
    if op == "TransactWriteItems":
        for entry in params.get("TransactItems", []):
            ((_kind, body),) = entry.items()
            item = body.get("Item")
            targets.append((body["TableName"], _key_of(item) if item else dict(body["Key"]), item))
    elif op == "BatchWriteItem":
        for table, requests in params.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    item = request["PutRequest"]["Item"]
                    targets.append((table, _key_of(item), item))
                else:
                    targets.append((table, dict(request["DeleteRequest"]["Key"]), None))
    return targets


def _key_of(item: Mapping[str, Any]) -> dict[str, Any]:
    # both Stepline tables are keyed on pk/sk (infra/template.json)
    return {k: item[k] for k in ("pk", "sk") if k in item}


def _label(item: Mapping[str, Any] | None) -> str:
    """What an item is: an event's type, else its sort key (SUMMARY, COUNTERS, ...)."""
    if not item:
        return "?"
    if "type" in item and "S" in item["type"]:
        return item["type"]["S"]
    sk = item.get("sk", {}).get("S", "?")
    return sk.split("#")[0] if "#" in sk else sk


# ------------------------------------------------------------ dispatcher
def _before_dispatch(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    meter = _ACTIVE
    if meter is None or meter.paused or context.get(_SEEN):
        return
    context[_SEEN] = True
    meter.before(params, model, context)


def _after_dispatch(http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    meter = _ACTIVE
    if meter is None or _STATE not in context:
        return
    meter.after(http_response, parsed, model, context)


def attach(emitter: Any) -> None:
    """Register the dispatcher on a botocore session or a client's ``meta.events`` (idempotent)."""
    emitter.register("before-parameter-build", _before_dispatch, unique_id=_UNIQUE + "-before")
    emitter.register("after-call", _after_dispatch, unique_id=_UNIQUE + "-after")


def install_global() -> None:
    """Carry the dispatcher into every botocore session created from now on."""
    from botocore import handlers

    for spec in (("before-parameter-build", _before_dispatch), ("after-call", _after_dispatch)):
        if spec not in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.append(spec)


class MotoItems:
    """Stored items read straight from moto's in-process DynamoDB backend (sizes only)."""

    def __init__(self, region: str, account_id: str | None = None) -> None:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        self.backend = dynamodb_backends[account_id or DEFAULT_ACCOUNT_ID][region]

    def get(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        t = self.backend.get_table(table)
        hash_value = DynamoType(key[t.hash_key_attr])
        range_value = DynamoType(key[t.range_key_attr]) if t.range_key_attr else None
        item = t.get_item(hash_value, range_value)
        return item.to_json()["Attributes"] if item is not None else None


def group(calls: list[Call], key: Callable[[Call], Any]) -> dict[Any, list[Call]]:
    out: dict[Any, list[Call]] = defaultdict(list)
    for c in calls:
        out[key(c)].append(c)
    return dict(out)
