"""Recompute workflows' active counts from the executions lists.

    python -m chalicelib.tools.rebuild_counts [--workflow WF_ID]

The stream aggregator keeps each workflow's count of running and waiting executions in its
counter shards (``COUNTERS#<k>``). This command counts them again from the list index (one
paginated Query per workflow and active status, never a Scan) and overwrites the shards with
the result (and the pre-shard ``COUNTERS`` item with 0). Use it after an upgrade from a
release that counted inside its transactions, or if a count is ever doubted. A change the
aggregator applies while the command runs can be overwritten: run it when the workflow is
quiet, or run it twice.

It uses the same settings as the functions (``STEPLINE_*`` table names, ``AWS_*``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from chalicelib.config import Settings
from chalicelib.domain.timefmt import iso, utc_now
from chalicelib.store import Store
from chalicelib.store.aggregates import AggregateStore
from chalicelib.store.lists import ListFilter
from chalicelib.store.stats import COUNTER_SHARDS, shard_of

ACTIVE = ("running", "waiting")
PAGE = 100


def active_by_shard(store: Store, workflow_id: str) -> list[int]:
    """How many of the workflow's executions are running or waiting, per counter shard."""
    shards = [0] * COUNTER_SHARDS
    now = iso(utc_now())
    for status in ACTIVE:
        token = None
        while True:
            page = store.executions.list(ListFilter(workflow_id, status), PAGE, token, now)
            for item in page.items:
                shards[shard_of(item.execution_id)] += 1
            token = page.next_token
            if not token:
                break
    return shards


def rebuild(store: Store, workflow_ids: Iterable[str] | None = None) -> dict[str, int]:
    """Rebuild the counts of ``workflow_ids`` (default: every workflow); returns workflow id -> count."""
    counters = AggregateStore()
    ids = list(workflow_ids) if workflow_ids is not None else [w.workflow_id for w in store.catalog.list_workflows()]
    out = {}
    for workflow_id in ids:
        shards = active_by_shard(store, workflow_id)
        counters.set_active(workflow_id, shards)
        out[workflow_id] = sum(shards)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflow", action="append", help="only this workflow (repeatable)")
    args = parser.parse_args(argv)
    counts = rebuild(Store.from_settings(Settings.from_env()), args.workflow)
    for workflow_id, count in sorted(counts.items()):
        print(f"{workflow_id}\t{count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
