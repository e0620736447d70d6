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


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "field"),
    [
        # Found by the coverage phase: each was accepted (or a 500) against what the document says.
        ("GET", "/executions?to=", None, {}, "to"),
        ("GET", "/workflows?zzz=1", None, {}, "zzz"),  # a query parameter the document does not list
        ("GET", "/tools?formt=openai", None, {}, "formt"),
        ("GET", "/executions?from=2026-01-31", None, {}, "from"),  # a date is not a date-time
        ("GET", "/executions?from=2026-01-31T00:00:00", None, {}, "from"),  # no zone
        ("GET", "/workflows/{wf}/stats?tz=localtime", None, {}, "tz"),
        ("PUT", "/workflows/{wf}", "GATED", {"If-Match": "abc"}, "If-Match"),
        ("POST", "/sources", {"name": "s1", "scheme": {}}, {}, "scheme"),
        ("POST", "/sources", {"name": "s2", "secret": None}, {}, "secret"),
        ("POST", "/executions/bulk", {"action": "cancel", "filters": {"workflow_id": ""}}, {}, "filters.workflow_id"),
        ("POST", "/executions/bulk", {"action": "cancel", "filters": {"to": "2026-01-31"}}, {}, "filters.to"),
        ("POST", "/tools/{tool}/invoke", {"tool_call_id": None}, {}, "tool_call_id"),
        (
            "POST",
            "/tools/{tool}/invoke",
            {"conversation_id": "c"},
            {"X-Conversation-Id": "x" * 256},
            "X-Conversation-Id",
        ),
    ],
)
def test_requests_the_document_forbids_are_a_400_naming_the_field(
    api: Any, method: str, path: str, body: Any, headers: dict[str, str], field: str
) -> None:
    workflow_id = api.create_workflow(GATED)
    tool = next(t["name"] for t in api.get("/tools")[1]["tools"] if workflow_id in t["name"])
    body = GATED if body == "GATED" else body  # GATED is defined further down
    status, answer = api.call(method, path.format(wf=workflow_id, tool=tool), body, headers=headers)
    assert status == 400 and field in [e["field"] for e in answer["errors"]], (status, answer)


def test_mcp_bodies_are_bounded_like_every_json_entry(api: Any) -> None:
    deep = '{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"a": ' + "[" * 40 + "]" * 40 + "}}"
    for body in (deep, '{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": NaN}}'):
        status, answer = api.call("POST", "/mcp", body)
        assert status == 400 and answer["error"]["code"] == -32700, answer
    status, answer = api.call("POST", "/mcp", '{"jsonrpc": "2.0", "method": "notifications/x", "params": [1]}')
    assert status == 400 and answer["error"]["code"] == -32602  # params must be an object, notifications too


# --- schemathesis ---------------------------------------------------------------------------

# Fuzzing: all of schemathesis' defaults but ``positive_data_acceptance``: random schema-valid
# requests meet rules that depend on stored state (a tampered ``next_token``, a workflow's own
# input form); the coverage test below checks acceptance precisely, with its exceptions listed.
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"positive_data_acceptance": {"enabled": False}}, "phases": {"coverage": {"enabled": False}}}
)
schema = schemathesis.openapi.from_dict(build_document(app), config=CONFIG)
# The coverage phase: for every operation, schemathesis derives requests at each rule's edge
# (each bound, each enum value, each missing required field, each wrong type) and expects the
# schema-valid ones accepted and the schema-violating ones refused. Methods the document does not
# list are left out: their answer comes from the HTTP front (API Gateway's 403, the local
# server's 501 for TRACE), not from Stepline.
COVERAGE_CONFIG = SchemathesisConfig.from_dict(
    {
        "phases": {
            "examples": {"enabled": False},
            "fuzzing": {"enabled": False},
            "coverage": {"enabled": True, "unexpected-methods": []},
        }
    }
)
coverage_schema = schemathesis.openapi.from_dict(build_document(app), config=COVERAGE_CONFIG)

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


@coverage_schema.parametrize()
@settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_api_accepts_what_the_document_allows_and_refuses_the_rest(case: Any, seeded: dict[str, str]) -> None:
    """Coverage phase, with ``positive_data_acceptance`` and ``negative_data_rejection`` on: a
    refusal or an acceptance the document does not predict fails, unless ``documented_exception``
    names the rule (each with the reason the document cannot state it)."""
    data = case.meta.phase.data
    if not (case.meta.generation.mode.is_negative and getattr(data, "parameter_location", None) == "path"):
        _aim_at_seeded(case, seeded)  # not over the path parameter a negative case made invalid
    with requests.Session() as session:
        response = case.call(base_url=seeded["url"], session=session, headers={"Authorization": f"Bearer {ADMIN}"})
    try:
        case.validate_response(response, headers={"Authorization": f"Bearer {ADMIN}"})
    except BaseException as raised:
        failures = list(getattr(raised, "exceptions", [raised]))
        left = [f for f in failures if not documented_exception(case, response, f)]
        if left:
            raise


#: Rules the server enforces that the document cannot state as JSON Schema, per operation: a
#: schema-valid request refused with a 400 is accepted by the test only when EVERY field its
#: ``errors`` name matches one of these patterns. Each says why the schema cannot carry the rule;
#: docs/api.md states the rules themselves.
REFUSALS_THE_SCHEMA_CANNOT_STATE: dict[str, dict[str, str]] = {
    "POST /workflows": {
        r"^steps(\[\d+\])?(\..*)?$": "each step's instructions and config follow its agent's rules (a JMESPath "
        "that compiles, a connection that exists, placeholders that name earlier steps): semantic checks",
        r"^trigger\.(source|filter|cron)$": "an event trigger's source must exist and its filter compile; a cron "
        "must parse and fire",
        r"^trigger\.inputs(\[\d+\])?(\..*)?$": "an input's default and options must fit its type; names unique",
        r"^notify(\[\d+\])?(\..*)?$": "webhook URLs are checked by the outbound guard (resolved addresses)",
        r"^(definition|body)$": "the whole definition's stored size, which depends on its encoding",
    },
    "GET /workflows/{workflow_id}/stats": {
        r"^(from|to)$": "`from` before `to` and at most 366 day / 744 hour buckets relate two parameters",
    },
    "POST /workflows/{workflow_id}/executions": {
        r"^inputs(\..*)?$": "the inputs follow the workflow's own input form, stored with the workflow",
    },
    "POST /tools/{name}/invoke": {
        r"^arguments(\..*)?$": "the arguments follow the tool's workflow's input form (its input_schema in GET /tools)",
    },
    "POST /sources": {
        r"^secret$": "the secret's format depends on `scheme` (described on the field)",
        r"^name$": "names starting with `aws.` are reserved for EventBridge (JSON Schema has no negative pattern "
        "that schemathesis generates from reliably)",
    },
    "POST /sources/{name}/rotate": {r"^secret$": "the secret's format depends on the stored source's scheme"},
    "PUT /connections/{name}": {
        r"^[a-z_]+$": "the fields allowed and required depend on the stored connection's kind, not in the request",
    },
    "POST /connections/{name}/test": {
        r"^model$": "required for model kinds only: the kind is the stored connection's, not in the request",
    },
    "POST /connections": {
        r"^(base_url|token_url)$": "URLs are checked by the outbound guard (resolved addresses, allow-list)",
    },
}
REFUSALS_THE_SCHEMA_CANNOT_STATE["PUT /workflows/{workflow_id}"] = REFUSALS_THE_SCHEMA_CANNOT_STATE["POST /workflows"]


def documented_exception(case: Any, response: Any, failure: Any) -> bool:
    """Whether ``failure`` is a refusal listed in ``REFUSALS_THE_SCHEMA_CANNOT_STATE``."""
    import re

    if type(failure).__name__ != "RejectedPositiveData" or response.status_code != 400:
        return False
    rules = REFUSALS_THE_SCHEMA_CANNOT_STATE.get(f"{case.method.upper()} {case.path}", {})
    try:
        fields = [e["field"] for e in response.json()["errors"]]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(fields) and all(any(re.match(p, f) for p in rules) for f in fields)
