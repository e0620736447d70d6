"""Part 2: orchestration cost per million steps, beside Step Functions Standard and Express.

Counted: DynamoDB request units, SQS requests, Lambda requests, the Lambda duration of
the engine's own work at the configured memory, and the EventBridge status events the
aggregator puts (one per execution status change, when the stage sends them). The duration
is measured in-process on moto (``bench.metering.billed_seconds_at``): the engine's thread
CPU time, stretched below 1,769 MB as Lambda shares a vCPU by memory, plus the time inside
AWS calls, rounded up to the millisecond as Lambda bills: an approximation, since in AWS
each call waits on the network instead of on moto. The agent's
own work is excluded everywhere (it costs the same under any orchestrator); the bench's
``transform`` steps take microseconds, so they are left inside the measured time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import prices
from bench.metering import Tally

TARGET_RATIO = 0.10  # with side-effecting steps
TARGET_PURE = 0.09  # pure steps
BATCH_SIZE = 10
DEFAULT_MEMORY_MB = 128


def function_memory(root: Path, stage: str = "prod") -> dict[str, int]:
    """Each function's memory in ``stage`` of the Chalice config (per-function ``lambda_memory_size``,
    else the stage's, else the top level's, else Chalice's default)."""
    try:
        config = json.loads((root / ".chalice" / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    scoped = config.get("stages", {}).get(stage, {})
    default = int(scoped.get("lambda_memory_size") or config.get("lambda_memory_size") or DEFAULT_MEMORY_MB)
    functions = scoped.get("lambda_functions", {})
    memory = {name: int(f.get("lambda_memory_size") or default) for name, f in functions.items()}
    memory.setdefault("run_step", default)
    memory.setdefault("api_handler", default)
    return memory


def lambda_memory_mb(root: Path) -> int:
    """The step worker's memory in prod (the figure printed beside the costs)."""
    return function_memory(root).get("run_step", DEFAULT_MEMORY_MB)


@dataclass(frozen=True)
class Cost:
    """Dollars per million steps, by component."""

    dynamodb_writes: float
    dynamodb_reads: float
    sqs: float
    lambda_requests: float
    lambda_duration: float
    eventbridge: float = 0.0

    @property
    def total(self) -> float:
        return (
            self.dynamodb_writes
            + self.dynamodb_reads
            + self.sqs
            + self.lambda_requests
            + self.lambda_duration
            + self.eventbridge
        )

    def to_dict(self) -> dict[str, float]:
        return {
            "dynamodb_writes": round(self.dynamodb_writes, 4),
            "dynamodb_reads": round(self.dynamodb_reads, 4),
            "sqs": round(self.sqs, 4),
            "lambda_requests": round(self.lambda_requests, 4),
            "lambda_duration": round(self.lambda_duration, 4),
            "eventbridge": round(self.eventbridge, 4),
            "total": round(self.total, 4),
        }


def cost_per_million(per_step: Tally, memory_mb: int) -> Cost:
    """Dollars per million steps; Lambda duration at each function's own memory when the
    meter knew it (``gb_seconds``), else at ``memory_mb``."""
    gb_seconds = per_step.gb_seconds or per_step.billed_seconds * memory_mb / 1024
    return Cost(
        per_step.write_units * prices.DYNAMODB_WRITE_REQUEST_UNIT * 1e6,
        per_step.rcu * prices.DYNAMODB_READ_REQUEST_UNIT * 1e6,
        per_step.sqs * prices.SQS_REQUEST * 1e6,
        per_step.invocations * prices.LAMBDA_REQUEST * 1e6,
        gb_seconds * prices.LAMBDA_GB_SECOND * 1e6,
        per_step.event_entries * prices.EVENTBRIDGE_PUT_EVENT * 1e6,
    )


def batched(per_step: Tally, run_step_invocations: float, batch: int = BATCH_SIZE) -> Tally:
    """The same steps if the SQS event source delivered ``batch`` messages per invocation:
    one ReceiveMessage, one DeleteMessageBatch and one Lambda invocation per batch. Sends,
    DynamoDB and the work per message are unchanged; so is the billed duration (a batch
    runs the same steps one after another)."""
    ops = per_step.operations
    receives, deletes = ops.get("sqs.ReceiveMessage", 0.0), ops.get("sqs.DeleteMessage", 0.0)
    t = per_step.plus(Tally())
    t.sqs -= (receives + deletes) * (1 - 1 / batch)
    t.invocations -= run_step_invocations * (1 - 1 / batch)
    t.operations["sqs.ReceiveMessage"] = receives / batch
    t.operations.pop("sqs.DeleteMessage", None)
    t.operations["sqs.DeleteMessageBatch"] = deletes / batch
    t.operations["lambda.Invoke(run_step)"] = run_step_invocations / batch
    return t


def sfn_standard_per_million_steps() -> float:
    # Step Functions bills a state transition for each step a workflow runs
    return prices.SFN_STANDARD_TRANSITION * 1e6


def sfn_express_per_million_steps(steps_per_execution: int, execution_seconds: float) -> float:
    """Requests per execution plus duration at the minimum 64 MB, rounded up to 100 ms.

    The duration is taken as the engine's own measured time for the execution's steps:
    Express would run as long as its orchestration, with the agent's work excluded.
    """
    rounded = math.ceil(execution_seconds / prices.SFN_EXPRESS_DURATION_ROUND_S) * prices.SFN_EXPRESS_DURATION_ROUND_S
    per_execution = (
        prices.SFN_EXPRESS_REQUEST
        + prices.SFN_EXPRESS_MIN_MEMORY_MB / 1024 * max(rounded, 0.1) * prices.SFN_EXPRESS_GB_SECOND
    )
    return per_execution / steps_per_execution * 1e6


def compare(name: str, per_step: Tally, memory_mb: int, express: float) -> dict[str, Any]:
    cost = cost_per_million(per_step, memory_mb)
    standard = sfn_standard_per_million_steps()
    return {
        "scenario": name,
        "cost": cost.to_dict(),
        "per_million_steps": round(cost.total, 4),
        "ratio_to_standard": round(cost.total / standard, 4),
        "ratio_to_express": round(cost.total / express, 4),
        "meets_target": cost.total / standard <= (TARGET_RATIO if "http" in name else TARGET_PURE),
    }
