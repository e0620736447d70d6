"""Serve the real Chalice app over HTTP on 127.0.0.1 for tests that need a socket, and run
its SQS worker in the background, with the pieces ``make run`` uses (``chalicelib.local``).

Everything runs in this process, so it shares the test's ``mock_aws`` and engine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from chalice.config import Config
from chalice.local import ChaliceRequestHandler, CustomLocalChalice, LocalChalice, LocalDevServer

from chalicelib.local.worker import QueueWorker, queue_bindings


class _QuietHandler(ChaliceRequestHandler):
    """No access log on stderr (it would mix into the output the tests read)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free port of 127.0.0.1 as ``make run`` does; yield its base URL."""
    if not isinstance(app, LocalChalice):  # as chalice.local.create_local_server: thread-local requests
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    config = Config(chalice_stage="dev", config_from_disk={}, user_provided_params={"chalice_app": app})
    server = LocalDevServer(app, config, "127.0.0.1", 0, handler_cls=_QuietHandler)
    host, port = server.server.server_address[:2]
    thread = threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.server.shutdown()
        server.server.server_close()
        thread.join(timeout=10)


@contextmanager
def working(app: Any, region: str = "us-east-1") -> Iterator[None]:
    """Run the app's SQS handlers on their queues in a background thread, as Lambda would."""
    stop = threading.Event()
    workers = [
        QueueWorker(binding, boto3.client("sqs", region_name=region), region=region, wait_seconds=0)
        for binding in queue_bindings(app)
    ]

    def loop() -> None:
        while not stop.is_set():
            if sum(worker.poll_once() for worker in workers) == 0:
                stop.wait(0.02)

    thread = threading.Thread(target=loop, name="test-sqs-worker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
