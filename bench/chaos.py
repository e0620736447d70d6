"""``python -m bench.chaos`` (``make chaos``): executions through the real handlers under
injected faults, and the promises that must hold anyway.

On moto (with ``chalicelib/local/dynamo_isolation.py``'s DynamoDB semantics), through the
Chalice test client and the real ``run_step``/``sweep`` handlers, only public entry points:

- store errors injected at the botocore level (``bench/faults.py``): throttling and 5xx (on
  reads too), transaction conflicts, a response lost after the commit, a hand-over message
  never sent (a worker that dies between commit and send);
- SQS as it behaves at least once: messages lost (deleted unseen), delivered twice (at the
  same time, on two workers), reordered (a batch shuffled), and a delivery whose handler
  raised comes back (the Lambda event source mapping's retry);
- four workers deliver concurrently while an operator races them (approve, reject with a
  reason, force-advance, cancel on a waiting gate; retry, edit-and-retry, skip, cancel on a
  failed step) and the sweep runs alongside;
- between batches the clock moves on and the minute sweep runs, as in production.

The agent steps are ``http`` calls to a scripted service on 127.0.0.1 that counts every run
by its ``X-Stepline-*`` headers and fails some first attempts with a 503 (retried by the
policy) or a 422 (the step fails and waits for an operator), and refuses some executions'
last call until an edit-and-retry sends the edited body (``_answer``). After the faults
stop, the run settles (sweeps and deliveries until nothing moves), then checks, all
expected 0:

- ``lost``: a start answered 201 whose execution is missing, or an attempt the service
  completed whose result is not in the history (neither the step's output nor a late
  result), or that timed out (the clock stands still while attempts run);
- ``stuck``: executions still running after the settle phase;
- ``moved_backward``: a step seen in a state before one it was seen in (attempt, state
  rank), or a finished execution seen changing;
- ``answered_not_applied``: operator actions answered 200 without as many of their events
  in the history, or without their effect: a rejected gate's step not failed, a skipped
  step not skipped, a retried step whose new attempt never ran, an edited one whose new
  attempt did not get the edited instructions;
- ``agent_runs_beyond_attempts``: service runs of a step beyond its allowed attempts (the
  retry policy's plus one per operator retry), or more than one run of one attempt;
- ``server_errors``: API answers of 500 or above other than 503 (a busy store's "try
  again", with ``Retry-After``), to starts, reads and operator actions alike.

Prints the report and writes it to ``bench/results/chaos.json``. A benchmark-style run, not
a test; ``tests/functional/test_chaos.py`` runs a small one in ``make test``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import threading
import time
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "chaos.json"
SETTLED = {"completed", "failed", "cancelled", "waiting"}
FINISHED = {"completed", "cancelled"}
RANK = {"pending": 0, "running": 1, "waiting_for_approval": 2, "completed": 3, "failed": 3, "skipped": 4}
MAX_ATTEMPTS = 3
#: The report's counts that must all be 0.
PROMISES = (
    "lost",
    "stuck",
    "moved_backward",
    "answered_not_applied",
    "agent_runs_beyond_attempts",
    "server_errors",
    "misslisted",
)
#: What an operator's edit-and-retry puts in place of a step's instructions: valid for the
#: ``http`` steps (their request body) and the ``transform`` gate alike; ``/strict`` wants it.
EDITED = "{got: prev, fixed: `true`}"
#: The event each answered action must have added to the history.
EXPECTED_EVENT = {
    "approve": "approval_granted",
    "reject": "approval_rejected",
    "cancel": "execution_cancelled",
    "force-advance": "step_force_advanced",
    "retry": "step_retried",
    "edit-retry": "step_retried",
    "skip": "step_skipped",
}


# --------------------------------------------------------------------- the scripted service
class Service:
    """A third party on loopback: counts runs per (execution, step, attempt); fails some first attempts."""

    def __init__(self) -> None:
        self.runs: Counter[tuple[str, str, int]] = Counter()
        self.completed: set[tuple[str, str, int]] = set()
        #: runs that were sent the edited instructions' body (``EDITED``)
        self.edited: set[tuple[str, str, int]] = set()
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    sent = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    sent = None
                key = (
                    self.headers.get("X-Stepline-Execution", ""),
                    self.headers.get("X-Stepline-Step", ""),
                    int(self.headers.get("X-Stepline-Attempt") or 0),
                )
                fixed = isinstance(sent, dict) and sent.get("fixed") is True
                status = _answer(self.path, key, fixed)
                with service.lock:
                    service.runs[key] += 1
                    if fixed:
                        service.edited.add(key)
                    if status == 200:
                        service.completed.add(key)
                body = json.dumps({"ok": status == 200, "attempt": key[2]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Service:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def _bucket(execution_id: str) -> int:
    return zlib.crc32(execution_id.encode()) % 10


def _answer(path: str, key: tuple[str, str, int], fixed: bool) -> int:
    """The service's status for one run: ``/flaky`` fails some first attempts with a 503 (the
    retry policy runs them again); ``/fragile`` refuses some first attempts with a 422 (not
    retried: the step fails, and waits for an operator to retry or skip it); ``/strict``
    refuses some executions' calls until they carry the edited instructions' body (only an
    edit-and-retry gets them through); ``/ok`` always answers 200."""
    bucket, attempt = _bucket(key[0]), key[2]
    if path == "/flaky" and attempt == 1 and bucket in (0, 5):
        return 503
    if path == "/fragile" and attempt == 1 and bucket in (1, 6):
        return 422
    if path == "/strict" and bucket == 2 and not fixed:
        return 422
    return 200


def workflows(base: str) -> list[dict[str, Any]]:
    retry = {"max_attempts": MAX_ATTEMPTS, "backoff_seconds": 1}

    def call(sid: str, path: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": sid,
            "agent": "http",
            "config": {"url": f"{base}{path}", "method": "POST"},
            "timeout_seconds": 60,
            "retry": retry,
            **extra,
        }

    return [
        {
            "name": "Chaos pipeline",
            "trigger": {"type": "manual", "inputs": []},
            "steps": [
                call("fetch", "/flaky"),
                {"id": "shape", "agent": "transform", "instructions": "{got: prev.body}"},
                call("post", "/strict", instructions="{got: prev}"),
            ],
        },
        {
            "name": "Chaos gate",
            "trigger": {"type": "manual", "inputs": []},
            "steps": [
                call("draft", "/fragile"),
                {"id": "approve", "agent": "transform", "instructions": "prev", "gate": {"type": "approval"}},
                call("send", "/ok"),
            ],
        },
    ]


# --------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class Answered:
    """An operator action answered 200: what it was taken on, and the execution it answered."""

    execution_id: str
    action: str
    step_id: str | None
    attempt: int  # the step's attempt when the operator looked
    view: dict[str, Any]


@dataclass
class Observations:
    started: list[str] = field(default_factory=list)
    answered: list[Answered] = field(default_factory=list)
    operator_retries: Counter[tuple[str, str]] = field(default_factory=Counter)
    seen: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    deliveries: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    #: every API answer 500 or above but 503 (a busy store's "try again"): expected none
    server_errors: Counter[str] = field(default_factory=Counter)


class Chaos:
    def __init__(
        self, client: Any, engine: Any, clock: Any, faults: Any, service: Service, seed: int, workers: int = 4
    ) -> None:
        import boto3

        self.client, self.engine, self.clock, self.faults, self.service = client, engine, clock, faults, service
        self.random = random.Random(seed)
        self.obs = Observations()
        self.sqs = boto3.client("sqs", region_name=engine.settings.region)
        self.queue_name = engine.settings.step_queue
        self.url = self.sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
        self.pool = ThreadPoolExecutor(max_workers=workers)
        self.finished: set[str] = set()
        self.key = os.environ["STEPLINE_ADMIN_KEY"]

    # -- API (one thread: chalice.test's request object is not thread-local)
    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {
            "headers": {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        }
        if body is not None:
            kwargs["body"] = json.dumps(body)
        try:
            response = getattr(self.client.http, method.lower())(path, **kwargs)
            status = response.status_code
        except Exception:
            response, status = None, 500
        if status >= 500 and status != 503:
            self.obs.server_errors[f"{method} {path.split('/')[1]} -> {status}"] += 1
        if response is None:
            return status, None
        try:
            return status, json.loads(response.body) if response.body else None
        except ValueError:
            return status, None

    # -- SQS, as the event source mapping (plus the faults SQS is allowed to have)
    def _deliver(self, message: dict[str, Any], delete: bool) -> str:
        event = self.client.events.generate_sqs_event(queue_name=self.queue_name, message_bodies=[message["Body"]])
        try:
            self.client.lambda_.invoke("run_step", event)
        except Exception:
            if delete:
                self._release(message)
            return "raised"
        if delete:
            try:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
            except Exception:
                return "undeleted"
        return "ok"

    def _release(self, message: dict[str, Any]) -> None:
        try:  # the visibility timeout, shortened: the message is back at once
            self.sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        except Exception:
            pass

    def pump(self, lose: float, duplicate: float, operate: int = 0, sweep: bool = False) -> int:
        """One batch from the queue: lost, duplicated, shuffled, delivered on the workers.

        While the deliveries run, ``operate`` operator actions are taken (from this thread:
        the API client is not thread-safe) and, with ``sweep``, the sweep runs on a worker:
        operators and the sweep really race the workers. The clock stands still meanwhile,
        so no attempt runs past its time-out (a timed-out attempt that its service completed
        is a lost result, never a slow one).
        """
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30
        ).get("Messages", [])
        self.random.shuffle(messages)
        jobs = []
        for message in messages:
            roll = self.random.random()
            if roll < lose:
                self.obs.deliveries["lost"] += 1
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
                continue
            if roll < lose + duplicate:
                self.obs.deliveries["duplicated"] += 1
                jobs.append(self.pool.submit(self._deliver, message, False))
            jobs.append(self.pool.submit(self._deliver, message, True))
        swept = self.pool.submit(self.sweep) if sweep else None
        for _ in range(operate if self.obs.started else 0):
            self.operate(self.random.choice(self.obs.started))
        for job in jobs:
            self.obs.deliveries[job.result()] += 1
        if swept is not None:
            swept.result()
        return len(messages)

    def sweep(self) -> None:
        event = self.client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        )
        try:
            self.client.lambda_.invoke("sweep", event)
        except Exception:
            self.obs.deliveries["sweep-raised"] += 1

    # -- the operator, racing the workers
    def look(self, execution_id: str) -> dict[str, Any] | None:
        status, view = self.api("GET", f"/executions/{execution_id}")
        if status != 200 or not isinstance(view, dict):
            return None
        self._saw(execution_id, view)
        return view

    def _saw(self, execution_id: str, view: dict[str, Any]) -> None:
        self.obs.seen[execution_id].append(
            {"status": view["status"], "steps": [(s["id"], s["attempt"], s["state"]) for s in view["steps"]]}
        )

    def operate(self, execution_id: str) -> None:
        view = self.look(execution_id)
        if view is None:
            return
        step: dict[str, Any] = next(
            (s for s in view["steps"] if s["state"] in ("waiting_for_approval", "failed", "running")), {}
        )
        if view["status"] == "waiting" and step:
            action = self.random.choice(["approve", "approve", "reject", "reject", "force-advance", "cancel"])
        elif view["status"] == "failed" and step:
            action = self.random.choice(["retry", "retry", "edit-retry", "edit-retry", "skip", "cancel"])
        elif view["status"] == "running" and self.random.random() < 0.05:
            action = "cancel"
        else:
            return
        body: dict[str, Any] = {}
        if action == "cancel":
            path = f"/executions/{execution_id}/cancel"
        else:
            verb = "retry" if action == "edit-retry" else action
            path = f"/executions/{execution_id}/steps/{step['id']}/{verb}"
        if action == "reject":
            body = {"comment": "chaos: not this one"}  # a reject needs a reason
        elif action == "edit-retry":
            body = {"instructions": EDITED}
        status, answer = self.api("POST", path, body)
        self.obs.answers[f"{action} -> {status}"] += 1
        if status == 200 and isinstance(answer, dict):
            step_id = None if action == "cancel" else step["id"]
            self.obs.answered.append(Answered(execution_id, action, step_id, int(step.get("attempt") or 0), answer))
            self._saw(execution_id, answer)
            if action in ("retry", "edit-retry"):
                self.obs.operator_retries[(execution_id, step["id"])] += 1

    # -- the phases
    def start(self, count: int, workflow_ids: list[str]) -> None:
        for i in range(count):
            workflow_id = workflow_ids[i % len(workflow_ids)]
            status, body = self.api("POST", f"/workflows/{workflow_id}/executions", {"inputs": {}})
            self.obs.answers[f"start -> {status}"] += 1
            if status == 201:
                self.obs.started.append(body["execution_id"])

    def churn(self, rounds: int, lose: float, duplicate: float, operate: int = 3) -> None:
        for round_ in range(rounds):
            moved = self.pump(lose, duplicate, operate=operate, sweep=round_ % 3 == 2)
            if not moved or round_ % 10 == 9:
                self.clock.advance(61)
                self.sweep()

    def settle(self, limit: int = 400) -> None:
        """Faults off: deliver, advance the clock, sweep, until nothing is running."""
        self.faults.active = False
        quiet = 0
        for _ in range(limit):
            moved = self.pump(0.0, 0.0)
            if moved:
                quiet = 0
                continue
            self.clock.advance(61)
            self.sweep()
            quiet += 1
            if quiet >= 3 and not self._running():
                return

    def _running(self) -> list[str]:
        running = []
        for execution_id in self.obs.started:
            if execution_id in self.finished:
                continue  # completed and cancelled are final: no need to look again each round
            view = self.look(execution_id)
            if view is None or view["status"] == "running":
                running.append(execution_id)
            elif view["status"] in FINISHED:
                self.finished.add(execution_id)
        return running

    # -- the verdict
    def verdict(self) -> dict[str, Any]:
        lost: list[Any] = []
        stuck: list[str] = []
        backward: list[Any] = []
        beyond: list[Any] = []
        histories: dict[str, list[dict[str, Any]]] = {}
        statuses: Counter[str] = Counter()
        for execution_id in self.obs.started:
            view = self.look(execution_id)
            status, history = self.api("GET", f"/executions/{execution_id}/history")
            if view is None or status != 200:
                lost.append((execution_id, "missing"))
                continue
            statuses[view["status"]] += 1
            histories[execution_id] = history["items"]
            if view["status"] not in SETTLED:
                stuck.append(execution_id)
            backward += _backward(execution_id, self.obs.seen[execution_id])
            recorded: set[tuple[str, str, int]] = set()
            for item in history["items"]:
                key = (execution_id, item.get("step_id") or "", int(item.get("attempt") or 0))
                if item["type"] in ("step_completed", "late_result_discarded"):
                    recorded.add(key)
                if item["type"] == "step_timed_out" and key in self.service.completed:
                    # the clock stands still while attempts run: this one finished in time
                    lost.append((*key, "completed attempt timed out"))
            # every attempt the service completed is in the history: as the step's output, or
            # kept as a late result when an operator (or a time-out) had moved the step on
            lost += [
                (*key, "result never recorded")
                for key in sorted(self.service.completed)
                if key[0] == execution_id and key not in recorded
            ]
        not_applied = _not_applied(self.obs.answered, histories, self.service)
        misslisted = self._misslisted()
        runs: Counter[tuple[str, str]] = Counter()
        for (execution_id, step_id, attempt), n in self.service.runs.items():
            runs[(execution_id, step_id)] += n
            if n > 1:  # one attempt, one run: a redelivery records a kept result instead
                beyond.append((execution_id, step_id, attempt, n, 1))
        for (execution_id, step_id), n in runs.items():
            allowed = MAX_ATTEMPTS * (1 + self.obs.operator_retries[(execution_id, step_id)])
            if n > allowed:
                beyond.append((execution_id, step_id, n, allowed))
        return {
            "executions": len(self.obs.started),
            "statuses": dict(statuses),
            "lost": len(lost),
            "stuck": len(stuck),
            "moved_backward": len(backward),
            "answered_not_applied": len(not_applied),
            "agent_runs_beyond_attempts": len(beyond),
            "agent_runs": sum(self.service.runs.values()),
            "server_errors": sum(self.obs.server_errors.values()),
            "misslisted": len(misslisted),
            "faults_injected": dict(self.faults.counts),
            "deliveries": dict(self.obs.deliveries),
            "operator_answers": dict(self.obs.answers),
            "examples": {
                "lost": lost[:5],
                "stuck": stuck[:5],
                "moved_backward": backward[:5],
                "answered_not_applied": not_applied[:5],
                "agent_runs_beyond_attempts": beyond[:5],
                "server_errors": sorted(self.obs.server_errors.items())[:5],
                "misslisted": misslisted[:5],
            },
        }

    def _misslisted(self) -> list[Any]:
        """Executions that the list across workflows and that of their workflow do not show
        exactly once, with their current status (young ones, listed through the due index, and
        those a status change or the sweep entered in the list indexes, alike)."""
        truth = {e: (v["status"], v["workflow_id"]) for e in self.obs.started if (v := self.look(e)) is not None}
        wrong: list[Any] = []
        workflows = sorted({wf for _, wf in truth.values()})
        for wf in [None, *workflows]:
            path = f"/workflows/{wf}/executions" if wf else "/executions"
            listed: Counter[tuple[str, str]] = Counter()
            token: str | None = None
            for _ in range(1000):
                status, page = self.api("GET", f"{path}?limit=200" + (f"&next_token={token}" if token else ""))
                if status != 200:
                    wrong.append((path, "answered", status))
                    break
                listed.update((item["execution_id"], item["status"]) for item in page["items"])
                token = page["next_token"]
                if not token:
                    break
            expected = Counter((e, s) for e, (s, w) in truth.items() if wf in (None, w))
            wrong += [
                (path, e, s, listed[(e, s)]) for (e, s) in listed | expected if listed[(e, s)] != expected[(e, s)]
            ]
        return wrong


#: The steps that call the scripted service (their runs are counted there).
HTTP_STEPS = {"fetch", "post", "draft", "send"}
#: History events that show a step's attempt really ran (or reached its gate).
RAN = {"step_started", "step_completed", "step_failed", "step_timed_out", "approval_requested"}


def _not_applied(answered: list[Answered], histories: dict[str, list[dict[str, Any]]], service: Service) -> list[Any]:
    """Operator actions answered 200 whose effect is missing: fewer events of their kind in the
    history than 200 answers; a rejected gate whose step did not fail; a skipped step that
    is not skipped; a retry whose new attempt never ran (while the execution went on); an
    edit-and-retry whose new attempt did not get the edited instructions."""
    found: list[Any] = []
    applied: Counter[tuple[str, str, str | None]] = Counter()
    for execution_id, items in histories.items():
        for item in items:
            applied[(execution_id, item["type"], item.get("step_id"))] += 1
            applied[(execution_id, item["type"], None)] += 1
    wanted: Counter[tuple[str, str, str | None]] = Counter()
    for a in answered:
        wanted[(a.execution_id, EXPECTED_EVENT[a.action], a.step_id)] += 1
        if a.action == "edit-retry":
            wanted[(a.execution_id, "instructions_edited", a.step_id)] += 1
    found += [(*key, "event missing") for key, n in wanted.items() if applied[key] < n]
    for a in answered:
        if a.step_id is None or a.execution_id not in histories:
            continue
        items = histories[a.execution_id]
        step: dict[str, Any] = next((s for s in a.view["steps"] if s["id"] == a.step_id), {})
        if a.action == "reject" and (step.get("state") != "failed" or a.view["status"] != "failed"):
            found.append((a.execution_id, a.step_id, "rejected, but the step is", step.get("state")))
        if a.action == "skip" and step.get("state") != "skipped":
            found.append((a.execution_id, a.step_id, "skipped, but the step is", step.get("state")))
        if a.action not in ("retry", "edit-retry"):
            continue
        attempt = a.attempt + 1
        if int(step.get("attempt") or 0) < attempt:
            found.append((a.execution_id, a.step_id, "retried, but the attempt is still", step.get("attempt")))
        cancelled = any(i["type"] == "execution_cancelled" for i in items)
        key = (a.execution_id, a.step_id, attempt)
        ran = (
            key in service.runs
            if a.step_id in HTTP_STEPS
            else any(
                i["type"] in RAN and i.get("step_id") == a.step_id and int(i.get("attempt") or 0) >= attempt
                for i in items
            )
        )
        if not ran and not cancelled:
            found.append(
                (
                    *key,
                    "retried, but the new attempt never ran",
                    [
                        (i["type"], i.get("attempt"), i.get("actor"))
                        for i in items
                        if i.get("step_id") in (a.step_id, None)
                    ],
                )
            )
        if a.action == "edit-retry" and a.step_id in HTTP_STEPS and key in service.runs and key not in service.edited:
            found.append((*key, "edited, but the new attempt ran the old instructions"))
    return found


def _backward(execution_id: str, snapshots: list[dict[str, Any]]) -> list[Any]:
    found = []
    for before, after in itertools.pairwise(snapshots):
        if before["status"] in FINISHED and after != before:
            found.append((execution_id, "finished execution changed", before["status"], after["status"]))
        for (sid, attempt, state), (_, attempt2, state2) in zip(before["steps"], after["steps"], strict=True):
            if (attempt2, RANK[state2]) < (attempt, RANK[state]) or (
                attempt2 == attempt and state in ("completed", "skipped") and state2 != state
            ):
                found.append((execution_id, sid, (attempt, state), (attempt2, state2)))
    return found


def run(executions: int, seed: int = 15, rounds_per_execution: float = 0.6, **rates: Any) -> dict[str, Any]:
    """One chaos run of ``executions`` executions; returns the report."""
    from bench.faults import Faults, install
    from chalicelib.local.dynamo_isolation import install as isolate_dynamodb

    os.environ.setdefault("STEPLINE_OUTBOUND_ALLOW_PRIVATE", "1")  # the scripted service is on loopback
    isolate_dynamodb()
    faults = install(Faults(seed=seed, **rates))
    import boto3

    boto3.DEFAULT_SESSION = None  # the engine's SQS client must come from a session with the hooks

    began = time.perf_counter()
    # chalice.test swaps ``os.environ`` for a copy around every invocation; from four worker
    # threads the swaps interleave and can leave a copy in place, which later code in this
    # process (rich's consoles read the object bound at import) would never see change
    environ = os.environ
    try:
        report = _run(executions, faults, seed, rounds_per_execution)
    finally:
        faults.active = False  # the hooks stay registered in this process: leave them switched off
        os.environ = environ  # noqa: B003 - restoring the real mapping object, not clearing
    report["seconds"] = round(time.perf_counter() - began, 1)
    return report


def _run(executions: int, faults: Any, seed: int, rounds_per_execution: float) -> dict[str, Any]:
    from bench.harness import environment

    with Service() as service, environment() as (client, engine, clock):
        chaos = Chaos(client, engine, clock, faults, service, seed)
        workflow_ids = []
        for definition in workflows(service.url):
            status, body = chaos.api("POST", "/workflows", definition)
            assert status == 201, body
            workflow_ids.append(body["workflow_id"])
        faults.active = True
        batch = max(10, executions // 20)
        while len(chaos.obs.started) < executions:
            chaos.start(min(batch, executions - len(chaos.obs.started)), workflow_ids)
            chaos.churn(max(5, int(batch * rounds_per_execution)), lose=0.03, duplicate=0.1)
        chaos.churn(max(20, executions // 5), lose=0.03, duplicate=0.1)
        chaos.settle()
        # operators may have left gates and failures behind: decide them all, then settle again
        # (twice: a plain retry of a step that wants an edit fails again)
        for _ in range(2):
            for execution_id in list(chaos.obs.started):
                chaos.operate(execution_id)
            chaos.settle()
        report = chaos.verdict()
        chaos.pool.shutdown()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    report = run(args.executions, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps(report, indent=2, default=str))
    bad = [k for k in PROMISES if report[k]]
    print(
        f"\nchaos: {report['executions']} executions in {report['seconds']} s; "
        + ("all promises held" if not bad else "BROKEN: " + ", ".join(f"{k}={report[k]}" for k in bad))
    )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
