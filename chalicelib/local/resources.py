"""Create the tables, queues and bucket that ``infra/template.json`` declares.

Local mode and the tests call this so that what they run against is what is deployed:
the template is read, not restated. Only the resource properties the API calls need
are translated; names come from ``Settings`` (the deployed stack passes the same
names to the functions through environment variables).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from chalicelib.config import Settings

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.json"


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return json.loads(path.read_text())


def _names(settings: Settings) -> dict[str, str]:
    return {
        "CatalogTable": settings.catalog_table,
        "ExecutionsTable": settings.executions_table,
        "StepQueue": settings.step_queue,
        "StepDeadLetterQueue": settings.step_dlq,
        "PayloadBucket": settings.payload_bucket,
    }


def _client(service: str, settings: Settings) -> Any:
    return boto3.client(service, region_name=settings.region, endpoint_url=settings.endpoint_url)


def create_resources(settings: Settings, template: dict[str, Any] | None = None) -> None:
    """Create every table, queue and bucket of the template under the settings' names."""
    template = template or load_template()
    names = _names(settings)
    resources = template["Resources"]
    order = sorted(resources, key=lambda lid: 0 if "RedrivePolicy" not in resources[lid].get("Properties", {}) else 1)
    for logical_id in order:
        if logical_id not in names:
            continue  # functions, log groups, and the settings merged into Chalice's functions
        resource = resources[logical_id]
        kind, props = resource["Type"], resource.get("Properties", {})
        name = names[logical_id]
        if kind == "AWS::DynamoDB::Table":
            _create_table(settings, name, props)
        elif kind == "AWS::SQS::Queue":
            _create_queue(settings, name, props, names)
        elif kind == "AWS::S3::Bucket":
            _create_bucket(settings, name)
    _verify_sender(settings)


def _verify_sender(settings: Settings) -> None:
    """Local mode and tests only: SES sends from a verified identity, so verify the sender.

    A deployment verifies ``STEPLINE_NOTIFY_FROM`` (or its domain) in SES once, by hand.
    """
    _client("sesv2", settings).create_email_identity(EmailIdentity=settings.notify_from)


def _create_table(settings: Settings, name: str, props: dict[str, Any]) -> None:
    ddb = _client("dynamodb", settings)
    args: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("StreamSpecification"):
        # the aggregator's stream: local mode and the tests read it as Lambda does in AWS
        args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    try:
        ddb.create_table(**args)
    except ddb.exceptions.ResourceInUseException:
        return
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)


def _create_queue(settings: Settings, name: str, props: dict[str, Any], names: dict[str, str]) -> None:
    sqs = _client("sqs", settings)
    attributes: dict[str, str] = {
        k: str(props[k]) for k in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds") if k in props
    }
    redrive = props.get("RedrivePolicy")
    if redrive:
        target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        dlq_url = sqs.get_queue_url(QueueName=names[target])["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(redrive["maxReceiveCount"])}
        )
    sqs.create_queue(QueueName=name, Attributes=attributes)


def _create_bucket(settings: Settings, name: str) -> None:
    s3 = _client("s3", settings)
    try:
        if settings.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": settings.region})
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
