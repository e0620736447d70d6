"""Lambda's DynamoDB stream event source, for local mode and the tests.

In AWS, an event source mapping reads the executions table's stream and invokes the
``aggregate`` function with batches of the records that pass its filter
(``infra/template.json``: ``Events.AggregateDynamodbEventSource``). ``StreamPump`` does the
same against the emulated (or configured) endpoint: ``DescribeStream``,
``GetShardIterator`` and ``GetRecords`` per shard, the template's filter pattern applied,
the records shaped as Lambda delivers them. A batch whose handler raises is delivered
again from its first record, as Lambda retries a stream batch.

Local mode runs ``run`` in a thread (a pass every half second); the tests call ``drain``
after each API call and delivery, so counts and statistics are current when they look.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.config import Settings
from chalicelib.local.resources import load_template

log = logging.getLogger("stepline.local.stream")

Deliver = Callable[[dict[str, Any]], Any]
#: Stream calls carry the stream's ARN; account-based endpoints would send them to a host
#: the emulator does not serve.
CLIENT_CONFIG = Config(account_id_endpoint_mode="disabled")


def stream_handlers(app: Any) -> list[tuple[str, Callable[[dict[str, Any], Any], Any]]]:
    """Every ``@app.on_dynamodb_record`` handler of the app: (name, handler)."""
    from chalice.app import DynamoDBEventConfig

    return [(s.name, app.handler_map[s.name]) for s in app.event_sources if isinstance(s, DynamoDBEventConfig)]


def template_source(template: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The aggregator's event source properties as deployed (batch size, filter)."""
    function = (template or load_template())["Resources"]["Aggregate"]["Properties"]
    return dict(function["Events"]["AggregateDynamodbEventSource"]["Properties"])


def filter_patterns(source: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(f["Pattern"]) for f in (source.get("FilterCriteria") or {}).get("Filters", [])]


def matches(pattern: Any, value: Any) -> bool:
    """Lambda's event filter for the patterns we use: objects of exact-value lists."""
    if isinstance(pattern, list):
        return value in pattern
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(matches(p, value.get(k)) for k, p in pattern.items())
    return bool(pattern == value)


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A ``GetRecords`` record as Lambda hands it to a function (epoch seconds, the source ARN)."""
    body = dict(record["dynamodb"])
    created = body.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        body["ApproximateCreationDateTime"] = created.timestamp()
    return {**record, "dynamodb": body, "eventSourceARN": stream_arn}


class StreamPump:
    """Reads one table's stream from where it last stopped and delivers filtered batches."""

    def __init__(self, settings: Settings, deliver: Deliver, source: Mapping[str, Any] | None = None) -> None:
        source = source if source is not None else template_source()
        self.settings = settings
        self.deliver = deliver
        self.batch_size = int(source.get("BatchSize", 100))
        self.patterns = filter_patterns(source)
        self.lock = threading.Lock()
        self._ddb = boto3.client("dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url)
        self._streams = boto3.client(
            "dynamodbstreams", region_name=settings.region, endpoint_url=settings.endpoint_url, config=CLIENT_CONFIG
        )
        self._arn: str | None = None
        #: shard id -> the iterator to read next (None: the shard is closed and read to its end)
        self._iterators: dict[str, str | None] = {}
        self._held = False

    @property
    def stream_arn(self) -> str:
        if self._arn is None:
            self._arn = self._ddb.describe_table(TableName=self.settings.executions_table)["Table"]["LatestStreamArn"]
        return self._arn

    def pump_once(self) -> int:
        """One pass over every shard: deliver at most one batch each. Returns the records read."""
        with self.lock:
            shards = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
            read = 0
            for shard in shards:
                shard_id = shard["ShardId"]
                if shard_id not in self._iterators:
                    self._iterators[shard_id] = self._streams.get_shard_iterator(
                        StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                    )["ShardIterator"]
                iterator = self._iterators[shard_id]
                if iterator is None:
                    continue
                answer = self._streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
                records = answer.get("Records", [])
                read += len(records)
                batch = [lambda_record(r, self.stream_arn) for r in records]
                batch = [r for r in batch if not self.patterns or any(matches(p, r) for p in self.patterns)]
                if batch:
                    try:
                        # the shard as Lambda names it with a tumbling window: the aggregator's lane
                        self.deliver({"Records": batch, "shardId": shard_id})
                    except Exception:
                        # as Lambda: the same batch again, from its first record, on the next pass
                        log.exception("aggregate failed; the batch is delivered again")
                        self._iterators[shard_id] = self._streams.get_shard_iterator(
                            StreamArn=self.stream_arn,
                            ShardId=shard_id,
                            ShardIteratorType="AT_SEQUENCE_NUMBER",
                            SequenceNumber=records[0]["dynamodb"]["SequenceNumber"],
                        )["ShardIterator"]
                        raise
                self._iterators[shard_id] = answer.get("NextShardIterator")
            return read

    @contextmanager
    def held(self) -> Iterator[None]:
        """No delivery by ``drain`` inside: the records pile up into one batch, as on a busy
        table within the batching window (tests use it to build large batches)."""
        self._held = True
        try:
            yield
        finally:
            self._held = False

    def drain(self, limit: int = 1000) -> int:
        """Deliver until the stream has nothing new. Returns the records read."""
        if self._held:
            return 0
        total = 0
        for _ in range(limit):
            read = self.pump_once()
            if not read:
                return total
            total += read
        raise AssertionError("the stream did not drain")

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Local mode's loop: pump until ``stop`` is set; a failed batch is retried next pass."""
        while not stop.is_set():
            try:
                if not self.pump_once():
                    stop.wait(interval)
            except Exception:
                stop.wait(interval)
