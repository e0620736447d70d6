"""Every page of the web UI at a desktop width (1280 px) and a phone width (390 px): a
screenshot of each in test-artifacts/screenshots/pages/ for people to look at, and at the
phone width no page is wider than the screen (nothing to scroll sideways to)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_KEY, SCREENSHOTS, WAIT_MS, Ui

SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def ids(rest: Any) -> dict[str, str]:
    """One execution waiting at a gate and one failed, to show both pages."""
    invoice = rest.workflow_id("Invoice approval")
    waiting = rest.start(invoice, {"amount": 12})
    failing = rest.create_workflow(
        {
            "name": "Screens: fails",
            "trigger": {"type": "manual", "inputs": []},
            "steps": [
                {
                    "id": "flaky",
                    "name": "Call the flaky system",
                    "agent": "python",
                    "config": {"callable": "chalicelib.samples.callables:fails_permanently", "message": "system down"},
                }
            ],
        }
    )
    failed = rest.start(failing)
    rest.wait_status(waiting, {"waiting"})
    rest.wait_status(failed, {"failed"})
    return {"invoice": invoice, "waiting": waiting, "failed": failed}


PAGES = [  # (name, hash, what shows that the page is drawn)
    ("workflows", "#/workflows", "h1:text('Workflows')"),
    ("workflow", "#/workflows/{invoice}", ".step-def"),
    ("workflow-new", "#/workflows/new", "#definition"),
    ("workflow-edit", "#/workflows/{invoice}/edit", "#definition"),
    ("executions", "#/executions", "td.now .now-error"),
    ("execution-waiting", "#/executions/{waiting}", "li.step"),
    ("execution-failed", "#/executions/{failed}", ".waiting-operator"),
    ("sources", "#/sources", "h1:text('Event sources')"),
    ("keys", "#/keys", "h1:text('API keys')"),
    ("connections", "#/connections", "h1:text('Connections')"),
]


@pytest.mark.parametrize("size", SIZES)
def test_every_page_at_desktop_and_phone_width(browser: Any, server: str, ids: dict[str, str], size: str) -> None:
    context = browser.new_context(base_url=server, viewport=SIZES[size])
    context.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        folder = SCREENSHOTS / "pages"
        folder.mkdir(parents=True, exist_ok=True)
        page.goto("/")
        page.get_by_label("API key").wait_for()
        page.screenshot(path=str(folder / f"signin-{size}.png"), full_page=True)
        Ui(page).sign_in(ADMIN_KEY)
        too_wide = []
        for name, address, ready in PAGES:
            page.goto("/" + address.format(**ids))
            expect(page.locator(ready).first).to_be_visible()
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(folder / f"{name}-{size}.png"), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > SIZES[size]["width"]:
                too_wide.append((name, width))
        # the Run dialog too
        page.goto("/#/workflows")
        page.locator("tr", has_text="Invoice approval").get_by_role("button", name="Run").click()
        expect(page.get_by_role("dialog")).to_be_visible()
        page.screenshot(path=str(folder / f"run-dialog-{size}.png"), full_page=True)
        assert not too_wide, f"pages wider than the {size} screen: {too_wide}"
    finally:
        context.close()
    assert not errors, errors
