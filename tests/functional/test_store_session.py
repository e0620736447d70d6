"""Every model's connection makes its DynamoDB client from one botocore session per process
(``chalicelib.store.busy``): a session per model class loaded botocore's data again for
each one, about 10 MB and 0.1 s of CPU per model. A rebinding starts a new session, so
clients made after it carry the botocore handlers registered since."""

from __future__ import annotations

import threading
from typing import Any

from pynamodb.models import Model

from chalicelib.store.busy import ReadRetryingConnection
from chalicelib.store.models import bind, bound_models, connection
from tests.functional.operator_kit import tf, workflow


def _bound() -> list[type[Model]]:
    """The models bound so far (a store binds its models when it is built)."""
    return [
        m for m in bound_models(Model) if isinstance(getattr(m._connection, "connection", None), ReadRetryingConnection)
    ]


def _sessions() -> set[int]:
    connections = [connection()] + [model._get_connection().connection for model in _bound()]
    return {id(c.session) for c in connections}


def test_the_api_and_the_worker_use_one_session_for_every_model(api: Any, worker: Any) -> None:
    wf = api.create_workflow(workflow(tf("first", "input"), tf("second", "prev")))
    execution = api.start(wf, {"customer": "ACME"})
    worker.drain()
    assert api.execution(execution["execution_id"])["status"] == "completed"
    assert len(_bound()) > 10
    assert len(_sessions()) == 1


def test_clients_made_at_once_from_several_threads_share_the_new_session(aws: Any, api: Any) -> None:
    wf = api.create_workflow(workflow(tf("only", "input")))
    before = _sessions()
    bind(aws.settings, fresh=True)  # new connections: each makes its client on first use
    models = _bound()
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(models))

    def first_use(model: type[Model]) -> None:
        try:
            barrier.wait()
            model._get_connection().connection.client  # noqa: B018 - the first access creates the client
        except BaseException as error:  # reported below, with the model that raised it
            errors.append(error)

    threads = [threading.Thread(target=first_use, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    after = _sessions()
    assert len(after) == 1 and after != before
    status, body = api.post(f"/workflows/{wf}/executions", {"inputs": {}})  # the new clients work
    assert status == 201, body
