"""A scripted HTTP server on 127.0.0.1 (a free port): each request takes the next scripted
answer, and every request is recorded (method, path, headers, JSON body) for assertions.

    with ScriptedServer() as server:
        server.script("/v1/chat/completions", Answer(200, {...}), Answer(429, {...}, {"Retry-After": "1"}))
        ... server.url ...
        server.requests("/v1/chat/completions")[0].json
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw.decode()))


class ScriptedServer:
    def __init__(self) -> None:
        self._scripts: dict[str, deque[Answer | Callable[[Seen], Answer]]] = defaultdict(deque)
        self._defaults: dict[str, Answer | Callable[[Seen], Answer]] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                answer = owner._next(seen)
                if answer.delay:
                    time.sleep(answer.delay)
                payload = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a time-out test)
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def script(self, path: str, *answers: Answer | Callable[[Seen], Answer]) -> ScriptedServer:
        """Queue answers for requests whose path (without query) is ``path``."""
        with self._lock:
            self._scripts[path].extend(answers)
        return self

    def default(self, path: str, answer: Answer | Callable[[Seen], Answer]) -> ScriptedServer:
        """The answer once the script of ``path`` is used up."""
        self._defaults[path] = answer
        return self

    def requests(self, path: str | None = None) -> list[Seen]:
        return [s for s in self.seen if path is None or s.path.split("?")[0] == path]

    def _next(self, seen: Seen) -> Answer:
        path = seen.path.split("?")[0]
        with self._lock:
            self.seen.append(seen)
            queue = self._scripts.get(path)
            answer = queue.popleft() if queue else self._defaults.get(path)
        if answer is None:
            return Answer(404, {"error": f"nothing scripted for {seen.method} {path}"})
        return answer(seen) if callable(answer) else answer

    def __enter__(self) -> ScriptedServer:
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
