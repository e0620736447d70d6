from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest

from chalicelib.agents import AgentContext, AgentError, IntegrationError, get_agent

SLOW_SECONDS = 0.3


class FakeApi(BaseHTTPRequestHandler):
    """A tiny real HTTP server: /echo reflects the request, /status/<n> fails, /slow sleeps."""

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output quiet
        pass

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        if path == "/slow":
            time.sleep(SLOW_SECONDS)
            self.reply(200, {"late": True})
        elif path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            text = {401: "token expired", 502: "upstream down " + "x" * 500}.get(status, "nope")
            extra = {"Location": "https://elsewhere.example/new?token=secret"} if status == 302 else {}
            self.reply(status, text.encode(), "text/plain", extra)
        elif path == "/text":
            self.reply(200, b"plain words", "text/plain; charset=utf-8")
        else:
            self.reply(
                200,
                {
                    "method": self.command,
                    "path": unquote(self.path),
                    "raw_path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": json.loads(raw) if raw else None,
                },
            )

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def reply(
        self, status: int, body: Any, content_type: str = "application/json", extra: dict[str, str] | None = None
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxy_for_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


DATA = {"input": {"order_id": "A 1/2", "token": "t0k"}, "prev": {"total": 12}, "steps": {}}


def make_ctx(config: dict[str, Any], instructions: str | None = None, timeout_seconds: float = 5) -> AgentContext:
    return AgentContext(
        execution_id="ex-1",
        step_id="post",
        attempt=2,
        instructions=instructions,
        config=config,
        data=DATA,
        timeout_seconds=timeout_seconds,
    )


def run(config: dict[str, Any], instructions: str | None = None, timeout_seconds: float = 5) -> Any:
    return get_agent("http").run(make_ctx(config, instructions, timeout_seconds))


def test_get_returns_status_and_parsed_json_body(server: str) -> None:
    output = run({"url": f"{server}/echo", "method": "GET"})

    assert output["status"] == 200
    assert output["body"]["method"] == "GET"
    assert output["body"]["body"] is None
    assert output["headers"]["content-type"] == "application/json"


def test_post_sends_the_instructions_result_as_json_body(server: str) -> None:
    output = run({"url": f"{server}/echo"}, instructions="{order: input.order_id, total: prev.total}")

    sent = output["body"]
    assert sent["method"] == "POST"
    assert sent["body"] == {"order": "A 1/2", "total": 12}
    assert sent["headers"]["content-type"] == "application/json"
    assert sent["headers"]["x-stepline-execution"] == "ex-1"
    assert sent["headers"]["x-stepline-attempt"] == "2"


def test_the_planned_call_is_the_one_the_run_enters_and_sends(server: str) -> None:
    config = {"url": f"{server}/echo", "headers": {"X-Order": "{{ input.order_id }}"}}
    plan = get_agent("http").plan(make_ctx(config, "{order: input.order_id}"))
    ctx = make_ctx(config, "{order: input.order_id}")
    sent = get_agent("http").run(ctx)["body"]
    [entry] = ctx.ledger.entries
    assert plan is not None and plan.target == f"POST {server}/echo" and plan.key == "ex-1:post:2:1"
    assert (entry["target"], entry["idempotency_key"], entry["fingerprint"]) == (
        plan.target,
        plan.key,
        plan.fingerprint,
    )
    assert sent["headers"]["idempotency-key"] == plan.key
    assert get_agent("http").plan(make_ctx({"url": f"{server}/echo", "method": "GET"})) is None  # changes nothing


def test_post_without_instructions_sends_prev_and_delete_sends_nothing(server: str) -> None:
    posted = run({"url": f"{server}/echo", "method": "PUT"})["body"]
    deleted = run({"url": f"{server}/echo", "method": "DELETE"})["body"]

    assert posted["body"] == {"total": 12}
    assert deleted["method"] == "DELETE" and deleted["body"] is None


def test_placeholders_fill_the_url_quoted_and_the_headers(server: str) -> None:
    output = run(
        {
            "url": server + "/echo/{{ input.order_id }}?total={{prev.total}}",
            "method": "GET",
            "headers": {"Authorization": "Bearer {{ input.token }}"},
        }
    )

    sent = output["body"]
    assert sent["raw_path"] == "/echo/A%201%2F2?total=12"
    assert sent["headers"]["authorization"] == "Bearer t0k"


def test_text_responses_are_returned_as_text(server: str) -> None:
    assert run({"url": f"{server}/text", "method": "GET"})["body"] == "plain words"


def test_401_says_credentials_were_rejected_and_is_not_retryable(server: str) -> None:
    with pytest.raises(IntegrationError) as caught:
        run({"url": f"{server}/status/401"})

    error = caught.value
    assert error.message == (
        f"POST {server}/status/401 returned HTTP 401: credentials rejected or expired "
        "(check the integration's token): token expired"
    )
    assert error.retryable is False
    assert error.status == 401
    assert error.to_dict()["kind"] == "integration"


def test_502_is_retryable_with_a_short_body_excerpt(server: str) -> None:
    with pytest.raises(IntegrationError) as caught:
        run({"url": f"{server}/status/502?key=secret"})

    error = caught.value
    assert error.retryable is True and error.status == 502
    assert error.message.startswith(f"POST {server}/status/502?… returned HTTP 502: upstream down xxx")
    assert "secret" not in error.message
    assert len(error.details["body_excerpt"]) <= 200


@pytest.mark.parametrize("status, retryable", [(404, False), (400, False), (408, True), (429, True), (503, True)])
def test_retryability_follows_the_status(server: str, status: int, retryable: bool) -> None:
    with pytest.raises(IntegrationError) as caught:
        run({"url": f"{server}/status/{status}", "method": "GET"})

    assert caught.value.retryable is retryable
    assert f"returned HTTP {status}: nope" in caught.value.message


def test_redirects_are_not_followed(server: str) -> None:
    with pytest.raises(IntegrationError) as caught:
        run({"url": f"{server}/status/302"})

    assert "redirects are not followed (Location: https://elsewhere.example/new?…)" in caught.value.message
    assert caught.value.retryable is False


def test_connection_refused_is_a_retryable_integration_error(closed_port: int) -> None:
    with pytest.raises(IntegrationError) as caught:
        run({"url": f"http://127.0.0.1:{closed_port}/x"})

    assert caught.value.message == f"could not reach http://127.0.0.1:{closed_port}/x: connection refused"
    assert caught.value.retryable is True
    assert caught.value.status is None


def test_slow_server_times_out_with_a_readable_retryable_error(server: str) -> None:
    started = time.monotonic()
    with pytest.raises(IntegrationError) as caught:
        run({"url": f"{server}/slow", "timeout_seconds": 0.1})

    assert time.monotonic() - started < SLOW_SECONDS
    assert caught.value.message == f"POST {server}/slow timed out after 0.1s"
    assert caught.value.retryable is True


def test_the_step_limit_caps_the_configured_timeout(server: str) -> None:
    with pytest.raises(IntegrationError) as caught:
        run({"url": f"{server}/slow", "timeout_seconds": 30}, timeout_seconds=0.1)

    assert caught.value.message.endswith("timed out after 0.1s")


def test_a_placeholder_that_evaluates_to_null_fails_without_calling(server: str) -> None:
    with pytest.raises(AgentError) as caught:
        run({"url": server + "/echo/{{ input.missing }}"})

    assert "evaluated to null" in caught.value.message
    assert caught.value.retryable is False


def test_validation_accepts_a_complete_config() -> None:
    step = {
        "agent": "http",
        "instructions": "{a: input.a}",
        "config": {
            "url": "https://api.example/{{ input.id }}",
            "method": "patch",
            "headers": {"Authorization": "Bearer {{ input.token }}"},
            "timeout_seconds": 3,
        },
    }

    assert get_agent("http").validate(step, "steps[1]") == []


@pytest.mark.parametrize(
    "step, field, expected",
    [
        ({}, "steps[1].config", "required"),
        ({"config": {}}, "steps[1].config.url", "required"),
        ({"config": {"url": "file:///etc/passwd"}}, "steps[1].config.url", "http:// or https://"),
        ({"config": {"url": "{{ input.base }}/x"}}, "steps[1].config.url", "http:// or https://"),
        ({"config": {"url": "https://x/{{ input.[ }}"}}, "steps[1].config.url", "invalid JMESPath"),
        ({"config": {"url": "https://x/{{ input.a"}}, "steps[1].config.url", "unbalanced"),
        ({"config": {"url": "https://x", "method": "TRACE"}}, "steps[1].config.method", "GET, POST"),
        ({"config": {"url": "https://x", "headers": {"X-A": 1}}}, "steps[1].config.headers.X-A", "string"),
        ({"config": {"url": "https://x", "headers": ["a"]}}, "steps[1].config.headers", "object"),
        ({"config": {"url": "https://x", "timeout_seconds": 0}}, "steps[1].config.timeout_seconds", "positive"),
        ({"config": {"url": "https://x"}, "instructions": "a.["}, "steps[1].instructions", "invalid JMESPath"),
    ],
)
def test_validation_names_the_bad_field(step: dict[str, Any], field: str, expected: str) -> None:
    errors = get_agent("http").validate(step, "steps[1]")

    assert [e.field for e in errors] == [field], errors
    assert expected in errors[0].message
