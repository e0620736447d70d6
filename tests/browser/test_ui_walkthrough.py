"""A newcomer's path through the UI, with nothing but the browser and a webhook receiver: a new
workflow with a gate and a webhook notification written in the editor, a run that waits at the
gate, the approval, the signed notifications (verified with the independent standardwebhooks
package and the secret the page showed once), a rotation of that secret; and a connection's
Test button against a scripted provider on loopback. Notices never cover the page's content."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import expect
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.fakes.providers import openai_completion
from tests.fakes.scripted import Answer, ScriptedServer


class Receiver:
    """A webhook receiver on 127.0.0.1 (a free port) that records what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of_type(self, kind: str, count: int = 1, timeout: float = 20) -> list[tuple[dict[str, str], bytes]]:
        """The deliveries of ``execution.<kind>`` (waiting up to ``timeout`` for ``count`` of them)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [(h, b) for h, b in self.received if json.loads(b)["type"] == f"execution.{kind}"]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _notice_covers_nothing(page: Any) -> None:
    """The notice sits above the content: its box ends before the page's main content starts."""
    notice = page.locator("#notice .notice")
    expect(notice).to_be_visible()
    box, main = notice.bounding_box(), page.locator("#main").bounding_box()
    assert box is not None and main is not None
    assert box["y"] + box["height"] <= main["y"] + 1, (box, main)


def test_from_the_editor_to_an_approved_gate_and_its_signed_notifications(
    page: Any, ui: Any, rest: Any, receiver: Receiver
) -> None:
    name = f"Refund check {uuid.uuid4().hex[:6]}"
    definition = {
        "name": name,
        "description": "Draft a refund, wait for a person, book it.",
        "trigger": {"type": "manual", "inputs": [{"name": "amount", "type": "number", "required": True}]},
        "steps": [
            {"id": "draft", "agent": "transform", "instructions": "{amount: input.amount}"},
            {"id": "approve", "agent": "transform", "instructions": "prev", "gate": {"type": "approval"}},
            {"id": "book", "agent": "transform", "instructions": "{booked: `true`, amount: prev.amount}"},
        ],
        "notify": [{"on": ["gate_waiting", "completed"], "webhook": receiver.url}],
    }
    ui.sign_in()
    page.get_by_role("link", name="New workflow").click()
    page.get_by_label("Definition (JSON)").fill(json.dumps(definition, indent=2))
    page.get_by_role("button", name="Create workflow").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    _notice_covers_nothing(page)
    # the notification secret came in the create answer: the page shows it once, with Copy
    shown = page.locator(".secret-once input")
    expect(shown).to_have_value(re.compile(r"^whsec_"))
    secret = shown.input_value()
    expect(page.locator(".notify-webhooks")).to_contain_text(receiver.url)
    ui.shot("60-walkthrough-created")
    page.reload()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.locator(".secret-once")).to_have_count(0)  # shown once only

    page.locator(".page-head").get_by_role("button", name="Run").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Amount").fill("120")
    dialog.get_by_role("button", name="Start").click()
    gate = page.locator('li.step[data-step-id="approve"]')
    expect(gate.locator(".badge")).to_have_text("Waiting for approval")
    waiting = receiver.of_type("gate_waiting")
    assert len(waiting) == 1
    headers, body = waiting[0]
    payload = Webhook(secret).verify(body, headers)
    assert payload["data"]["step"]["id"] == "approve" and payload["data"]["step"]["output"] == {"amount": 120}
    ui.shot("61-walkthrough-waiting")

    gate.get_by_role("button", name="Approve").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Comment").fill("Refund is within policy.")
    dialog.get_by_role("button", name="Approve").click()
    expect(page.locator("#execution-status .badge")).to_have_text("Completed")
    _notice_covers_nothing(page)
    ui.shot("62-walkthrough-approved")
    completed = receiver.of_type("completed")
    assert len(completed) == 1
    headers, body = completed[0]
    assert Webhook(secret).verify(body, headers)["data"]["status"] == "completed"

    # rotate the secret from the workflow's page: both sign for the grace period, then only the new one
    workflow_id = rest.workflow_id(name)
    page.goto(f"/#/workflows/{workflow_id}")
    page.get_by_role("button", name="Rotate notification secret").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Grace period (seconds)").fill("0")
    dialog.get_by_role("button", name="Rotate secret").click()
    expect(page.locator(".secret-once")).to_contain_text("New notification secret")
    rotated = page.locator(".secret-once input").input_value()
    assert rotated.startswith("whsec_") and rotated != secret
    _notice_covers_nothing(page)
    ui.shot("63-walkthrough-rotated")
    execution_id = rest.start(workflow_id, {"amount": 5})
    rest.wait_status(execution_id, {"waiting"})
    headers, body = receiver.of_type("gate_waiting", count=2)[-1]
    assert Webhook(rotated).verify(body, headers)["data"]["execution_id"] == execution_id
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


@pytest.fixture
def provider() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def test_a_connection_is_tested_from_its_page(page: Any, ui: Any, rest: Any, provider: ScriptedServer) -> None:
    name = f"models-{uuid.uuid4().hex[:6]}"
    rest.ok(
        "POST", "/connections", {"name": name, "kind": "openai", "base_url": provider.url + "/v1", "api_key": "sk-x"}
    )
    provider.script("/v1/chat/completions", Answer(200, openai_completion("OK", prompt_tokens=9, completion_tokens=1)))
    provider.script("/v1/chat/completions", Answer(401, {"error": {"message": "bad key sk-x", "type": "auth"}}))
    ui.sign_in()
    page.get_by_role("link", name="Connections").click()
    row = page.locator(f'tr[data-connection="{name}"]')
    row.get_by_role("button", name="Test").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Model").fill("gpt-4o-mini")
    dialog.get_by_role("button", name="Test connection").click()
    expect(row.locator("[data-test-result]")).to_have_text("Works")
    expect(row.locator(".test-result")).to_contain_text("9 input, 1 output tokens")
    assert provider.requests("/v1/chat/completions")[0].json["model"] == "gpt-4o-mini"
    _notice_covers_nothing(page)
    ui.shot("53-connection-test")
    row.get_by_role("button", name="Test").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Model").fill("gpt-4o-mini")
    dialog.get_by_role("button", name="Test connection").click()
    expect(row.locator("[data-test-result]")).to_have_text("Failed")
    assert "sk-x" not in row.inner_text()  # the provider quoted the key; the page never shows it
