"""A small client of the Stepline REST API (../shared/API.md): one method per operation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import click
import requests

ACTIONS = ("approve", "reject", "review", "retry", "skip", "force-advance")


class ApiError(click.ClickException):
    """A non-2xx answer, shown as ``Error: 409 ConflictError: ...`` and exit status 1."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        self.code = str(self.body.get("Code") or self.body.get("code") or "")
        message = self.body.get("Message") or self.body.get("message") or (body if isinstance(body, str) else "")
        self.errors: list[dict[str, str]] = [e for e in self.body.get("errors") or [] if isinstance(e, dict)]
        lines = [f"{error.get('field')}: {error.get('message')}" for error in self.errors]
        if lines and all(line in str(message) for line in lines):
            message = ""  # the message only repeats the field errors listed below: say each once
        text = f"{status} {self.code}: {message}".replace(" : ", ": ").strip().rstrip(":")
        for line in lines:
            text += f"\n  {line}"
        super().__init__(text)


class Client:
    """JSON over HTTP with ``Authorization: Bearer <key>``; non-2xx answers raise ``ApiError``."""

    def __init__(
        self, url: str, key: str | None, timeout: float = 30.0, session: requests.Session | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.timeout = timeout
        self.session = session or requests.Session()
        self._vocabulary: dict[str, Any] | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        sent = {"Accept": "application/json", **(headers or {})}
        if self.key:
            sent["Authorization"] = f"Bearer {self.key}"
        data = None
        if body is not None:
            sent["Content-Type"] = "application/json"
            data = json.dumps(body)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self.session.request(
                method, self.url + path, params=query, data=data, headers=sent, timeout=self.timeout
            )
        except requests.RequestException as error:
            raise click.ClickException(
                f"cannot reach the Stepline API at {self.url} ({error.__class__.__name__}); check STEPLINE_URL"
            ) from error
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = response.text
        if response.status_code >= 400:
            raise ApiError(response.status_code, payload)
        return payload

    def vocabulary(self) -> dict[str, Any]:
        """The server's words (``GET /vocabulary.json``): statuses, trigger kinds, roles... read
        once per run, so the CLI never keeps a copy of lists the server defines."""
        if self._vocabulary is None:
            self._vocabulary = self.request("GET", "/vocabulary.json")
        return self._vocabulary

    # --- workflows ---------------------------------------------------------------------------

    def workflows(self) -> list[dict[str, Any]]:
        return self.request("GET", "/workflows")["items"]

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        return self.request("GET", f"/workflows/{_seg(workflow_id)}")

    def start(self, workflow_id: str, inputs: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.request(
            "POST", f"/workflows/{_seg(workflow_id)}/executions", body={"inputs": inputs}, headers=headers
        )

    # --- executions --------------------------------------------------------------------------

    def executions(self, workflow_id: str | None, filters: dict[str, Any]) -> dict[str, Any]:
        path = f"/workflows/{_seg(workflow_id)}/executions" if workflow_id else "/executions"
        return self.request("GET", path, params=filters)

    def execution(self, execution_id: str) -> dict[str, Any]:
        return self.request("GET", f"/executions/{_seg(execution_id)}")

    def history(self, execution_id: str) -> Iterator[dict[str, Any]]:
        """Every audit event in order, following ``next_token`` when the server pages."""
        token = None
        while True:
            page = self.request("GET", f"/executions/{_seg(execution_id)}/history", params={"next_token": token})
            yield from page["items"]
            token = page.get("next_token")
            if not token:
                return

    def act(
        self, execution_id: str, action: str, step_id: str | None = None, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """``POST`` an operator action; ``step_id=None`` is the execution-level ``cancel``."""
        path = f"/executions/{_seg(execution_id)}"
        path += f"/steps/{_seg(step_id)}/{action}" if step_id is not None else f"/{action}"
        return self.request("POST", path, body={k: v for k, v in (body or {}).items() if v is not None})

    def whoami(self) -> dict[str, Any]:
        return self.request("GET", "/me")


def _seg(value: str | None) -> str:
    return quote(str(value), safe="")
