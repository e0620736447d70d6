"""The UI blueprint without a browser: where the page is mounted, and what it refuses to serve."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.api.ui import UI_DIR, _base_href


@pytest.mark.parametrize(
    "context, base",
    [
        ({"path": "/", "resourcePath": "/"}, "/"),  # make run
        ({"path": "/api/", "resourcePath": "/"}, "/api/"),  # API Gateway stage "api"
        ({"path": "/api", "resourcePath": "/"}, "/api/"),  # ... opened without the slash
        ({"path": "/v1/stepline/", "resourcePath": "/"}, "/v1/stepline/"),  # a custom domain's base path
        ({}, "/"),
        ({"path": '/x"><script>', "resourcePath": "/"}, "/"),  # never echoes markup
    ],
)
def test_base_href_follows_the_mount_point(context: dict[str, Any], base: str) -> None:
    assert _base_href(context) == base


def test_served_files_reference_nothing_outside_the_app() -> None:
    names = sorted(p.name for p in UI_DIR.iterdir())
    assert {"index.html", "app.js", "style.css"} <= set(names)
    for path in UI_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text, path.name
        assert ".innerHTML" not in text and "insertAdjacentHTML" not in text and "eval(" not in text, path.name


def test_ui_files_are_served_with_their_types(client: Any) -> None:
    page = client.http.get("/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    script = client.http.get("/ui/app.js")
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("text/javascript")
    assert client.http.get("/ui/missing.js").status_code == 404
    assert client.http.get("/ui/index.py").status_code == 404
