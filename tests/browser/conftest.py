"""Browser fixtures: the real app served as ``make run`` serves it, and Debian's Chromium.

The server is ``python -m chalicelib.local.server`` in a subprocess (moto in server mode, the
Chalice local dev server, the SQS worker loop and the ticker), one per pytest-xdist worker:
a process of its own keeps its environment and engine apart from the in-process ``aws``
fixture of the other tests. Playwright drives ``/usr/bin/chromium`` (``make browser``
installs it with apt); Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
ADMIN_KEY = "browser-test-admin-key"
#: Playwright's wait for one expectation (steps run in about a second each on the local worker).
WAIT_MS = 15_000


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Api:
    """Set-up calls over HTTP with the admin key (what the UI does is tested through the UI)."""

    def __init__(self, base_url: str, key: str = ADMIN_KEY) -> None:
        self.base_url = base_url
        self.key = key

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {key or self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw or b"null")
            except ValueError:
                return error.code, raw.decode("utf-8", "replace")

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.call(method, path, body)
        assert 200 <= status < 300, (method, path, status, answer)
        return answer

    def create_workflow(self, definition: dict[str, Any]) -> str:
        return self.ok("POST", "/workflows", definition)["workflow_id"]

    def start(self, workflow_id: str, inputs: dict[str, Any] | None = None) -> str:
        return self.ok("POST", f"/workflows/{workflow_id}/executions", {"inputs": inputs or {}})["execution_id"]

    def workflow_id(self, name: str) -> str:
        for item in self.ok("GET", "/workflows")["items"]:
            if item["name"] == name:
                return item["workflow_id"]
        raise AssertionError(f"no workflow named {name!r}")

    def wait_status(self, execution_id: str, statuses: set[str], timeout: float = 20) -> dict[str, Any]:
        """Wait for the local worker to move an execution on (set-up only; the UI tests wait in the page)."""
        deadline = time.monotonic() + timeout
        while True:
            execution = self.ok("GET", f"/executions/{execution_id}")
            if execution["status"] in statuses or time.monotonic() > deadline:
                assert execution["status"] in statuses, execution
                return execution
            time.sleep(0.2)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``make run`` on a free port; yields its base URL once the samples are seeded."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PORT=str(port), HOST="127.0.0.1", STEPLINE_ADMIN_KEY=ADMIN_KEY, PYTHONUNBUFFERED="1")
    env.pop("STEPLINE_MOTO_PORT", None)
    logs = tmp_path_factory.mktemp("browser-server") / "server.log"
    with logs.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "chalicelib.local.server"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while "Press Ctrl-C to stop." not in logs.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the local server did not start:\n{logs.read_text(errors='replace')}")
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)  # the runner stops its threads and moto, then exits
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def rest(server: str) -> Api:
    return Api(server)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    """A fresh browser context (empty session storage) on the app; fails the test on a JS error."""
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


class Ui:
    """What every browser test does: sign in, and keep screenshots."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def sign_in(self, key: str = ADMIN_KEY) -> None:
        self.page.goto("/")
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.locator("#signout").wait_for(state="visible")
        self.page.get_by_role("heading", name="Workflows").wait_for()

    def shot(self, name: str) -> Path:
        """A full-page screenshot in test-artifacts/screenshots/, for a person to look at."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def ui(page: Any) -> Ui:
    return Ui(page)


@pytest.fixture(scope="session", autouse=True)
def _expect_timeout() -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
