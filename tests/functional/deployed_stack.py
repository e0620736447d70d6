"""The packaged artifact deployed as a user deploys it, on a moto server on 127.0.0.1.

``make package``'s template goes through AWS's own SAM translator (what CloudFormation's
``AWS::Serverless`` transform runs), its code is uploaded to S3 as ``aws cloudformation
package`` does, and the stack is created on moto's CloudFormation. Two parts moto cannot
create are left out or stood in for, and nothing else:

* API Gateway (``AWS::ApiGateway::*`` and the API's invoke permission): moto cannot build a
  RestApi from an OpenAPI ``Body``. The OpenAPI document is still read, to route each
  request event as API Gateway would and to check every route invokes the API function.
* ``AWS::SecretsManager::Secret``: moto's CloudFormation has no support for it. This module
  does what CloudFormation does (generates the value per ``GenerateSecretString``, creates
  the secret under the template's name) and puts its ARN where the template says ``Ref``.

Each function then runs from the unzipped package in its own interpreter
(``lambda_runtime.py``) with the environment the stack gave it.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import re
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("lambda_runtime.py")
MARK = "\x1eRESULT "
REGION, ACCOUNT = "us-east-1", "123456789012"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
#: What Lambda's Python runtime puts on sys.path besides the package (the AWS SDK).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer")


def shared_dir(tmp_path_factory: Any) -> Path:
    """A directory all xdist workers of this run share (the run's own when not distributed)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_package(tmp_path_factory: Any) -> Path:
    """``make package``'s output (sam.json + deployment.zip), built once per test run."""
    sys.path.insert(0, str(ROOT / "infra"))
    import package as packaging  # infra/package.py

    base = shared_dir(tmp_path_factory)
    out = base / "stepline-package"
    with open(base / "stepline-package.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "sam.json").is_file():
            packaging.package("dev", out, lint=False)
    return out / "sam.json"


def translate(sam: dict[str, Any], code_uri: str) -> dict[str, Any]:
    """The SAM template as CloudFormation sees it after the ``AWS::Serverless`` transform."""
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import undo_mark_unicode_str_in_template

    template = copy.deepcopy(sam)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = code_uri
    # as samtranslator.translator.transform.transform, with the region given, not looked up;
    # no managed policies: our roles carry inline policies only
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    translated = translator.translate(template, parameter_values={}, get_managed_policy_map=dict)
    return undo_mark_unicode_str_in_template(translated)


def _replace_refs(value: Any, refs: dict[str, str]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in refs:
            return refs[value["Ref"]]
        return {k: _replace_refs(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_refs(v, refs) for v in value]
    return value


def _sub(text: str, parameters: dict[str, str]) -> str:
    return re.sub(r"\$\{([^}]+)\}", lambda m: parameters[m.group(1)], text)


@dataclass
class Stack:
    """A created stack: its template, outputs and a client factory for the moto server."""

    endpoint: str
    template: dict[str, Any]
    outputs: dict[str, str]
    resources: dict[str, dict[str, Any]]
    left_out: list[str]
    openapi: dict[str, Any]

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint, **_lower(CREDENTIALS))


def _lower(credentials: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in credentials.items()}


def deploy(endpoint: str, sam_path: Path, stack_name: str = "stepline-dev") -> Stack:
    """Translate, upload and create the stack on the moto server at ``endpoint``."""

    def client(service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=endpoint,
            **_lower(CREDENTIALS),
        )

    s3 = client("s3")
    artifacts = f"artifacts-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=artifacts)
    s3.upload_file(str(sam_path.with_name("deployment.zip")), artifacts, "deployment.zip")
    cfn = translate(json.loads(sam_path.read_text()), f"s3://{artifacts}/deployment.zip")
    resources = cfn["Resources"]
    openapi = resources["RestAPI"]["Properties"]["Body"]
    left_out = sorted(
        k
        for k, v in resources.items()
        if v["Type"].startswith("AWS::ApiGateway::")
        or (v["Type"] == "AWS::Lambda::Permission" and v["Properties"].get("Principal") == "apigateway.amazonaws.com")
    )
    for name in left_out:
        del resources[name]
    for name in [k for k, v in cfn.get("Outputs", {}).items() if set(left_out) & set(_references(v))]:
        del cfn["Outputs"][name]
    parameters = {k: str(v.get("Default", "")) for k, v in cfn.get("Parameters", {}).items()}
    parameters.update({"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"})
    refs = {}
    for name, resource in list(resources.items()):
        if resource["Type"] == "AWS::SecretsManager::Secret":  # what CloudFormation would do
            refs[name] = _create_secret(client("secretsmanager"), resource["Properties"], parameters)
            del resources[name]
    cfn = _replace_refs(cfn, refs)
    formation = client("cloudformation")
    formation.create_stack(
        StackName=stack_name, TemplateBody=json.dumps(cfn), Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
    )
    described = formation.describe_stacks(StackName=stack_name)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE", described
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    outputs.update({k: v for k, v in refs.items()})  # the secret's Ref, as CloudFormation gives it
    created = {
        r["LogicalResourceId"]: r
        for r in formation.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    }
    return Stack(endpoint, cfn, outputs, created, left_out + sorted(refs), openapi)


def _references(value: Any) -> Iterator[str]:
    """Logical ids a template value refers to (Ref, GetAtt, ${...} in Fn::Sub)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                yield inner[0] if isinstance(inner, list) else inner.split(".")[0]
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                yield from (m.split(".")[0] for m in re.findall(r"\$\{([^}]+)\}", text))
                if isinstance(inner, list):
                    yield from _references(inner[1])
            else:
                yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def _create_secret(secrets: Any, properties: dict[str, Any], parameters: dict[str, str]) -> str:
    generate = properties["GenerateSecretString"]
    value = secrets.get_random_password(
        **{
            k: v
            for k, v in generate.items()
            if k
            in (
                "PasswordLength",
                "ExcludePunctuation",
                "ExcludeCharacters",
                "ExcludeUppercase",
                "ExcludeLowercase",
                "ExcludeNumbers",
                "IncludeSpace",
                "RequireEachIncludedType",
            )
        }
    )["RandomPassword"]
    name = properties["Name"]
    name = _sub(name["Fn::Sub"], parameters) if isinstance(name, dict) else name
    return secrets.create_secret(Name=name, Description=properties.get("Description", ""), SecretString=value)["ARN"]


# ------------------------------------------------------------------ functions in a process
def unpack(zip_path: Path, into: Path) -> tuple[Path, Path]:
    """/var/task (the package) and the runtime's own packages (the AWS SDK, from this venv)."""
    task, runtime = into / "task", into / "runtime"
    if not task.is_dir():
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(task)
        runtime.mkdir()
        for name in RUNTIME_PACKAGES:
            module = __import__(name)
            (runtime / name).symlink_to(Path(module.__file__).parent, target_is_directory=True)
    return task, runtime


@dataclass
class Function:
    """One deployed function run by ``lambda_runtime.py`` in its own interpreter."""

    name: str
    handler: str
    environment: dict[str, str]
    arn: str
    timeout: int
    task: Path
    runtime: Path
    stack_endpoint: str
    init: dict[str, Any] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    @classmethod
    def from_stack(cls, stack: Stack, logical_id: str, task: Path, runtime: Path) -> Function:
        name = stack.resources[logical_id]["PhysicalResourceId"]
        config = stack.client("lambda").get_function_configuration(FunctionName=name)
        return cls(
            name,
            config["Handler"],
            dict(config.get("Environment", {}).get("Variables", {})),
            config["FunctionArn"],
            config["Timeout"],
            task,
            runtime,
            stack.endpoint,
        )

    def start(self) -> dict[str, Any]:
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            **self.environment,
            **CREDENTIALS,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.stack_endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "LAMBDA_TASK_ROOT": str(self.task),
            "STEPLINE_TEST_FUNCTION_ARN": self.arn,
            "STEPLINE_TEST_TIMEOUT": str(self.timeout),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", str(RUNNER), str(self.task), str(self.runtime), self.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=str(self.task),
        )
        self.init = self._answer()
        assert "init_error" not in self.init, f"{self.name} failed to import:\n{self.init['init_error']}\n" + "".join(
            self.output
        )
        return self.init

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke with ``event``; returns {"ok": result} or {"error": ..., "trace": ...}."""
        if self.process is None:
            self.start()
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
            self.output.append(line)
        raise AssertionError(f"{self.name} exited ({self.process.wait()}):\n" + "".join(self.output[-40:]))

    def stop(self) -> None:
        if self.process is not None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=30)
            self.process = None


# ------------------------------------------------------------------------------ events
def api_event(
    openapi: dict[str, Any], method: str, path: str, key: str | None = None, body: Any = None, stage: str = "api"
) -> dict[str, Any]:
    """The proxy event API Gateway sends for ``method path``, routed through the OpenAPI
    document of the package (the route's integration must be the API function)."""
    bare, _, query = path.partition("?")
    for template, operations in openapi["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
        match = re.match(pattern, bare)
        if match and method.lower() in operations:
            break
    else:
        raise AssertionError(f"API Gateway has no route for {method} {bare}")
    integration = operations[method.lower()]["x-amazon-apigateway-integration"]
    assert integration["type"] == "aws_proxy" and "${APIHandler.Arn}" in integration["uri"]["Fn::Sub"], integration
    names = re.findall(r"\{([^}]+)\}", template)
    headers = {"Host": "example.execute-api.us-east-1.amazonaws.com", "Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    params = dict(p.split("=", 1) for p in query.split("&")) if query else None
    return {
        "resource": template,
        "path": bare,
        "httpMethod": method.upper(),
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": params,
        "multiValueQueryStringParameters": {k: [v] for k, v in params.items()} if params else None,
        "pathParameters": dict(zip(names, match.groups(), strict=True)) or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": template,
            "httpMethod": method.upper(),
            "path": f"/{stage}{bare}",
            "stage": stage,
            "accountId": ACCOUNT,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "203.0.113.7"},
            "apiId": "example",
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS poller invokes the function with, for received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {k: str(v) for k, v in m.get("Attributes", {}).items()},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def scheduled_event(rule_arn: str) -> dict[str, Any]:
    """What EventBridge sends a function on a schedule rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [rule_arn],
        "detail": {},
    }
