"""The per-step cost budget of the hot path (issue 3): claim, run and hand over a step for
at most 3 DynamoDB write units, 3 SQS requests and one Lambda invocation. Counted through
the real handlers with the bench's botocore hooks (``bench.metering``); no timings."""
from __future__ import annotations

from typing import Any

from bench.harness import Harness
from bench.transitions import count_requests

MAX_WRITE_UNITS = 3
MAX_SQS_REQUESTS = 3  # send + receive + delete
LAMBDA_INVOCATIONS = 1


def test_hot_path_step_stays_within_the_cost_budget(client: Any, aws: Any) -> None:
    harness = Harness.for_engine(client, aws, aws.settings.admin_key)
    with harness.meter.active():
        counts = count_requests(harness, 2)
    hot = counts.hot
    assert hot.ddb_writes >= 1 and hot.sqs >= 1  # the hot path was seen at all
    assert hot.write_units <= MAX_WRITE_UNITS, counts.breakdown["hot step run (per step)"]
    assert hot.sqs <= MAX_SQS_REQUESTS, hot.operations
    assert hot.invocations == LAMBDA_INVOCATIONS
    assert hot.operations.get("dynamodb.TransactWriteItems", 0) == 0  # transactions are for status changes
