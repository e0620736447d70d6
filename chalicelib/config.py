"""Settings read from the environment once, passed down explicitly.

Importing this module reads nothing; ``Settings.from_env()`` does, with ``os.environ``
as the default source so tests can pass their own mapping.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    catalog_table: str
    executions_table: str
    step_queue: str
    step_dlq: str
    payload_bucket: str
    admin_key: str | None
    endpoint_url: str | None
    #: ``STEPLINE_RETENTION_DAYS``: keep executions this many days after they start (DynamoDB
    #: TTL on ``expires_at``). Unset or 0: kept forever, the default.
    retention_days: int | None = None
    #: ``STEPLINE_ADMIN_KEY_SECRET``: ARN of the Secrets Manager secret whose value is the
    #: bootstrap admin key of a deployed stack (``chalicelib/bootstrap.py``). Unset: none.
    admin_key_secret: str | None = None
    #: ``STEPLINE_PYTHON_MODULES``: comma-separated module prefixes the ``python`` agent may
    #: call. Unset: the samples and ``workflows.`` (local mode); a deployed stack sets only
    #: what the deployment declares (``PythonModules`` in infra/template.json).
    python_modules: tuple[str, ...] | None = None
    #: ``STEPLINE_NOTIFY_FROM`` (else the email agent's ``STEPLINE_EMAIL_FROM``): the sender of
    #: notification emails, an SES-verified identity.
    notify_from: str = "notifications@stepline.invalid"
    #: ``STEPLINE_WEBHOOK_DEDUPE_DAYS``: how long delivery ids of webhooks without a signed
    #: timestamp (GitHub) are remembered, so a captured delivery posted again starts nothing.
    webhook_dedupe_days: int = 30
    #: the aggregator puts an EventBridge event per execution status change (billed per
    #: event); ``STEPLINE_STATUS_EVENTS=disabled`` turns them off for the stage
    status_events: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        stage = env.get("STEPLINE_STAGE", "dev")
        return cls(
            stage=stage,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            catalog_table=env.get("STEPLINE_CATALOG_TABLE", f"stepline-{stage}-catalog"),
            executions_table=env.get("STEPLINE_EXECUTIONS_TABLE", f"stepline-{stage}-executions"),
            step_queue=env.get("STEPLINE_STEP_QUEUE", f"stepline-{stage}-steps"),
            step_dlq=env.get("STEPLINE_STEP_DLQ", f"stepline-{stage}-steps-dlq"),
            payload_bucket=env.get("STEPLINE_PAYLOAD_BUCKET", f"stepline-{stage}-payloads"),
            admin_key=env.get("STEPLINE_ADMIN_KEY") or None,
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            retention_days=_retention(env.get("STEPLINE_RETENTION_DAYS")),
            admin_key_secret=env.get("STEPLINE_ADMIN_KEY_SECRET") or None,
            python_modules=_prefixes(env.get("STEPLINE_PYTHON_MODULES")),
            notify_from=(
                env.get("STEPLINE_NOTIFY_FROM") or env.get("STEPLINE_EMAIL_FROM") or "notifications@stepline.invalid"
            ),
            webhook_dedupe_days=_days("STEPLINE_WEBHOOK_DEDUPE_DAYS", env.get("STEPLINE_WEBHOOK_DEDUPE_DAYS"), 30),
            status_events=_switch("STEPLINE_STATUS_EVENTS", env.get("STEPLINE_STATUS_EVENTS")),
        )


def _switch(name: str, value: str | None) -> bool:
    """``enabled`` (the default when unset or empty) or ``disabled``."""
    text = (value or "enabled").strip().lower()
    if text not in ("enabled", "disabled"):
        raise ValueError(f"{name} must be 'enabled' or 'disabled', not {value!r}")
    return text == "enabled"


def _retention(value: str | None) -> int | None:
    if value is None or value.strip() in ("", "0"):
        return None
    if not value.strip().isdigit():
        raise ValueError(f"STEPLINE_RETENTION_DAYS must be a whole number of days, not {value!r}")
    return int(value)


def _prefixes(value: str | None) -> tuple[str, ...] | None:
    """``"workflows, billing.jobs"`` -> ``("workflows.", "billing.jobs.")``; unset -> None."""
    if value is None:
        return None
    names = [part.strip().rstrip(".") for part in value.split(",")]
    return tuple(f"{name}." for name in names if name)


def _days(name: str, value: str | None, default: int) -> int:
    if value is None or not value.strip():
        return default
    if not value.strip().isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a whole number of days (1 or more), not {value!r}")
    return int(value)


def step_queue_arn(env: Mapping[str, str] | None = None) -> str:
    """The ARN Chalice wires the SQS handler to at import time.

    Only a placeholder for packaging: ``infra/template.json`` merges
    ``GetAtt StepQueue.Arn`` over it (a string loses to the merge template; a name given as
    ``queue=`` would become an ``Fn::Sub`` that the deep merge mixes with ours). Local mode
    and the tests deliver messages to the handler directly and never read it.
    """
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    return env.get("STEPLINE_STEP_QUEUE_ARN") or f"arn:aws:sqs:{settings.region}:000000000000:{settings.step_queue}"


def executions_stream_arn(env: Mapping[str, str] | None = None) -> str:
    """The stream ARN Chalice wires the aggregator to at import time.

    A placeholder for packaging, as ``step_queue_arn``: ``infra/template.json`` merges
    ``GetAtt ExecutionsTable.StreamArn`` over it. Local mode and the tests read the table's
    stream themselves (``chalicelib.local.stream``) and never read this.
    """
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    return env.get("STEPLINE_EXECUTIONS_STREAM_ARN") or (
        f"arn:aws:dynamodb:{settings.region}:000000000000:table/{settings.executions_table}/stream/1970-01-01T00:00:00.000"
    )
