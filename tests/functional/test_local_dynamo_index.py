"""The emulator's index for global secondary index queries (chalicelib/local/dynamo_index.py)
answers exactly what a walk of the table answers, after any mix of writes: puts that move an
item between index partitions or out of a sparse index, updates, deletes, transactions that
commit and transactions that are cancelled (their undo), on moto with dynamo_isolation
installed (tests/conftest.py), through boto3 as the engine's store calls it."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.local import dynamo_index

TABLE = "index-check"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "g", "gs", "h")
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_g",
                    "KeySchema": [
                        {"AttributeName": "g", "KeyType": "HASH"},
                        {"AttributeName": "gs", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
                {
                    "IndexName": "by_h",
                    "KeySchema": [{"AttributeName": "h", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                },
            ],
        )
        yield client


def _query(client: Any, index: str, attr: str, value: str, **extra: Any) -> list[tuple[str, str]]:
    found, start = [], None
    while True:
        kwargs: dict[str, Any] = {
            "TableName": TABLE,
            "IndexName": index,
            "KeyConditionExpression": "#a = :v",
            "ExpressionAttributeNames": {"#a": attr},
            "ExpressionAttributeValues": {":v": {"S": value}},
            "Limit": 3,  # paging goes through the narrowed walk too
            **extra,
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = client.query(**kwargs)
        found += [(i["pk"]["S"], i["sk"]["S"]) for i in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            return found


def _expected(model: dict[tuple[str, str], dict[str, str]], attr: str, value: str, order: str | None) -> list[Any]:
    """The keys a walk of ``model`` finds (ordered by ``order``, the index sort key, if given)."""
    rows = [(key, item) for key, item in model.items() if item.get(attr) == value]
    if order is not None:
        rows = [(key, item) for key, item in rows if order in item]
        rows.sort(key=lambda row: (row[1][order], row[0][0], row[0][1]))
        return [key for key, _ in rows]
    return sorted(key for key, _ in rows)


def test_index_queries_match_the_items_after_random_writes(dynamodb: Any) -> None:
    rng = random.Random(15)
    model: dict[tuple[str, str], dict[str, str]] = {}
    values = ["a", "b", "c"]

    def attrs() -> dict[str, str]:
        item = {}
        for name in ("g", "gs", "h"):
            if rng.random() < 0.75:  # some items leave a sparse index
                item[name] = rng.choice(values) + (str(rng.randint(0, 9)) if name == "gs" else "")
        return item

    def wire(key: tuple[str, str], item: dict[str, str]) -> dict[str, Any]:
        return {"pk": {"S": key[0]}, "sk": {"S": key[1]}, **{k: {"S": v} for k, v in item.items()}}

    for round_ in range(300):
        key = (f"p{rng.randint(0, 7)}", f"s{rng.randint(0, 5)}")
        roll = rng.random()
        if roll < 0.35:
            item = attrs()
            dynamodb.put_item(TableName=TABLE, Item=wire(key, item))
            model[key] = item
        elif roll < 0.55:
            new = rng.choice(values)
            dynamodb.update_item(
                TableName=TABLE,
                Key=wire(key, {}),
                UpdateExpression="SET g = :g",
                ExpressionAttributeValues={":g": {"S": new}},
            )
            model[key] = {**model.get(key, {}), "g": new}
        elif roll < 0.65:
            dynamodb.delete_item(TableName=TABLE, Key=wire(key, {}))
            model.pop(key, None)
        else:
            # a transaction of two puts; cancelled (nothing written) when the second key exists
            other = (f"p{rng.randint(0, 7)}", f"t{rng.randint(0, 3)}")
            first, second = attrs(), attrs()
            try:
                dynamodb.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": TABLE, "Item": wire(key, first)}},
                        {
                            "Put": {
                                "TableName": TABLE,
                                "Item": wire(other, second),
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                    ]
                )
                model[key], model[other] = first, second
            except ClientError as error:
                assert error.response["Error"]["Code"] == "TransactionCanceledException"
                assert other in model
        if round_ % 7 == 0:
            for value in values:
                # without an index sort key the order is unspecified; with one, it is the sort key's
                assert sorted(_query(dynamodb, "by_h", "h", value)) == _expected(model, "h", value, None)
                expected = _expected(model, "g", value, "gs")
                forwards = _query(dynamodb, "by_g", "g", value)
                backwards = _query(dynamodb, "by_g", "g", value, ScanIndexForward=False)
                assert sorted(forwards) == sorted(expected) == sorted(backwards)
                assert [model[k]["gs"] for k in forwards] == [model[k]["gs"] for k in expected]
                assert [model[k]["gs"] for k in backwards] == [model[k]["gs"] for k in reversed(expected)]
    # the maps really answered (the walk was narrowed), and hold only what the model holds
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends["123456789012"]["us-east-1"].get_table(TABLE)
    state = dynamo_index.index_of(table)
    _query(dynamodb, "by_h", "h", "a")  # the writes since the last query are applied at the next one
    assert not state.dirty and set(state.maps) == {"by_g", "by_h"}
    indexed = {(k[0].value, k[1].value) for partition in state.maps["by_h"].values() for k in partition}
    assert indexed == {key for key, item in model.items() if "h" in item}
