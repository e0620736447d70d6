"""Start latency of ``make run`` on an empty store and after many executions.

The local stack is the one ``make run`` builds (``chalicelib.local.server``): moto's threaded
server with ``dynamo_isolation`` installed, the template's resources, the app on Chalice's
local HTTP server. ``POST /workflows/{id}/executions`` is timed over HTTP on the empty
store, the store is filled with ``fill`` executions through the engine (on the same moto
server; make run's workers run them), and the starts are timed again. Before the fix, every transaction deep-copied the
whole executions table, so the ratio grew with the history; the target is at most 1.5.

On a shared machine the load changes between the empty measurement and the one after the
fill (often tens of minutes later), and that drift alone moved the ratio by 1.5x or more.
So the starts after the fill are also timed *interleaved* with starts on a reference: a
fresh ``make run`` (``python -m chalicelib.local.server --no-seed``) in its own process,
on an empty store, started after the fill. One start on each, alternately, so both see the
same machine: ``ratio_interleaved`` is the store's own effect. ``--direct N`` first writes
``N`` finished executions straight into the emulator's table in the store's shapes
(``bench.scale.ExecutionFactory``, spread over the past at ``bench.scale.PER_MINUTE``), for
sizes the workers cannot run in the time at hand; the ``fill`` executions then run through
the workers as before, so recent due entries, stream records and queue traffic are real.

A benchmark part, not a test: ``python -m bench.local_start [--fill 10000] [--direct 0]`` or
part 5 of ``python -m bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

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


def _time_interleaved(
    full: str, full_wf: str, reference: str, reference_wf: str, samples: int
) -> tuple[list[float], list[float]]:
    """One start on the filled stack, one on the reference, alternately: both see the same load."""
    on_full, on_reference = [], []
    for _ in range(samples):
        on_full += _time_starts(full, full_wf, 1)
        on_reference += _time_starts(reference, reference_wf, 1)
    return on_full, on_reference


@contextmanager
def reference_stack() -> Iterator[str]:
    """A fresh ``make run`` on an empty store, in its own process; yields its base URL."""
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "STEPLINE_MOTO_PORT")}
    env.update({"STEPLINE_ADMIN_KEY": ADMIN_KEY, "PORT": "0", "STEPLINE_LOG_LEVEL": "ERROR"})
    process = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.local.server", "--no-seed"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        base = None
        for line in process.stdout:
            if line.strip().startswith("API:"):
                base = line.split("API:", 1)[1].strip()
                break
        if base is None:
            raise RuntimeError("the reference make run did not print its URL")
        # keep reading: its metric lines must not fill the pipe and stall it
        threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True).start()
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def direct_fill(engine: Any, workflow_id: str, count: int, now: datetime) -> int:
    """Write ``count`` finished executions of ``workflow_id`` straight into the emulator's
    executions table, in the store's own item shapes (bench set-up, no API calls); returns
    the executions the table then holds."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from bench.motofast import bulk_put
    from bench.scale import PER_MINUTE, ExecutionFactory
    from chalicelib.domain.timefmt import iso
    from chalicelib.local import dynamo_index
    from chalicelib.local.dynamo_isolation import DYNAMODB_LOCK

    settings = engine.settings
    version = engine.workflows.get(workflow_id).version
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][settings.region].get_table(settings.executions_table)
    gap = 60.0 / PER_MINUTE
    engine.store.executions.lists.note_month(iso(now - timedelta(seconds=(count + 1) * gap))[:7])
    factory = ExecutionFactory(engine.store.executions, workflow_id, version)
    with DYNAMODB_LOCK:  # the server's threads serve requests meanwhile
        bulk_put(
            table,
            (
                item
                for i in range(count)
                for item in factory.items(f"ex_direct{i:023d}", now - timedelta(seconds=(i + 10) * gap))
            ),
        )
        dynamo_index.forget(table)  # bulk_put writes behind the index maps: rebuild them
        return sum(1 for key in table.items if str(key.value).startswith("EX#"))


def _active(base: str) -> int:
    _, listing = _call(base, "GET", "/workflows")
    return sum(int(item.get("active_executions") or 0) for item in listing["items"])


def measure_local_start(fill: int = 10_000, samples: int = 40, threads: int = 8, direct: int = 0) -> dict[str, Any]:
    """Median and p90 start latency (ms) on an empty store and after ``direct`` + ``fill``
    executions, and after the fill interleaved with a fresh empty ``make run``."""
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
        stored = direct_fill(engine, workflow_id, direct, datetime.now(UTC)) if direct else 0
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
        with reference_stack() as reference:
            _, made = _call(reference, "POST", "/workflows", FLOW)
            _time_starts(reference, made["workflow_id"], 5)  # warm-up, as the empty store had
            interleaved, on_reference = _time_interleaved(base, workflow_id, reference, made["workflow_id"], samples)
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
        "fill": fill + direct,
        "direct": direct,
        "stored_after_direct": stored,
        "samples": samples,
        "empty": summary(empty),
        "after_fill": summary(full),
        "fill_seconds": round(fill_seconds, 1),
        "interleaved": {"after_fill": summary(interleaved), "reference_empty": summary(on_reference)},
    }
    result["ratio_median"] = round(result["after_fill"]["median_ms"] / result["empty"]["median_ms"], 2)
    result["ratio_interleaved"] = round(
        result["interleaved"]["after_fill"]["median_ms"] / result["interleaved"]["reference_empty"]["median_ms"], 2
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_start", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fill", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument(
        "--direct", type=int, default=0, help="finished executions written straight into the table before the fill"
    )
    args = parser.parse_args(argv)
    result = measure_local_start(args.fill, args.samples, direct=args.direct)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
