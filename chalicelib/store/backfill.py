"""One-off backfill of the list keys on heads written before the two list indexes existed.

    python -m chalicelib.store.backfill        # with the stack's AWS_REGION and table names

Walks the start months from today back to the first one (the epoch marker) on the month
index every earlier layout has (``by_month``: ``g_month`` = ``YYYY-MM``, keys only), reads
the heads with BatchGetItem, 100 at a time, and gives each head that lacks them its
``g_wf``/``l_month``/``l_sk`` (store/lists.py). No Scan: Queries and batch reads, page by
page. Idempotent: a head that has its keys is skipped, so it can be run again (after an
interruption, or to check: a second run updates nothing). Each update is conditional on
the status the head was read with, so a status change made meanwhile by the running code
(which keeps ``l_sk`` itself) is never overwritten: that head is read again.

It needs the ``by_month`` index, so it runs between adding the new indexes and removing
the old ones (README, "Upgrading").
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.config import Settings
from chalicelib.domain.timefmt import iso, utc_now
from chalicelib.store.lists import HEAD_SK, ExecutionLists, previous_month, summary_keys
from chalicelib.store.models import ExecutionsMeta, Summary, bind

#: heads read per BatchGetItem (DynamoDB's most)
BATCH = 100


class _LegacyByMonth(GlobalSecondaryIndex["_LegacyRow"]):
    class Meta:
        index_name = "by_month"
        projection = KeysOnlyProjection()

    g_month = UnicodeAttribute(hash_key=True)
    start_sk = UnicodeAttribute(range_key=True)


class _LegacyRow(Model):
    """A row of the previous layouts' ``by_month`` index (only the keys are read)."""

    class Meta(ExecutionsMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    g_month = UnicodeAttribute(null=True)
    start_sk = UnicodeAttribute(null=True)
    by_month = _LegacyByMonth()


@dataclass
class BackfillReport:
    months: int = 0
    heads: int = 0
    updated: int = 0
    already: int = 0
    retried: int = 0


def backfill(settings: Settings, now: str | None = None) -> BackfillReport:
    """Give every head of every start month its list keys; see the module's docstring."""
    bind(settings)
    report = BackfillReport()
    epoch = ExecutionLists().epoch()
    if epoch is None:
        return report
    month = (now or iso(utc_now()))[:7]
    while month >= epoch:
        report.months += 1
        batch: list[str] = []
        for row in _LegacyRow.by_month.query(month, page_size=BATCH):
            batch.append(row.pk)
            if len(batch) == BATCH:
                _apply(batch, report)
                batch = []
        if batch:
            _apply(batch, report)
        month = previous_month(month)
    return report


def _apply(pks: list[str], report: BackfillReport) -> None:
    for head in Summary.batch_get([(pk, HEAD_SK) for pk in pks]):
        report.heads += 1
        _update(head, report)


def _update(head: Summary, report: BackfillReport, tries: int = 5) -> None:
    for _ in range(tries):
        keys = summary_keys(
            head.workflow_id, head.status, head.trigger_type, head.started_at, execution_id=head.execution_id
        )
        if all(getattr(head, name) == value for name, value in keys.items()):
            report.already += 1
            return
        try:
            # precondition: the status is the one the keys were computed from
            head.update(
                actions=[getattr(Summary, name).set(value) for name, value in keys.items()],
                condition=Summary.status == head.status,
            )
            report.updated += 1
            return
        except UpdateError as error:
            if getattr(error, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
        report.retried += 1
        head = Summary.get(head.pk, HEAD_SK, consistent_read=True)
    raise RuntimeError(f"head {head.pk} kept changing; run the backfill again")


def main(argv: list[str] | None = None) -> int:
    report = backfill(Settings.from_env())
    print(json.dumps(asdict(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = ["BackfillReport", "backfill", "main"]
