"""The web UI in Chromium: serving and headers, sign-in, the Workflows page, and untrusted
text that must stay text."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
import uuid
from typing import Any

from playwright.sync_api import expect

PAYLOAD = '<script>window.__xss = "script"</script><img src=x onerror="window.__xss = \'img\'">'


def _get(url: str) -> tuple[int, dict[str, str], str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()


def test_page_and_assets_are_served_with_types_and_a_policy_against_inline_scripts(server: str) -> None:
    status, headers, body = _get(server + "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert '<base href="/">' in body and 'src="ui/app.js"' in body
    assert "<script>" not in body  # no inline script at all: the policy would block it
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"), ("favicon.svg", "image/svg+xml")):
        status, headers, _ = _get(f"{server}/ui/{name}")
        assert status == 200 and headers["content-type"].startswith(kind), (name, headers)
        assert headers["x-content-type-options"] == "nosniff"
    for bad in ("nope.js", "..%2Fapi%2Fui.py", ".hidden.js", "ui.py"):
        try:
            _get(f"{server}/ui/{bad}")
        except urllib.error.HTTPError as error:
            assert error.code == 404, bad
        else:
            raise AssertionError(f"/ui/{bad} was served")


def test_wrong_key_is_told_clearly_then_the_right_key_shows_the_workflows(page: Any, ui: Any) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in to Stepline")).to_be_visible()
    page.get_by_label("API key").fill("not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_contain_text("This API key was not accepted")
    assert page.evaluate("sessionStorage.length") == 0
    ui.shot("01-sign-in-wrong-key")

    ui.sign_in()
    expect(page.locator("#who")).to_contain_text("admin")
    invoice = page.locator("tr", has_text="Invoice approval")
    nightly = page.locator("tr", has_text="Nightly report")
    expect(invoice.locator(".trigger")).to_have_text("manual")
    expect(invoice.get_by_text("Enabled")).to_be_visible()
    expect(invoice.get_by_role("button", name="Run")).to_be_visible()
    expect(nightly.locator(".trigger")).to_have_text("schedule")
    expect(nightly).to_contain_text("0 2 * * * (Europe/Paris)")
    expect(nightly.get_by_role("button", name="Run")).to_have_count(0)
    expect(invoice.locator(".active-count")).to_have_text(re.compile(r"^\d+$"))
    ui.shot("02-workflows")

    # the key is kept for the tab: a reload stays signed in; signing out forgets it
    page.reload()
    expect(page.get_by_role("heading", name="Workflows")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Stepline")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_untrusted_text_is_rendered_as_text_never_as_html(page: Any, ui: Any, rest: Any) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    name = f"Evil {uuid.uuid4().hex[:4]} <img src=x onerror=\"window.__xss='name'\">"
    workflow_id = rest.create_workflow(
        {
            "name": name,
            "description": "<script>window.__xss='description'</script><b>not bold</b>",
            "trigger": {"type": "manual", "inputs": [{"name": "payload", "type": "string", "required": True}]},
            "steps": [
                {
                    "id": "echo",
                    "name": "Echo <i>the</i> payload",
                    "agent": "transform",
                    "instructions": "{text: input.payload}",
                },
                {
                    "id": "gate",
                    "name": "Look at it",
                    "agent": "transform",
                    "instructions": "prev",
                    "gate": {"type": "approval"},
                },
                {
                    "id": "boom",
                    "name": "Fail with it",
                    "agent": "python",
                    "config": {"callable": "chalicelib.samples.callables:fails_permanently", "message": PAYLOAD},
                },
            ],
        }
    )
    execution_id = rest.start(workflow_id, {"payload": PAYLOAD})
    rest.wait_status(execution_id, {"waiting"})
    rest.ok("POST", f"/executions/{execution_id}/steps/gate/approve", {"comment": PAYLOAD})
    rest.wait_status(execution_id, {"failed"})

    ui.sign_in()
    row = page.locator("tr", has_text="Evil")
    expect(row.locator(".wf-name")).to_have_text(name)
    expect(row.locator(".wf-desc")).to_have_text("<script>window.__xss='description'</script><b>not bold</b>")
    page.goto(f"/#/executions/{execution_id}")
    boom = page.locator('li.step[data-step-id="boom"]')
    expect(boom.locator(".badge")).to_have_text("Failed")
    expect(boom.locator(".error-message")).to_have_text(PAYLOAD)
    expect(page.locator('li.step[data-step-id="echo"] pre.json')).to_contain_text('"text": "<script>window.__xss')
    expect(page.locator('li.step[data-step-id="gate"] .comment-text')).to_have_text(PAYLOAD)
    expect(page.locator('li.step[data-step-id="echo"] .step-name')).to_have_text("Echo <i>the</i> payload")
    ui.shot("04-untrusted-text")

    assert page.evaluate("window.__xss") is None
    assert page.locator("main img, main script, main b, main i").count() == 0
    # and the policy itself: an inline script added to the page does not run
    page.evaluate("""() => { const s = document.createElement('script');
                          s.textContent = 'window.__inline = 1'; document.body.appendChild(s); }""")
    assert page.evaluate("window.__inline") is None
    assert dialogs == []
