"""Connections applied by the http agent: bearer, header, basic, and OAuth2 (client credentials or
refresh token) with a cached token refreshed once on a 401; also the email agent's SES errors."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.agents import AgentContext, IntegrationError, get_agent
from chalicelib.agents.auth import fetch_count_reset
from chalicelib.agents.email import EmailAgent
from chalicelib.domain.connections import ResolvedConnection
from tests.fakes.scripted import Answer, ScriptedServer


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("STEPLINE_OUTBOUND_ALLOW_PRIVATE", "1")  # the fakes listen on loopback
    fetch_count_reset()
    yield
    fetch_count_reset()


@pytest.fixture
def api() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def run(api: ScriptedServer, connection: ResolvedConnection) -> Any:
    ctx = AgentContext(
        "ex_9",
        "call",
        1,
        None,
        {"url": api.url + "/records", "method": "GET", "connection": connection.name},
        {"input": {}, "prev": {}, "steps": {}},
        10,
        connections=lambda name: connection,
    )
    return get_agent("http").run(ctx)


@pytest.mark.parametrize(
    "connection,header,value",
    [
        (ResolvedConnection("b", "bearer", {}, {"token": "tok-1"}), "authorization", "Bearer tok-1"),
        (ResolvedConnection("h", "header", {"header": "X-Api-Key"}, {"value": "v-2"}), "x-api-key", "v-2"),
        (
            ResolvedConnection("u", "basic", {"username": "svc"}, {"password": "pw-3"}),
            "authorization",
            "Basic " + base64.b64encode(b"svc:pw-3").decode(),
        ),
    ],
)
def test_static_credentials_are_sent(
    api: ScriptedServer, connection: ResolvedConnection, header: str, value: str
) -> None:
    api.script("/records", Answer(200, {"ok": True}))
    assert run(api, connection)["body"] == {"ok": True}
    assert api.requests("/records")[0].headers[header] == value


def _oauth(api: ScriptedServer, refresh: str | None = None) -> ResolvedConnection:
    secrets = {"client_secret": "cs-9"} | ({"refresh_token": refresh} if refresh else {})
    return ResolvedConnection(
        "crm", "oauth2", {"token_url": api.url + "/token", "client_id": "cid", "scope": "records.read"}, secrets
    )


def test_client_credentials_token_is_cached_until_it_expires(api: ScriptedServer) -> None:
    api.script("/token", Answer(200, {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600}))
    api.default("/records", Answer(200, {"ok": True}))
    run(api, _oauth(api))
    run(api, _oauth(api))
    [token_call] = api.requests("/token")
    assert token_call.form == {
        "grant_type": "client_credentials",
        "client_id": "cid",
        "client_secret": "cs-9",
        "scope": "records.read",
    }
    assert [r.headers["authorization"] for r in api.requests("/records")] == ["Bearer at-1", "Bearer at-1"]


def test_a_401_refreshes_the_token_once_then_succeeds(api: ScriptedServer) -> None:
    api.script(
        "/token",
        Answer(200, {"access_token": "old", "expires_in": 3600}),
        Answer(200, {"access_token": "new", "expires_in": 3600}),
    )
    api.script("/records", Answer(401, {"error": "expired"}), Answer(200, {"ok": True}))
    assert run(api, _oauth(api, refresh="rt-1"))["status"] == 200
    assert [r.form["grant_type"] for r in api.requests("/token")] == ["refresh_token", "refresh_token"]
    assert api.requests("/token")[0].form["refresh_token"] == "rt-1"
    assert [r.headers["authorization"] for r in api.requests("/records")] == ["Bearer old", "Bearer new"]


def test_a_401_after_the_refresh_is_integration_naming_the_connection(api: ScriptedServer) -> None:
    api.default("/token", Answer(200, {"access_token": "at", "expires_in": 3600}))
    api.default("/records", Answer(401, {"error": "revoked"}))
    with pytest.raises(IntegrationError) as raised:
        run(api, _oauth(api))
    error = raised.value.to_dict()
    assert error["retryable"] is False and error["action"] == "update_connection"
    assert "update connection crm and retry" in error["message"] and "expired or revoked" in error["message"]
    assert len(api.requests("/records")) == 2  # the call, then once more after the refresh


def test_a_refused_refresh_is_integration_naming_the_connection(api: ScriptedServer) -> None:
    api.script("/token", Answer(400, {"error": "invalid_grant"}))
    with pytest.raises(IntegrationError) as raised:
        run(api, _oauth(api, refresh="rt-gone"))
    assert "update connection crm" in raised.value.message and "invalid_grant" in raised.value.message
    assert api.requests("/records") == []


def test_a_secret_echoed_in_an_error_body_is_redacted(api: ScriptedServer) -> None:
    api.script("/records", Answer(400, {"echo": "Bearer tok-secret-77"}))
    with pytest.raises(IntegrationError) as raised:
        run(api, ResolvedConnection("b", "bearer", {}, {"token": "tok-secret-77"}))
    assert "tok-secret-77" not in str(raised.value.to_dict())


@pytest.mark.parametrize(
    "code,retryable",
    [("TooManyRequestsException", True), ("MessageRejected", False), ("AccountSuspendedException", False)],
)
def test_email_throttling_is_retryable_and_rejection_is_not(code: str, retryable: bool) -> None:
    client = boto3.client("sesv2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    stubber = Stubber(client)
    stubber.add_client_error(
        "send_email", service_error_code=code, service_message="no", http_status_code=429 if retryable else 400
    )
    ctx = AgentContext(
        "ex_1",
        "mail",
        1,
        None,
        {"to": ["a@example.com"], "subject": "s", "body": "b", "from": "me@example.com"},
        {"input": {}},
        10,
    )
    with stubber, pytest.raises(IntegrationError) as raised:
        EmailAgent(client=client).run(ctx)
    assert raised.value.retryable is retryable
    assert raised.value.to_dict()["action"] == ("retry" if retryable else "skip_or_cancel")


def test_the_secret_cache_follows_the_record_version() -> None:
    from chalicelib.config import Settings
    from chalicelib.secrets import SecretVault

    class FakeClient:
        def __init__(self) -> None:
            self.value, self.reads = '{"token": "one"}', 0

        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            self.reads += 1
            return {"SecretString": self.value}

    vault = SecretVault(Settings.from_env({"STEPLINE_STAGE": "dev"}))
    vault._client = client = FakeClient()
    assert vault.get("crm", "1") == {"token": "one"} and vault.get("crm", "1") == {"token": "one"}
    assert client.reads == 1  # cached
    client.value = '{"token": "two"}'
    assert vault.get("crm", "2") == {"token": "two"} and client.reads == 2  # a new version is read at once
