"""Part 1 (requests per step) and part 3 (engine transitions per second against raw writes).

A *step run* is what Step Functions bills as one state transition: a step message is
received, the step is claimed, its agent runs and the result is recorded and handed over.
The hot path is a step run that hands over to a next step; the last step's run also
completes the execution, so what it costs beyond a hot step is counted as per-execution
overhead (finish), beside the start request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from bench.harness import FIVE_STEPS, Harness
from bench.metering import Call, Tally

INPUTS = {"customer": "ACME Corporation", "amount": 1250.5}
#: Executions started together, run to completion, then removed from moto (see ``forget_executions``).
WAVE = 10


@dataclass
class RequestCounts:
    executions: int
    steps_per_execution: int
    hops_per_execution: float  # SQS deliveries per execution (1 when one worker chains every step)
    start: Tally  # per execution
    hot: Tally  # per hop that hands over to a next step (claim, run, commit, send), with its receive and delete
    run: Tally  # every delivery of an execution (all its hops), with receives and deletes
    per_execution: Tally
    per_step: Tally  # everything, per step run (per_execution / steps)
    breakdown: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    idle_receives: int = 0
    log_bytes_per_step: float = 0.0
    #: the stream aggregator's share (per execution), and the head changes each of its invocations got
    aggregate: Tally = field(default_factory=Tally)
    aggregate_records_per_invocation: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "executions": self.executions,
            "steps_per_execution": self.steps_per_execution,
            "hops_per_execution": self.hops_per_execution,
            "start": self.start.to_dict(),
            "hot_hop": self.hot.to_dict(),
            "run": self.run.to_dict(),
            "per_execution": self.per_execution.to_dict(),
            "per_step_all_in": self.per_step.to_dict(),
            "breakdown": self.breakdown,
            "idle_receives_excluded": self.idle_receives,
            "log_bytes_per_step": round(self.log_bytes_per_step, 1),
            "aggregate": self.aggregate.to_dict(),
            "aggregate_records_per_invocation": self.aggregate_records_per_invocation,
        }


def set_up(h: Harness, definition: dict[str, Any] = FIVE_STEPS) -> tuple[str, str]:
    """Create the workflow and an operator key, and run one execution to warm caches (not counted)."""
    with h.meter.pause():
        workflow_id = h.ok("POST", "/workflows", definition)["workflow_id"]
        key = h.operator_key()
        h.ok("POST", f"/workflows/{workflow_id}/executions", {"inputs": INPUTS}, key=key)
        drain(h, definition["steps"][-1]["id"])
        h.aggregate(counted=False)
    return workflow_id, key


def drain(h: Harness, last_step: str, limit: int = 1_000_000) -> tuple[int, int]:
    """Deliver every message one by one until the queue is empty.

    Returns (hops that hand over, hops of the last step): a delivery of the last step's
    message can only finish the execution.
    """
    hot = final = 0
    for _ in range(limit):
        with h.meter.tagged("receive"):
            messages = h.receive(1)
        if not messages:
            if h.meter.calls and h.meter.calls[-1].operation == "ReceiveMessage":
                h.meter.calls[-1].tag = "idle"
            return hot, final
        is_final = json.loads(messages[0]["Body"]).get("step_id") == last_step
        with h.meter.tagged("step:final" if is_final else "step"):
            h.deliver(messages)
        final += is_final
        hot += not is_final
    raise RuntimeError("queue did not drain")


def count_requests(
    h: Harness,
    executions: int,
    wave: int = WAVE,
    definition: dict[str, Any] = FIVE_STEPS,
    aggregate_every: int = 1,
) -> RequestCounts:
    """Run ``executions`` executions of ``definition`` through the real handlers and count every call.

    How many SQS hops an execution takes depends on chaining (``STEPLINE_MAX_CHAIN_STEPS``):
    one when a worker chains every step, one per step when forced to hand over each time.
    The stream's head changes go to the aggregator after every ``aggregate_every`` waves
    (more waves: larger aggregator batches, up to the template's batch size).
    """
    workflow_id, key = set_up(h, definition)
    steps = len(definition["steps"])
    meter = h.meter
    meter.reset()
    hot_hops = final_hops = 0
    sizes = _waves(executions, wave)
    for index, size in enumerate(sizes):
        last = index == len(sizes) - 1
        wave_hot, wave_final = _run_wave(
            h, workflow_id, key, size, definition, aggregate=last or (index + 1) % aggregate_every == 0
        )
        hot_hops += wave_hot
        final_hops += wave_final
    hops = hot_hops + final_hops
    if hops < executions:
        raise RuntimeError(f"{hops} deliveries for {executions} executions")
    delivery = meter.tally(lambda t: t == "receive").scaled(1 / hops)
    start = meter.tally(lambda t: t == "start").scaled(1 / executions)
    run = meter.tally(lambda t: t in ("step", "step:final", "receive")).scaled(1 / executions)
    aggregate = meter.tally(lambda t: t == "aggregate").scaled(1 / executions)
    aggregate_invocations = sum(1 for i in meter.invocations if i.tag == "aggregate")
    hot = meter.tally(lambda t: t == "step").scaled(1 / max(hot_hops, 1)).plus(delivery) if hot_hops else Tally()
    per_execution = start.plus(run).plus(aggregate)
    breakdown = {
        "start (per execution)": _rows(meter.calls, {"start"}, executions, meter, "start"),
        "run (per execution, all hops)": _rows(
            meter.calls, {"step", "step:final", "receive"}, executions, meter, "step", extra_tags={"step:final"}
        ),
        "aggregate (per execution)": _rows(meter.calls, {"aggregate"}, executions, meter, "aggregate"),
    }
    if hot_hops:
        breakdown["hot hop (per hop)"] = _rows(
            meter.calls, {"step", "receive"}, hot_hops, meter, "step", receive_share=hot_hops / hops
        )
    idle = sum(1 for c in meter.calls if c.tag == "idle")
    return RequestCounts(
        executions,
        steps,
        hops / executions,
        start,
        hot,
        run,
        per_execution,
        per_execution.scaled(1 / steps),
        breakdown,
        idle,
        aggregate=aggregate,
        aggregate_records_per_invocation=round(h.aggregated_records / max(aggregate_invocations, 1), 1),
    )


def _waves(total: int, wave: int) -> list[int]:
    return [min(wave, total - done) for done in range(0, total, wave)]


def _run_wave(
    h: Harness,
    workflow_id: str,
    key: str,
    size: int,
    definition: dict[str, Any] = FIVE_STEPS,
    aggregate: bool = True,
) -> tuple[int, int]:
    """Start ``size`` executions, drain the queue, check they completed, then forget them
    (the stream keeps their head changes for the aggregator)."""
    ids = []
    with h.meter.tagged("start"):
        for _ in range(size):
            ids.append(
                h.ok("POST", f"/workflows/{workflow_id}/executions", {"inputs": INPUTS}, key=key)["execution_id"]
            )
    hot, final = drain(h, definition["steps"][-1]["id"])
    if aggregate:
        h.aggregate()  # the head changes so far, as the stream's event source batches them
    with h.meter.pause():
        statuses = {h.engine.store.executions.get_summary(i).status for i in ids}
        if statuses != {"completed"}:
            raise RuntimeError(f"bench executions ended {statuses}, not completed")
        forget_executions(h.engine)
    return hot, final


def forget_executions(engine: Any) -> None:
    """Empty the executions table in moto's backend, between waves (set-up, not measured).

    moto's ``TransactWriteItems`` deep-copies every table it touches and its ``Query`` walks
    every item of the table, so on an ever-growing table the bench would time moto, not
    Stepline. No count depends on other executions' items being present.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    settings = engine.settings
    dynamodb_backends[DEFAULT_ACCOUNT_ID][settings.region].get_table(settings.executions_table).items.clear()


def _stage(c: Call) -> str:
    if c.service == "sqs":
        return "hand over" if c.operation.startswith("SendMessage") else "delivery"
    if c.is_read:
        return "claim"
    if c.is_write:
        return "claim" if c.label == "step_started" else "commit"
    return "other"


def _rows(
    calls: list[Call],
    tags: set[str],
    runs: int,
    meter: Any,
    invocation_tag: str,
    receive_share: float = 1.0,
    extra_tags: Collection[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Per-run averages by (stage, operation, item): how many calls, and their units."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for c in calls:
        if c.tag not in tags:
            continue
        weight = receive_share if c.tag == "receive" else 1.0
        key = (_stage(c), f"{c.service}.{c.operation}", c.label)
        g = groups.setdefault(key, [0.0, 0.0, 0.0, 0.0])
        g[0] += weight
        g[1] += c.wcu * weight
        g[2] += c.gsi_wcu * weight
        g[3] += c.rcu * weight
    rows = [
        {
            "stage": s,
            "operation": op,
            "item": label,
            "calls": n / runs,
            "wcu": w / runs,
            "gsi_wcu": gw / runs,
            "rcu": r / runs,
        }
        for (s, op, label), (n, w, gw, r) in sorted(groups.items())
    ]
    invocations = [i for i in meter.invocations if i.tag == invocation_tag or i.tag in extra_tags]
    if invocations:
        rows.append(
            {
                "stage": "delivery" if invocation_tag != "start" else "api",
                "operation": "lambda.Invoke",
                "item": invocations[0].function,
                "calls": len(invocations) / runs,
                "wcu": 0.0,
                "gsi_wcu": 0.0,
                "rcu": 0.0,
            }
        )
    return rows


# ------------------------------------------------------------------ part 3
@dataclass
class Throughput:
    step_runs: int
    engine_seconds: float
    raw_writes: int
    raw_seconds: float

    @property
    def engine_per_second(self) -> float:
        return self.step_runs / self.engine_seconds

    @property
    def raw_per_second(self) -> float:
        return self.raw_writes / self.raw_seconds

    @property
    def ratio(self) -> float:
        return self.engine_per_second / self.raw_per_second

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_runs": self.step_runs,
            "engine_seconds": round(self.engine_seconds, 4),
            "engine_transitions_per_second": round(self.engine_per_second, 2),
            "raw_conditional_updates": self.raw_writes,
            "raw_seconds": round(self.raw_seconds, 4),
            "raw_conditional_updates_per_second": round(self.raw_per_second, 2),
            "ratio": round(self.ratio, 4),
        }


def measure_throughput(h: Harness, executions: int) -> Throughput:
    """Time the step runs of ``executions`` executions (delivery included, meter off), then as
    many plain conditional ``UpdateItem`` calls on the same moto backend."""
    workflow_id, key = set_up(h)
    runs = 0
    engine_seconds = 0.0
    with h.meter.pause():
        for size in _waves(executions, WAVE):
            for _ in range(size):
                h.ok("POST", f"/workflows/{workflow_id}/executions", {"inputs": INPUTS}, key=key)
            started = time.perf_counter()
            drain(h, FIVE_STEPS["steps"][-1]["id"])
            engine_seconds += time.perf_counter() - started
            runs += size * len(FIVE_STEPS["steps"])  # step runs, however many hops they took
            forget_executions(h.engine)
        raw_seconds = _raw_updates(h, runs)
    return Throughput(runs, engine_seconds, runs, raw_seconds)


def _raw_updates(h: Harness, count: int) -> float:
    import boto3

    settings = h.engine.settings
    ddb = boto3.client("dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url)
    table = settings.executions_table
    started = time.perf_counter()
    for i in range(count):
        # the engine's write pattern, bare: a conditional write that only moves forward
        ddb.update_item(
            TableName=table,
            Key={"pk": {"S": f"RAW#{i % 200}"}, "sk": {"S": "COUNTER"}},
            UpdateExpression="SET v = :v",
            ConditionExpression="attribute_not_exists(v) OR v < :v",
            ExpressionAttributeValues={":v": {"N": str(i)}},
        )
    return time.perf_counter() - started
