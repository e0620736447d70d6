"""A model check: random starts, SQS deliveries, agent outcomes, operator actions, sweeps and
clock moves, through the real handlers, against a small reference model.

Hypothesis drives a ``RuleBasedStateMachine``. Messages are taken off the real queue into an
inbox the test controls, so they can be delivered in any order, twice, late, or never (lost).
A "slow worker" claims a step through the real runner and reports its outcome later, which
is how a result arrives after an operator or the sweep has moved on.

The reference model predicts the answer of every operator action (200, 403 or 409) from the
execution as last observed, and which deliveries may change anything. After every step:
no step moves backward, a completed or skipped step never changes, the execution status
agrees with its steps and with the listed summary, every human action is in the history
(and nothing else carries an actor), and the workflow's active count equals the number of
running plus waiting executions.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chalicelib.domain.machine import RecordResult
from chalicelib.domain.states import StepState, is_forward
from tests.functional.operator_kit import Keys, act, py, tf, workflow

MODEL_WORKFLOW = workflow(
    py("fetch", "flaky", timeout_seconds=60, retry={"max_attempts": 2, "backoff_seconds": 0}),
    tf("check", "prev", gate={"type": "approval", "approvers": ["manager-key"]}),
    tf("polish", "prev", gate={"type": "review"}),
    tf("post", "prev", timeout_seconds=30),
    name="Model check",
)
STEP_IDS = [s["id"] for s in MODEL_WORKFLOW["steps"]]
GATES = {"check": "approval", "polish": "review"}
ACTIONS = ["retry", "edit", "skip", "force-advance", "approve", "reject", "review", "cancel"]
#: how the execution view names the actions the model check tries
OFFERED_AS = {"edit": "edit_and_retry", "force-advance": "force_advance"}
NEEDS = {
    "retry": {"failed"},
    "edit": {"failed"},
    "skip": {"failed"},
    "force-advance": {"pending", "running", "waiting_for_approval"},
    "approve": {"waiting_for_approval"},
    "reject": {"waiting_for_approval"},
    "review": {"waiting_for_approval"},
}
HUMAN_EVENTS = {
    "retry": ["step_retried"],
    "edit": ["instructions_edited", "step_retried"],
    "skip": ["step_skipped"],
    "force-advance": ["step_force_advanced"],
    "approve": ["approval_granted"],
    "reject": ["approval_rejected"],
    "review": ["review_submitted"],
    "cancel": ["execution_cancelled"],
}
TERMINAL = ("completed", "skipped")
MAX_EXECUTIONS = 3


def reachable(before: tuple[int, str], after: tuple[int, str]) -> bool:
    """True when ``after`` follows ``before`` through zero or more legal (attempt, state) moves."""
    start, goal = (before[0], StepState(before[1])), (after[0], StepState(after[1]))
    frontier, seen = [start], {start}
    while frontier:
        node = frontier.pop()
        if node == goal:
            return True
        for state in StepState:
            for attempt in (node[0], node[0] + 1):
                nxt = (attempt, state)
                if attempt <= goal[0] and nxt not in seen and is_forward(node, nxt):
                    seen.add(nxt)
                    frontier.append(nxt)
    return False


def current(view: dict[str, Any]) -> dict[str, Any] | None:
    return next((s for s in view["steps"] if s["state"] not in TERMINAL), None)


def expected_answer(view: dict[str, Any], action: str, step_id: str, key: tuple[str, str]) -> int:
    """The reference model: what the API must answer, from the execution as last seen."""
    name, role = key
    if role == "viewer" or (action == "force-advance" and role != "admin"):
        return 403
    if view["status"] in ("completed", "cancelled"):
        return 409
    if action == "cancel":
        return 200
    step = next(s for s in view["steps"] if s["id"] == step_id)
    if step["state"] not in NEEDS[action] or step is not current(view):
        return 409
    if action in ("approve", "reject", "review"):
        if action == "review" and GATES[step_id] != "review":
            return 409
        if step_id == "check" and name != "manager-key":
            return 403
    return 200


class OperatorModel(RuleBasedStateMachine):
    def __init__(
        self,
        api: Any,
        worker: Any,
        engine: Any,
        clock: Any,
        keys: dict[str, tuple[str, str, str]],
        outcomes: Counter[str],
    ) -> None:
        super().__init__()
        self.seen_outcomes = outcomes
        self.api, self.worker, self.engine, self.clock, self.keys = api, worker, engine, clock, keys
        self.workflow_id = ""
        self.executions: list[str] = []
        self.inbox: list[str] = []
        self.inflight: list[tuple[Any, str, int]] = []
        self.seen: dict[str, dict[str, Any]] = {}
        self.history_len: dict[str, int] = {}
        self.human: dict[str, list[tuple[str, str, str | None]]] = {}
        self.dirty: set[str] = set()
        self.observed: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}

    # ---------------------------------------------------------------- helpers
    def observe(self, ex: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        view = self.api.execution(ex)
        status, body = self.api.get(f"/executions/{ex}/history")
        assert status == 200, body
        self.observed[ex] = (view, body["items"])
        return view, body["items"]

    # ------------------------------------------------------------------ rules
    @initialize()
    def fresh_workflow(self) -> None:
        self.pump()  # earlier examples' messages are dropped by pump: not ours
        self.workflow_id = self.api.create_workflow(MODEL_WORKFLOW)
        self.start("ACME")
        self.record_is_consistent()

    @precondition(lambda self: len(self.executions) < MAX_EXECUTIONS)
    @rule(customer=st.sampled_from(["ACME", "Globex"]))
    def start(self, customer: str) -> None:
        body = self.api.start(self.workflow_id, {"customer": customer}, key=self.keys["olivia"][0])
        ex = body["execution_id"]
        self.executions.append(ex)
        self.human[ex] = [("execution_started", "olivia", None)]
        self.seen[ex] = body
        self.history_len[ex] = 1
        self.dirty.add(ex)

    @rule()
    def pump(self) -> None:
        """Take every visible message off the queue into the inbox."""
        for message in self.worker.receive():
            self.worker.sqs.delete_message(QueueUrl=self.worker.url, ReceiptHandle=message["ReceiptHandle"])
            if json.loads(message["Body"])["execution_id"] in self.seen:
                self.inbox.append(message["Body"])

    @precondition(lambda self: self.inbox)
    @rule(data=st.data(), duplicate=st.booleans())
    def deliver(self, data: Any, duplicate: bool) -> None:
        """Deliver any inbox message (out of order), keeping a copy to deliver again if ``duplicate``."""
        index = data.draw(st.integers(0, len(self.inbox) - 1), label="message")
        body = self.inbox[index] if duplicate else self.inbox.pop(index)
        self.deliver_one(body)
        if duplicate:
            # ... and at once again, as SQS may (a chain leaves few messages in the inbox, so
            # a kept copy is rarely drawn later)
            self.record_is_consistent()
            self.deliver_one(body)

    @precondition(lambda self: self.inbox)
    @rule()
    def deliver_in_order(self) -> None:
        """A healthy queue for a while: every message, oldest first, and what they enqueue.

        The first one comes twice (at-least-once delivery): a worker chains steps, so stale
        messages are rare and duplicates must be made to happen."""
        for turn in range(6):
            if not self.inbox:
                return
            body = self.inbox.pop(0)
            self.deliver_one(body)
            self.record_is_consistent()
            if turn == 0:
                self.deliver_one(body)
                self.record_is_consistent()

    def deliver_one(self, body: str) -> None:
        message = json.loads(body)
        ex = message["execution_id"]
        before = self.seen[ex]
        step = current(before)
        runnable = (
            before["status"] == "running"
            and step is not None
            and step["id"] == message["step_id"]
            and step["attempt"] == message["attempt"]
            and (step["state"] == "pending" or (step["state"] == "running" and step["deadline"] is None))
        )
        self.worker.deliver(body)
        self.seen_outcomes[f"delivery {'ran' if runnable else 'was a no-op'}"] += 1
        self.dirty.add(ex)
        grew = len(self.observe(ex)[1]) > self.history_len[ex]
        assert grew == runnable, f"delivery of {message} {'changed' if grew else 'did not change'} {before}"
        self.dirty.add(ex)

    @precondition(lambda self: self.inbox)
    @rule(data=st.data())
    def lose(self, data: Any) -> None:
        self.inbox.pop(data.draw(st.integers(0, len(self.inbox) - 1), label="lost message"))

    @precondition(lambda self: self.inbox)
    @rule(data=st.data())
    def claim_slowly(self, data: Any) -> None:
        """A worker claims the step, then its agent takes its time (see ``finish_slow_agent``)."""
        message = json.loads(self.inbox.pop(data.draw(st.integers(0, len(self.inbox) - 1), label="claimed")))
        state = self.engine.runner.claim(message["execution_id"], message["step_id"], message["attempt"])
        if state is not None:
            self.inflight.append((state, message["step_id"], message["attempt"]))
        self.dirty.add(message["execution_id"])

    @precondition(lambda self: self.inflight)
    @rule(data=st.data(), outcome=st.sampled_from(["output", "retryable", "fatal"]))
    def finish_slow_agent(self, data: Any, outcome: str) -> None:
        state, step_id, attempt = self.inflight.pop(data.draw(st.integers(0, len(self.inflight) - 1), label="agent"))
        error = (
            None
            if outcome == "output"
            else {"kind": "agent", "message": f"{outcome} failure", "retryable": outcome == "retryable"}
        )
        self.engine.runner.record(state, RecordResult(step_id, attempt, output={"by": "slow"}, error=error))
        self.dirty.add(state.execution_id)

    def offered(self, ex: str, key: str, step_id: str) -> list[str]:
        """What the execution view offers ``key`` now: the step's actions and the execution's."""
        status, view = self.api.get(f"/executions/{ex}", key=key)
        assert status == 200, view
        return [*view["actions"], *next(s for s in view["steps"] if s["id"] == step_id)["actions"]]

    @precondition(lambda self: self.executions)
    @rule(
        data=st.data(),
        action=st.sampled_from(ACTIONS),
        step_id=st.sampled_from(STEP_IDS),
        who=st.sampled_from(["olivia", "manager-key", "ada", "victor"]),
    )
    def operate(self, data: Any, action: str, step_id: str, who: str) -> None:
        ex = data.draw(st.sampled_from(self.executions), label="execution")
        key, name, role = self.keys[who]
        view = self.seen[ex]
        expected = expected_answer(view, action, step_id, (name, role))
        body: dict[str, Any] = (
            {"comment": f"{action} by {who}"} if action not in ("retry", "edit", "skip", "cancel") else {}
        )
        if action == "edit":
            body = {"instructions": "prev"}
        if action == "review":
            body["output"] = {"reviewed": True}
        path_action = "retry" if action == "edit" else action
        offered = self.offered(ex, key, step_id)
        status, answer = act(self.api, ex, path_action, step_id, body, key=key)
        assert status == expected, (action, step_id, who, view["status"], answer)
        # the view offered the action exactly when the route accepted it
        as_offered = OFFERED_AS.get(action, action)
        assert (as_offered in offered) == (status == 200), (action, step_id, who, offered, status, answer)
        self.seen_outcomes[f"{action} -> {status}"] += 1
        if status == 200:
            self.human[ex] += [(t, name, None if action == "cancel" else step_id) for t in HUMAN_EVENTS[action]]
            after = next((s for s in answer["steps"] if s["id"] == step_id), None)
            if action == "cancel":
                assert answer["status"] == "cancelled"
                assert [s["step_id"] for s in answer["completed_steps_not_undone"]] == [
                    s["id"] for s in answer["steps"] if s["state"] == "completed"
                ]
            elif action in ("retry", "edit"):
                before = next(s for s in view["steps"] if s["id"] == step_id)
                assert (after["state"], after["attempt"]) == ("running", before["attempt"] + 1)
            elif action == "reject":
                assert after["state"] == "failed" and after["decision"]["by"] == name
            elif action in ("approve", "review"):
                assert after["state"] == "completed" and after["decision"]["by"] == name
            else:
                assert after["state"] in ("skipped", "completed")
        self.dirty.add(ex)

    @rule(seconds=st.sampled_from([1, 31, 61, 121, 301]))
    def advance_clock(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def sweep(self) -> None:
        self.worker.sweep()
        self.dirty.update(self.executions)

    # -------------------------------------------------------------- invariants
    @invariant()
    def record_is_consistent(self) -> None:
        # messages sent by the last step become visible: the inbox holds them for delivery
        self.pump()
        written = False
        for ex in sorted(self.dirty):
            view, items = self.observed.pop(ex, None) or self.observe(ex)
            self.check_execution(ex, self.seen[ex], view, items)
            written = written or len(items) > self.history_len[ex]
            self.seen[ex], self.history_len[ex] = view, len(items)
        self.dirty.clear()
        self.observed.clear()
        if written:  # nothing was stored otherwise: summaries and counters cannot have moved
            self.check_summaries_and_active_count()

    def check_summaries_and_active_count(self, listing: bool = False) -> None:
        statuses = {ex: self.seen[ex]["status"] for ex in self.executions}
        status, listed = self.api.get(f"/workflows/{self.workflow_id}/executions")
        assert status == 200
        assert {i["execution_id"]: i["status"] for i in listed["items"]} == statuses, "summaries disagree"
        if listing:
            status, body = self.api.get("/workflows")
            active = next(w["active_executions"] for w in body["items"] if w["workflow_id"] == self.workflow_id)
        else:
            status, body = self.api.get(f"/workflows/{self.workflow_id}")
            active = body["active_executions"]
        assert status == 200
        assert active == sum(s in ("running", "waiting") for s in statuses.values())

    def teardown(self) -> None:
        if self.workflow_id:
            self.check_summaries_and_active_count(listing=True)

    def check_execution(
        self, ex: str, before: dict[str, Any], view: dict[str, Any], items: list[dict[str, Any]]
    ) -> None:
        assert [i["seq"] for i in items] == list(range(1, len(items) + 1)), "history has gaps"
        for old, new in zip(before["steps"], view["steps"], strict=True):
            assert reachable((old["attempt"], old["state"]), (new["attempt"], new["state"])), (old, new)
            if old["state"] in TERMINAL:
                assert new == old, f"finished step {old['id']} changed"
        types = [i["type"] for i in items]
        step = current(view)
        if "execution_cancelled" in types:
            assert view["status"] == "cancelled" and view["ended_at"]
            assert all(s["state"] not in ("running", "waiting_for_approval") for s in view["steps"])
        elif step is None:
            assert view["status"] == "completed" and types[-1] == "execution_completed"
        else:
            expected = {"failed": "failed", "waiting_for_approval": "waiting"}.get(step["state"], "running")
            assert view["status"] == expected, view
            later = view["steps"][view["steps"].index(step) + 1 :]
            assert all(s["state"] == "pending" for s in later)
        assert [(i["type"], i["actor"], i["step_id"]) for i in items if i["actor"]] == self.human[ex]
        for item in items:
            assert item["message"], item


def test_operator_model_check(api: Any, worker: Any, aws: Any, clock: Any) -> None:
    keys = Keys(api)
    by_name = {
        "olivia": (keys.operator, "olivia", "operator"),
        "manager-key": (keys.manager, "manager-key", "operator"),
        "ada": (keys.admin2, "ada", "admin"),
        "victor": (keys.viewer, "victor", "viewer"),
    }
    outcomes: Counter[str] = Counter()
    run_state_machine_as_test(
        lambda: OperatorModel(api, worker, aws, clock, by_name, outcomes),
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        ),
    )
    print(sorted(outcomes.items()))
    # the run reached the interesting places, not only refusals
    for outcome in ("delivery ran", "delivery was a no-op", "cancel -> 200", "approve -> 200"):
        assert outcomes[outcome] > 0, (outcome, outcomes)
