"""`make package`: one template, cfn-lint clean, whose functions point at the template's own
resources. Builds the real package once per run (chalice package, ~30 s), then cfn-lints it."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))
import package as packaging  # noqa: E402  (infra/package.py, what `make package` runs)

from chalicelib.local.resources import load_template  # noqa: E402
from tests.functional.deployed_stack import build_package  # noqa: E402

#: The environment each function reads its resource names from (chalicelib/config.py).
WIRING = {
    "STEPLINE_CATALOG_TABLE": {"Ref": "CatalogTable"},
    "STEPLINE_EXECUTIONS_TABLE": {"Ref": "ExecutionsTable"},
    "STEPLINE_STEP_QUEUE": {"Fn::GetAtt": ["StepQueue", "QueueName"]},
    "STEPLINE_STEP_DLQ": {"Fn::GetAtt": ["StepDeadLetterQueue", "QueueName"]},
    "STEPLINE_PAYLOAD_BUCKET": {"Ref": "PayloadBucket"},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_package(tmp_path_factory)  # once per run, shared with test_deploy_artifact.py


@pytest.fixture(scope="module")
def packaged(built: Path) -> dict[str, Any]:
    return json.loads(built.read_text())


def test_package_is_one_template_that_cfn_lint_passes(built: Path) -> None:
    assert sorted(p.name for p in built.parent.iterdir()) == ["deployment.zip", "sam.json"]
    lint = subprocess.run([packaging._tool("cfn-lint"), str(built)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_zip_leaves_the_sdk_to_the_lambda_runtime_and_the_samples_to_local_mode(built: Path) -> None:
    with zipfile.ZipFile(built.with_name("deployment.zip")) as archive:
        names = archive.namelist()
        modes = {info.external_attr >> 16 for info in archive.infolist()}
    tops = {name.split("/", 1)[0] for name in names}
    assert not {t for t in tops if t.split("-", 1)[0] in ("boto3", "botocore", "s3transfer")}, tops
    assert not [n for n in names if n.startswith("chalicelib/samples/callables")]
    assert "chalicelib/samples/workflows.py" in names  # GET /templates serves the sample definitions
    assert {"app.py", "chalicelib", "pynamodb", "croniter", "jmespath", "tzdata", "chalice"} <= tops
    assert "__pycache__/app.cpython-311.pyc" in names or sys.version_info[:2] != (3, 11)
    assert modes == {0o644}
    assert built.with_name("deployment.zip").stat().st_size < 5_000_000


def _functions(packaged: dict[str, Any]) -> list[str]:
    return [k for k, v in packaged["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]


def test_functions_read_every_resource_name_from_the_template(packaged: dict[str, Any]) -> None:
    resources = packaged["Resources"]
    assert {"APIHandler", "RunStep", "Sweep"} <= set(_functions(packaged))
    for name in _functions(packaged):
        function = resources[name]
        assert function["Type"] == "AWS::Serverless::Function"
        variables = function["Properties"]["Environment"]["Variables"]
        assert {k: variables[k] for k in WIRING} == WIRING, name
        assert variables["STEPLINE_STAGE"] == "dev"
        assert function["DependsOn"] == [f"{name}LogGroup"]
        assert function["Properties"]["FunctionName"] == {
            "Fn::Sub": resources[f"{name}LogGroup"]["Properties"]["LogGroupName"]["Fn::Sub"].removeprefix(
                "/aws/lambda/"
            )
        }
    for target in {ref.get("Ref") or ref["Fn::GetAtt"][0] for ref in WIRING.values()}:
        assert target in resources


def test_step_worker_takes_one_message_at_a_time_from_the_template_queue(packaged: dict[str, Any]) -> None:
    """Batch size 1, so no partial batch responses: the handler raises on a worker failure
    and Lambda returns just that message to the queue. (Returning batchItemFailures without
    FunctionResponseTypes: [ReportBatchItemFailures] would delete the failed messages.)"""
    run_step = packaged["Resources"]["RunStep"]["Properties"]
    (event,) = run_step["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["StepQueue", "Arn"]}
    assert event["Properties"]["BatchSize"] == 1
    assert "FunctionResponseTypes" not in event["Properties"]
    assert run_step["ReservedConcurrentExecutions"] >= 1


def test_queue_follows_aws_guidance_for_a_lambda_event_source(packaged: dict[str, Any]) -> None:
    """https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html: a visibility
    timeout of at least six times the function's timeout (Lambda may retry a throttled batch
    within it) and a maxReceiveCount of at least 5 (so throttling alone does not dead-letter)."""
    resources = packaged["Resources"]
    queue = resources["StepQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * resources["RunStep"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] <= 12 * 3600  # SQS's maximum
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["StepDeadLetterQueue", "Arn"]}
    assert 5 <= queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    dlq = resources["StepDeadLetterQueue"]["Properties"]
    assert dlq["MessageRetentionPeriod"] >= queue["MessageRetentionPeriod"]
    assert resources["APIHandler"]["Properties"]["Timeout"] <= 29  # API Gateway's integration limit
    assert resources["Sweep"]["Properties"]["Timeout"] < 15 * 60


def test_storage_is_on_demand_recoverable_and_private(packaged: dict[str, Any]) -> None:
    resources = packaged["Resources"]
    for name in ("CatalogTable", "ExecutionsTable"):
        table = resources[name]["Properties"]
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    bucket = resources["PayloadBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert set(packaged["Outputs"]) >= {
        "EndpointURL",
        "CatalogTableName",
        "ExecutionsTableName",
        "StepQueueUrl",
        "StepDeadLetterQueueUrl",
        "PayloadBucketName",
    }


def test_packaged_resources_are_the_ones_local_mode_and_tests_create(packaged: dict[str, Any]) -> None:
    source = load_template()["Resources"]
    for name in ("CatalogTable", "ExecutionsTable", "StepQueue", "StepDeadLetterQueue", "PayloadBucket"):
        assert packaged["Resources"][name] == source[name], name
    stage = packaged["Parameters"]["StageName"]
    assert stage["Default"] == "dev" and stage["AllowedValues"] == ["dev"]


def test_bootstrap_admin_key_is_generated_by_cloudformation_and_read_only_by_the_api(packaged: dict[str, Any]) -> None:
    resources = packaged["Resources"]
    secret = resources["AdminKeySecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert "SecretString" not in secret["Properties"]  # no key in the template
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["PasswordLength"] >= 32 and generated["ExcludePunctuation"] is True
    assert packaged["Outputs"]["AdminKeySecretArn"]["Value"] == {"Ref": "AdminKeySecret"}
    assert packaged["Parameters"]["BootstrapAdminKey"]["Default"] == "enabled"
    for name in _functions(packaged):
        variables = resources[name]["Properties"]["Environment"]["Variables"]
        if name == "APIHandler":
            assert variables["STEPLINE_ADMIN_KEY_SECRET"] == {
                "Fn::If": ["BootstrapAdminKeyEnabled", {"Ref": "AdminKeySecret"}, ""]
            }
        else:
            assert "STEPLINE_ADMIN_KEY_SECRET" not in variables, name
        assert "STEPLINE_ADMIN_KEY" not in variables, name
        assert "STEPLINE_OUTBOUND_ALLOW_PRIVATE" not in variables, name  # local mode only (outbound.py)
        assert variables["STEPLINE_PYTHON_MODULES"] == {"Ref": "PythonModules"}, name
    assert packaged["Conditions"]["BootstrapAdminKeyEnabled"] == {
        "Fn::Equals": [{"Ref": "BootstrapAdminKey"}, "enabled"]
    }


def test_every_function_role_carries_the_stage_policy_file(packaged: dict[str, Any]) -> None:
    """The API handler's role adds the connection-secret writes and the bootstrap admin key's
    read (policy-dev-api.json) to the shared policy."""
    policy = json.loads((ROOT / ".chalice" / "policy-dev.json").read_text())
    api_policy = json.loads((ROOT / ".chalice" / "policy-dev-api.json").read_text())
    roles = {k: v for k, v in packaged["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    assert len(roles) == len(_functions(packaged))
    resources = packaged["Resources"]
    role_of = {resources[f]["Properties"]["Role"]["Fn::GetAtt"][0]: f for f in _functions(packaged)}
    for name, role in roles.items():
        (inline,) = role["Properties"]["Policies"]
        expected = api_policy if role_of.get(name) == "APIHandler" else policy
        assert inline["PolicyDocument"] == expected, (name, role_of.get(name))
        assert "ManagedPolicyArns" not in role["Properties"]
    assert role_of.get(resources["APIHandler"]["Properties"]["Role"]["Fn::GetAtt"][0]) == "APIHandler"
