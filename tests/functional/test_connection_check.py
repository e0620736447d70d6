"""POST /connections/{name}/test: a connection is tried as an agent would use it, against
scripted providers on loopback, and the answer never carries a secret."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.providers import openai_completion, openai_error
from tests.fakes.scripted import Answer, ScriptedServer
from tests.functional.operator_kit import Keys

KEY = "sk-test-connection-check-0123456789"


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("STEPLINE_OUTBOUND_ALLOW_PRIVATE", "1")
    with ScriptedServer() as server:
        yield server


def _openai(api: Any, provider: ScriptedServer) -> None:
    status, body = api.post(
        "/connections", {"name": "llm", "kind": "openai", "base_url": provider.url + "/v1", "api_key": KEY}
    )
    assert status == 201, body


def test_a_model_connection_is_pinged_through_its_provider_module(api: Any, provider: ScriptedServer) -> None:
    _openai(api, provider)
    provider.script("/v1/chat/completions", Answer(200, openai_completion("OK", prompt_tokens=12, completion_tokens=1)))
    status, answer = api.post("/connections/llm/test", {"model": "gpt-4o-mini"})
    assert status == 200, answer
    assert answer["ok"] is True and answer["checked"] is True and answer["kind"] == "openai"
    assert "12 input, 1 output tokens" in answer["detail"]
    sent = provider.requests("/v1/chat/completions")
    assert len(sent) == 1 and sent[0].json["model"] == "gpt-4o-mini" and sent[0].json["max_tokens"] == 1
    assert sent[0].headers["authorization"] == f"Bearer {KEY}"  # the stored key went to the provider...


def test_a_refused_key_is_ok_false_with_the_reason_and_never_the_key(api: Any, provider: ScriptedServer) -> None:
    _openai(api, provider)
    provider.script(
        "/v1/chat/completions", openai_error(401, f"Incorrect API key provided: {KEY}", "invalid_request_error")
    )
    status, answer = api.post("/connections/llm/test", {"model": "gpt-4o-mini"})
    assert status == 200 and answer["ok"] is False, answer
    assert "401" in answer["detail"] or "key" in answer["detail"].lower()
    assert KEY not in str(answer)  # ...but never comes back in the answer, even when the provider quotes it


def test_an_oauth2_connection_fetches_a_fresh_token(api: Any, provider: ScriptedServer) -> None:
    provider.script("/token", Answer(200, {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600}))
    provider.script("/me", Answer(200, {"id": 1}))
    status, body = api.post(
        "/connections",
        {
            "name": "crm",
            "kind": "oauth2",
            "token_url": provider.url + "/token",
            "client_id": "stepline",
            "client_secret": "cs-secret-value",
        },
    )
    assert status == 201, body
    status, answer = api.post("/connections/crm/test", {"url": provider.url + "/me"})
    assert status == 200 and answer["ok"] is True, answer
    assert provider.requests("/token")[0].form["grant_type"] == "client_credentials"
    assert provider.requests("/me")[0].headers["authorization"] == "Bearer at-1"
    assert "cs-secret-value" not in str(answer)


def test_a_bearer_connection_without_a_url_says_nothing_was_tried(api: Any) -> None:
    assert api.post("/connections", {"name": "hook", "kind": "bearer", "token": "tok-abcdef"})[0] == 201
    status, answer = api.post("/connections/hook/test", {})
    assert status == 200 and answer == {
        "ok": False,
        "checked": False,
        "kind": "bearer",
        "detail": "the credentials are stored; give a url of the service to try them against it",
    }


def test_a_blocked_address_is_refused_by_the_outbound_guard(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEPLINE_OUTBOUND_ALLOW_PRIVATE", raising=False)
    assert api.post("/connections", {"name": "hook", "kind": "bearer", "token": "tok-abcdef"})[0] == 201
    status, answer = api.post("/connections/hook/test", {"url": "http://169.254.169.254/latest/meta-data/"})
    assert status == 200 and answer["ok"] is False, answer


def test_the_test_is_admin_only_and_its_options_are_checked(api: Any, provider: ScriptedServer) -> None:
    _openai(api, provider)
    keys = Keys(api)
    assert api.post("/connections/llm/test", {"model": "m"}, key=keys.operator)[0] == 403
    assert api.post("/connections/nope/test", {"model": "m"})[0] == 404
    status, answer = api.post("/connections/llm/test", {})
    assert status == 400 and answer["errors"][0]["field"] == "model"
    status, answer = api.post("/connections/llm/test", {"model": "m", "extra": 1})
    assert status == 400 and answer["errors"][0]["field"] == "extra"
    assert provider.requests() == []  # nothing was sent for a refused request
