"""The web UI: static HTML, CSS and JavaScript modules served by the app itself.

No bundler and no CDN: ``chalicelib/ui/`` ships inside the Lambda package (Chalice packages
``chalicelib``), and the browser loads ES modules from ``/ui/<name>``. Every answer carries a
Content-Security-Policy that allows scripts from this origin only (no inline scripts, no
``eval``), so untrusted text that slipped into the DOM as markup still could not run.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from chalice import Blueprint, Response

bp = Blueprint(__name__)

UI_DIR = Path(__file__).resolve().parents[1] / "ui"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: Plain file names only: no directories, no dot files, no traversal.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(html|js|css|svg)$")
#: What the <base href> may contain (it comes from the request path).
_SAFE_BASE = re.compile(r"^/[A-Za-z0-9/_.~-]*$")

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@bp.route("/", methods=["GET"], cors=False)
def index() -> Response:
    page = _read("index.html")
    if page is None:
        return _not_found("index.html")
    base = _base_href(bp.current_request.context or {})
    body = page.replace("{{BASE_HREF}}", html.escape(base, quote=True))
    return _response(body, ".html", cache="no-store")


@bp.route("/ui/{name}", methods=["GET"], cors=False)
def asset(name: str) -> Response:
    text = _read(name) if _NAME.match(name or "") else None
    if text is None:
        return _not_found(name)
    return _response(text, Path(name).suffix, cache="no-cache")


def _read(name: str) -> str | None:
    path = UI_DIR / name
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8")


def _response(body: str, suffix: str, cache: str) -> Response:
    headers: dict[str, str | list[str]] = {
        "Content-Type": CONTENT_TYPES[suffix],
        "Cache-Control": cache,
        **SECURITY_HEADERS,
    }
    return Response(body=body, status_code=200, headers=headers)


def _not_found(name: str) -> Response:
    return Response(
        body={"Code": "NotFoundError", "Message": f"no UI file named {name!r}"},
        status_code=404,
        headers={"X-Content-Type-Options": "nosniff"},
    )


def _base_href(context: dict[str, Any]) -> str:
    """The URL path the app is mounted under, ending in ``/``.

    Behind API Gateway the page is ``/<stage>/`` (``path`` carries the stage, ``resourcePath``
    does not); locally it is ``/``. Relative links and API calls resolve against this base,
    so the page also works when opened as ``/<stage>`` without the trailing slash.
    """
    path = str(context.get("path") or "/").split("?", 1)[0]
    resource = str(context.get("resourcePath") or "/")
    if resource != "/" and path.endswith(resource):
        path = path[: -len(resource)]
    base = path.rstrip("/") + "/"
    return base if _SAFE_BASE.match(base) else "/"
