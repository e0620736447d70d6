"""The one door for the calls agents make to model providers, LLM tools and OAuth servers.

``open_url`` sends a ``urllib.request.Request`` through the SSRF guard (``chalicelib.outbound``:
redirects not followed, the resolved address checked at connect time). ``call_json`` adds what
every JSON caller needs: a body, a size cap, and errors that are data (``HttpFailure``), not
exceptions from three libraries.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib import outbound

__all__ = ["HttpFailure", "HttpReply", "call_json", "open_url"]

MAX_REPLY_BYTES = 5 * 1024 * 1024


def open_url(request: urllib.request.Request, timeout: float) -> Any:
    """Send ``request``; the response (a context manager) or ``urllib.error`` exceptions."""
    return outbound.open_url(request, timeout)


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON, or the text when it is not JSON
    text: str = ""


@dataclass
class HttpFailure(Exception):
    """No usable answer: ``status`` is None for network errors and time-outs."""

    status: int | None
    reason: str
    headers: Mapping[str, str] = field(default_factory=dict)
    text: str = ""
    timed_out: bool = False
    #: the SSRF guard refused the address (it will not change between attempts)
    blocked: bool = False

    def __str__(self) -> str:
        return self.reason

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None


def call_json(
    method: str,
    url: str,
    *,
    body: Any = None,
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float,
) -> HttpReply:
    """Send a JSON (or form) request; a 2xx comes back as ``HttpReply``, anything else raises ``HttpFailure``."""
    data = None
    all_headers = {"Accept": "application/json", "User-Agent": "Stepline/1"}
    if body is not None:
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        all_headers["Content-Type"] = "application/json"
    elif form is not None:
        from urllib.parse import urlencode

        data = urlencode(dict(form)).encode("ascii")
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with open_url(request, max(timeout, 0.01)) as response:
            raw = response.read(MAX_REPLY_BYTES + 1)
            status, reply_headers = response.status, dict(response.headers.items())
    except outbound.OutboundBlocked as error:
        raise HttpFailure(None, f"address not allowed: {error}", blocked=True) from None
    except urllib.error.HTTPError as error:
        with error:
            text = _read_text(error)
        raise HttpFailure(
            error.code, f"HTTP {error.code}", dict(error.headers.items()) if error.headers else {}, text
        ) from None
    except urllib.error.URLError as error:
        raise _network(error.reason) from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise _network(error) from None
    if len(raw) > MAX_REPLY_BYTES:
        raise HttpFailure(status, f"answer larger than {MAX_REPLY_BYTES} bytes")
    text = raw.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = text
    return HttpReply(status, reply_headers, parsed, text)


def _network(reason: Any) -> HttpFailure:
    if isinstance(reason, (TimeoutError, socket.timeout)) or "timed out" in str(reason):
        return HttpFailure(None, "timed out", timed_out=True)
    if isinstance(reason, socket.gaierror):
        return HttpFailure(None, "host could not be resolved")
    if isinstance(reason, ssl.SSLCertVerificationError):
        return HttpFailure(None, f"TLS certificate rejected ({reason.verify_message})")
    if isinstance(reason, ConnectionRefusedError):
        return HttpFailure(None, "connection refused")
    return HttpFailure(None, str(reason) or type(reason).__name__)


def _read_text(response: Any) -> str:
    try:
        return (response.read(64 * 1024) or b"").decode("utf-8", errors="replace")
    except (OSError, http.client.HTTPException):
        return ""
