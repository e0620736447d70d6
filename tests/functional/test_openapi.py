"""GET /openapi.json: generated from the route table, and fuzzed with schemathesis.

The fuzz test sends every operation a bounded number of generated requests (half of
them aimed at seeded workflows and executions, so actions reach real state) to the app
served over HTTP on moto, and checks each answer against the document: never a 500,
documented status codes, content types and response schemas.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from app import app
from chalicelib.api.openapi import build_document, document_table, route_table
from tests.conftest import Api, Worker
from tests.functional.served import serve

ADMIN = "test-admin-key"
EXAMPLES = int(os.environ.get("STEPLINE_FUZZ_EXAMPLES", "8"))


def test_document_lists_exactly_the_routes_of_the_app(client: Any) -> None:
    response = client.http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json_body
    assert document["openapi"].startswith("3.")
    assert document_table(document) == route_table(app)
    assert ("GET", "/openapi.json") in route_table(app)


def test_every_operation_has_summary_role_and_documented_success(client: Any) -> None:
    document = client.http.get("/openapi.json").json_body
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["summary"], (method, path)
            assert any(code.startswith("2") for code in operation["responses"]), (method, path)
            params = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert params == {name.rstrip("+") for name in path.replace("}", "{").split("{")[1::2]}, (method, path)
    start = document["paths"]["/workflows/{workflow_id}/executions"]["post"]
    assert start["x-stepline-role"] == "operator"
    assert "201" in start["responses"]
    assert document["paths"]["/health"]["get"]["security"] == []
    assert "security" not in document["paths"]["/workflows"]["get"]  # the document's default: bearer key


def test_routes_added_later_appear_without_extra_work() -> None:
    from chalice import Blueprint, Chalice

    from chalicelib.api.boundary import endpoint

    bp = Blueprint("probe")

    @endpoint(bp, "/probe/{thing}", ("POST",), role="operator", status=202)
    def poke(ctx: Any, thing: str) -> dict[str, Any]:
        """Poke a thing."""  # no table entry: the docstring is the summary
        return {}

    probe = Chalice(app_name="probe")
    probe.register_blueprint(bp)
    operation = build_document(probe)["paths"]["/probe/{thing}"]["post"]
    assert operation["summary"] == "Poke a thing"
    assert operation["x-stepline-role"] == "operator"
    assert "202" in operation["responses"] and "403" in operation["responses"]


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_timestamps_outside_the_utc_range_are_a_400_naming_the_field(api: Any, value: str) -> None:
    # Found by the fuzz test below: these were 500s (OverflowError converting to UTC).
    workflow_id = api.create_workflow(GATED)
    status, body = api.get(f"/workflows/{workflow_id}/executions?from={quote(value)}")
    assert status == 400 and body["errors"][0]["field"] == "from", body


# --- schemathesis ---------------------------------------------------------------------------

# Checks: all of schemathesis' defaults but ``positive_data_acceptance``: a schema-valid
# request may still be a clean 400 here (a tampered ``next_token``, an event trigger
# without a source, a JMESPath that does not compile), which the contract wants.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {"positive_data_acceptance": {"enabled": False}},
        "phases": {"coverage": {"enabled": os.environ.get("STEPLINE_FUZZ_COVERAGE") == "1"}},
    }
)
schema = schemathesis.openapi.from_dict(build_document(app), config=CONFIG)

GATED = {
    "name": "Gated",
    "trigger": {"type": "manual", "inputs": [{"name": "n", "type": "integer", "required": False}]},
    "steps": [
        {"id": "draft", "agent": "transform", "instructions": "input"},
        {"id": "ok", "agent": "transform", "instructions": "prev", "gate": {"type": "approval"}},
    ],
}
FAILING = {
    "name": "Failing",
    "trigger": {"type": "manual", "inputs": []},
    "steps": [
        {
            "id": "boom",
            "agent": "python",
            "config": {"callable": "chalicelib.samples.callables:fails_permanently"},
            "retry": {"max_attempts": 1, "backoff_seconds": 0},
        }
    ],
}


@pytest.fixture(scope="module")
def seeded() -> Iterator[dict[str, str]]:
    """One moto stack and served app for every operation (set up once: the fuzz test's
    cost is its requests), with a waiting and a failed execution to act on."""
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib.config import Settings
    from chalicelib.engine import Engine, reset_engine
    from chalicelib.local.resources import create_resources

    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "STEPLINE_ADMIN_KEY": ADMIN,
        "STEPLINE_STAGE": "dev",
    }
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        settings = Settings.from_env()
        create_resources(settings)
        engine = Engine.build(settings)
        reset_engine(engine)
        try:
            with Client(app) as client:
                api, worker = Api(client, ADMIN), Worker(client, engine)
                gated = api.create_workflow(GATED)
                waiting = api.start(gated, {"n": 1})["execution_id"]
                failed = api.start(api.create_workflow(FAILING), {})["execution_id"]
                worker.drain()
                status, _ = api.post("/sources", {"name": "billing"})
                assert status == 201
                tool = next(iter(api.get("/tools")[1]["workflows"]))
                with serve(app) as url:
                    yield {
                        "url": url,
                        "workflow_id": gated,
                        "execution_id": waiting,
                        "failed_execution_id": failed,
                        "step_id": "ok",
                        "source": "billing",
                        "version": "1",
                        "tool": tool,
                    }
        finally:
            reset_engine(None)


def _aim_at_seeded(case: Any, seeded: dict[str, str]) -> None:
    for name in list(case.path_parameters or {}):
        if name in seeded:
            case.path_parameters[name] = seeded[name]
        elif name == "name":  # /sources/{name}/... or /tools/{name}/...
            case.path_parameters[name] = seeded["source"] if case.path.startswith("/sources") else seeded["tool"]
    if (
        case.path_parameters
        and "step_id" in case.path_parameters
        and case.method.upper() == "POST"
        and case.path.endswith(("/retry", "/skip", "/force-advance"))
    ):
        case.path_parameters["execution_id"] = seeded["failed_execution_id"]
        case.path_parameters["step_id"] = "boom"


@schema.parametrize()
@schema.given(aim=st.booleans(), key=st.sampled_from([ADMIN, ADMIN, "wrong-key"]))
@settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
def test_api_answers_every_generated_request_as_documented(
    case: Any, aim: bool, key: str, seeded: dict[str, str]
) -> None:
    if aim:
        _aim_at_seeded(case, seeded)
    with requests.Session() as session:
        case.call_and_validate(base_url=seeded["url"], session=session, headers={"Authorization": f"Bearer {key}"})
