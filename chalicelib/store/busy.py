"""A busy store: which errors mean "try again", and reads that try again before giving up.

DynamoDB answers a request it cannot serve now with throttling (400
``ThrottlingException``, ``ProvisionedThroughputExceededException``...), a 5xx
(``InternalServerError``, ``ServiceUnavailable``) or a dropped connection. None of these
says anything about the data: a read that meets one is tried again. botocore already
retries a few times inside one call; ``ReadRetryingConnection`` adds a second, wider loop
with full-jitter backoff (``chalicelib.backoff``) for every read (``GetItem``, ``Query``,
``BatchGetItem``...), bounded by ``READ_RETRY_SECONDS`` so a request keeps its time. Writes
are not retried here: a retried conditional write must be decided again by its caller
(``ExecutionStore`` raises ``StoreBusy`` for them, and the engine retries).

What outlasts the retries is ``transient``: the HTTP boundary answers it 503 with
``Retry-After`` (``StoreBusy``), never 500; workers let the message come back.

Every ``ReadRetryingConnection`` makes its client from one botocore session per process.
PynamoDB makes a session per connection (and thread), and each model class has its own
connection: every session loads botocore's endpoint and service data again, about 10 MB of
memory and 0.1 s of CPU (a second or more on a small Lambda) the first time a model is used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from botocore.session import Session, get_session
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException

from chalicelib.backoff import Backoff
from chalicelib.store.executions import BUSY_CODES, _busy

#: Operations that only read: trying one again changes nothing.
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable"})
#: How long one read may keep trying (sleeps included) before its error is raised.
READ_RETRY_SECONDS = 2.0
#: Codes of a service that is failing or overloaded for now, beyond the store's own ``BUSY_CODES``.
UNAVAILABLE_CODES = frozenset({"ServiceUnavailable", "ServiceUnavailableException", "InternalError", "SlowDown"})
#: What the store layer raises for AWS trouble (PynamoDB's wrappers, botocore's own).
STORE_ERRORS: tuple[type[Exception], ...] = (PynamoDBException, ClientError, BotoCoreError)


def transient(error: BaseException) -> bool:
    """True when ``error`` says the store (or another AWS service) is busy or failing for now:
    throttling, a transaction collision, a 5xx, a dropped or timed-out connection."""
    if isinstance(error, PynamoDBException):
        if _busy(error):
            return True
        cause = getattr(error, "cause", None)
        return cause is not None and cause is not error and transient(cause)
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code")
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return code in BUSY_CODES or code in UNAVAILABLE_CODES or status >= 500
    return isinstance(error, BotocoreConnectionError | HTTPClientError)


def retried_read(call: Callable[[], Any], seconds: float = READ_RETRY_SECONDS, backoff: Backoff | None = None) -> Any:
    """``call()``, tried again with jittered backoff while it fails ``transient``-ly, for at most
    ``seconds``; then the last error is raised."""
    backoff = backoff or Backoff()
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except STORE_ERRORS as error:
            if not transient(error) or not backoff.wait(_Until(deadline)):
                raise


class _Until:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


#: Guards the shared session: botocore's session and client creation are not thread-safe.
_session_lock = threading.RLock()
_session: Session | None = None


def new_session() -> None:
    """Let the next client come from a new shared session (``models.bind`` calls this when it
    rebuilds the connections, so their clients carry the botocore handlers registered since)."""
    global _session
    with _session_lock:
        _session = None


class ReadRetryingConnection(Connection):
    """PynamoDB's connection, with every read retried while the store is busy (``retried_read``).

    ``dispatch`` is the one method every PynamoDB operation goes through, so models, indexes,
    batch reads and transactions are all covered without a wrapper at each call site. Its
    client comes from the process's shared botocore session (see the module's docstring).
    """

    @property
    def session(self) -> Session:
        global _session
        if self._aws_access_key_id and self._aws_secret_access_key:
            return super().session  # credentials of its own: PynamoDB's session with them
        with _session_lock:
            if _session is None:
                _session = get_session()
            return _session

    @property
    def client(self) -> Any:
        with _session_lock:  # the first access creates the client from the shared session
            return super().client

    def dispatch(self, operation_name: str, operation_kwargs: dict[str, Any]) -> dict[str, Any]:
        if operation_name not in READ_OPERATIONS:
            return super().dispatch(operation_name, operation_kwargs)
        answer: dict[str, Any] = retried_read(
            lambda: super(ReadRetryingConnection, self).dispatch(operation_name, operation_kwargs)
        )
        return answer
