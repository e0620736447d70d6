"""Start latency of ``make run`` on an empty store and after many executions.

The local stack is the one ``make run`` builds (``chalicelib.local.server``): moto's threaded
server with ``dynamo_isolation`` installed, the template's resources, the app on Chalice's
local HTTP server. ``POST /workflows/{id}/executions`` is timed over HTTP on the empty
store, the store is filled with ``fill`` executions through the engine (on the same moto
server; make run's workers run them), and the starts are timed again. Before the fix, every transaction deep-copied the
whole executions table, so the ratio grew with the history; the target is at most 1.5.

A benchmark part, not a test: ``python -m bench.local_start [--fill 10000]`` or part 5 of
``python -m bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

ADMIN_KEY = "bench-local-admin-key"
FLOW = {
    "name": "Local start bench",
    "trigger": {"type": "manual", "inputs": [{"name": "n", "type": "integer"}]},
    "steps": [{"id": "one", "agent": "transform", "instructions": "input"}],
}


def _call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.status, json.loads(response.read() or b"null")


def _time_starts(base: str, workflow_id: str, samples: int) -> list[float]:
    timings = []
    for i in range(samples):
        began = time.perf_counter()
        status, _ = _call(base, "POST", f"/workflows/{workflow_id}/executions", {"inputs": {"n": i}})
        timings.append((time.perf_counter() - began) * 1000)
        assert status == 201
    return timings


def _active(base: str) -> int:
    _, listing = _call(base, "GET", "/workflows")
    return sum(int(item.get("active_executions") or 0) for item in listing["items"])


def measure_local_start(fill: int = 10_000, samples: int = 40, threads: int = 8) -> dict[str, Any]:
    """Median and p90 start latency (ms) on an empty store and after ``fill`` executions."""
    from chalicelib.config import Settings
    from chalicelib.domain.machine import Actor
    from chalicelib.engine import Engine, reset_engine
    from chalicelib.local import server as local
    from chalicelib.local.resources import create_resources

    saved = dict(os.environ)
    runner = local.Runner()
    try:
        for name in ("AWS_ENDPOINT_URL", "STEPLINE_USE_REAL_AWS", "STEPLINE_MOTO_PORT"):
            os.environ.pop(name, None)
        os.environ.update({"STEPLINE_ADMIN_KEY": ADMIN_KEY, "STEPLINE_STAGE": "dev", "STEPLINE_LOG_LEVEL": "ERROR"})
        local.set_region(os.environ)
        runner.moto, _endpoint = local.start_moto(os.environ)
        settings = Settings.from_env(os.environ)
        create_resources(settings)
        reset_engine(None)
        app = local.load_app(local.ROOT)
        runner.http = local.start_http(app, {}, "dev", "127.0.0.1", 0)
        local.start_workers(app, settings, runner)  # as make run: the executions also run
        base = f"http://127.0.0.1:{runner.http.server.server_address[1]}"
        _, created = _call(base, "POST", "/workflows", FLOW)
        workflow_id = created["workflow_id"]
        _time_starts(base, workflow_id, 5)  # warm-up: imports, caches, connections
        empty = _time_starts(base, workflow_id, samples)
        while _active(base) > 0:
            time.sleep(0.5)

        engine = Engine.build(settings)
        actor = Actor("bench", "admin")
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(
                pool.map(
                    lambda i: engine.executions.start(workflow_id, {"n": i}, {"type": "manual", "by": "bench"}, actor),
                    range(fill),
                )
            )
        while _active(base) > 0:  # measure a store at rest, as the empty one was
            time.sleep(1)
        fill_seconds = time.perf_counter() - began
        full = _time_starts(base, workflow_id, samples)
    finally:
        reset_engine(None)
        runner.stop()
        os.environ.clear()
        os.environ.update(saved)

    def summary(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "median_ms": round(statistics.median(ordered), 2),
            "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1], 2),
        }

    result: dict[str, Any] = {
        "fill": fill,
        "samples": samples,
        "empty": summary(empty),
        "after_fill": summary(full),
        "fill_seconds": round(fill_seconds, 1),
    }
    result["ratio_median"] = round(result["after_fill"]["median_ms"] / result["empty"]["median_ms"], 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_start", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fill", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args(argv)
    result = measure_local_start(args.fill, args.samples)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
