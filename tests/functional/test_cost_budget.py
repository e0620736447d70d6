"""The hot-path budget, counted through the real handlers with the bench's
botocore hooks (``bench.metering``); no timings.

* a pure step chained by a worker costs at most 1 write unit (the marginal cost of the
  extra steps of a ten-step run over a five-step one, all chained into one commit);
* a hop (one SQS hand-over: receive, claim, run, commit, send, delete) costs at most 1
  write unit (its commit: neither the claim nor the worker's hand-over writes a sweep index
  entry), 3 SQS requests and 1 Lambda invocation, and uses no transaction;
* a chain of side-effecting ``http`` steps commits each claim, with its call's
  ``side_effect_started``, in the put that records the step before it: n steps are n + 1
  commit puts (the first claim, n - 1 merged, the last result), no separate claim or
  side-effect item, and none of those puts writes an index entry (0 GSI write units).
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.harness import FIVE_STEPS, Harness
from bench.scenarios import http_steps, loopback_server, ten_steps
from bench.transitions import count_requests

MAX_WRITE_UNITS_PER_CHAINED_STEP = 1
MAX_WRITE_UNITS_PER_HOP = 1
MAX_SQS_REQUESTS_PER_HOP = 3  # send + receive + delete
LAMBDA_INVOCATIONS_PER_HOP = 1


def test_a_chained_pure_step_costs_at_most_one_write_unit(client: Any, aws: Any) -> None:
    harness = Harness.for_engine(client, aws, aws.settings.admin_key)
    with harness.meter.active():
        five = count_requests(harness, 2)
        ten = count_requests(harness, 2, definition=ten_steps())
    assert five.hops_per_execution == 1 and ten.hops_per_execution == 1  # one worker chained every step
    assert ten.run.ddb_writes == five.run.ddb_writes  # the extra steps rode in the same commit
    assert five.run.write_units > 0  # the run's commit was seen at all
    # compressed, the ten steps' commit may still fit the five steps' write units: marginal 0
    marginal = (ten.run.write_units - five.run.write_units) / (10 - len(FIVE_STEPS["steps"]))
    assert 0 <= marginal <= MAX_WRITE_UNITS_PER_CHAINED_STEP, ten.breakdown


def test_a_hop_costs_at_most_one_write_unit_three_sqs_requests_and_one_invocation(
    client: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPLINE_MAX_CHAIN_STEPS", "1")  # every step hands over through SQS
    harness = Harness.for_engine(client, aws, aws.settings.admin_key)
    with harness.meter.active():
        counts = count_requests(harness, 2)
    assert counts.hops_per_execution == len(FIVE_STEPS["steps"])
    hot = counts.hot
    assert hot.ddb_writes >= 1 and hot.sqs >= 1  # the hop was seen at all
    assert hot.write_units <= MAX_WRITE_UNITS_PER_HOP, counts.breakdown["hot hop (per hop)"]
    assert hot.gsi_wcu == 0, counts.breakdown["hot hop (per hop)"]  # no claim or hand-over index entry
    assert hot.sqs <= MAX_SQS_REQUESTS_PER_HOP, hot.operations
    assert hot.invocations == LAMBDA_INVOCATIONS_PER_HOP
    assert hot.operations.get("dynamodb.TransactWriteItems", 0) == 0  # the worker path uses no transaction


def test_a_chain_of_http_steps_puts_one_commit_per_step_plus_the_first_claim(client: Any, aws: Any) -> None:
    harness = Harness.for_engine(client, aws, aws.settings.admin_key)
    with loopback_server() as url, harness.meter.active():
        definition = http_steps(url)
        counts = count_requests(harness, 2, definition=definition)
        # what each put carried, read back from the requests the meter saw
        puts = [c for c in harness.meter.calls if c.operation == "PutItem" and c.tag in ("step", "step:final")]
    steps = len(definition["steps"])
    assert counts.hops_per_execution == 1  # one worker chained every step
    assert counts.run.operations.get("dynamodb.PutItem") == steps + 1, counts.breakdown
    assert counts.run.operations.get("dynamodb.TransactWriteItems", 0) == 0
    assert len(puts) == 2 * (steps + 1)
    assert not [c.label for c in puts if c.label in ("step_started", "side_effect_started")]  # never on their own
    assert [c.gsi_wcu for c in puts] == [0] * len(puts)  # claims write no sweep index entry
