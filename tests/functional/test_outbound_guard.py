"""The probe's SSRF repros through the real handlers: a placeholder cannot steer the host or
port, and a deployed stage's http agent reaches no loopback or metadata address."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.outbound import ALLOW_ENV, ALLOW_PRIVATE_ENV


class _Listener(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self) -> None:
        _Listener.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def listener_port() -> Iterator[int]:
    _Listener.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _flow(url: str) -> dict[str, Any]:
    return {
        "name": "Outbound",
        "trigger": {"type": "manual", "inputs": [{"name": "h", "type": "string"}]},
        "steps": [{"id": "call", "agent": "http", "config": {"url": url, "method": "GET"}}],
    }


@pytest.mark.parametrize(
    "url", ["http://127.0.0.{{input.h}}/", "http://a{{input.h}}/", "http://example.com:{{input.h}}/x", "{{input.h}}"]
)
def test_a_placeholder_before_the_path_is_refused_naming_the_field(api: Any, url: str) -> None:
    status, body = api.post("/workflows", _flow(url))
    assert status == 400, body
    assert "steps[0].config.url" in str(body)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0x7f000001", "2130706433"])
def test_a_deployed_stage_does_not_reach_loopback(
    api: Any, worker: Any, listener_port: int, host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "0")
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    wf = api.create_workflow(_flow(f"http://{host}:{listener_port}/internal"))
    execution_id = api.start(wf, {"h": "1"})["execution_id"]
    worker.drain()
    execution = api.execution(execution_id)
    assert _Listener.hits == []
    assert execution["status"] == "failed"
    error = execution["steps"][0]["error"]
    assert error["kind"] == "integration" and error["retryable"] is False
    assert "refused" in error["message"] and "loopback" in error["message"]


def test_the_metadata_address_is_refused_in_local_mode_too(api: Any, worker: Any) -> None:
    # The suite runs with STEPLINE_OUTBOUND_ALLOW_PRIVATE=1, as `make run` does.
    wf = api.create_workflow(_flow("http://169.254.169.254/latest/meta-data/"))
    execution_id = api.start(wf, {"h": "1"})["execution_id"]
    worker.drain()
    error = api.execution(execution_id)["steps"][0]["error"]
    assert "169.254.169.254" in error["message"] and "link-local" in error["message"]


def test_an_allow_listed_address_is_reached(
    api: Any, worker: Any, listener_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "0")
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.1/32")
    wf = api.create_workflow(_flow(f"http://127.0.0.1:{listener_port}/allowed"))
    execution_id = api.start(wf, {"h": "1"})["execution_id"]
    worker.drain()
    assert api.execution(execution_id)["status"] == "completed"
    assert _Listener.hits == ["/allowed"]
