"""infra/index_steps.py: a deployed stack's indexes reach a new template's one GSI per update."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))

from index_steps import gsi_steps, step_templates  # noqa: E402  (infra/ is a folder of scripts, not a package)


def _gsi(name: str, hash_attr: str, range_attr: str = "l_sk") -> dict[str, Any]:
    keys = [{"AttributeName": hash_attr, "KeyType": "HASH"}, {"AttributeName": range_attr, "KeyType": "RANGE"}]
    return {"IndexName": name, "KeySchema": keys, "Projection": {"ProjectionType": "KEYS_ONLY"}}


def _names(step: list[dict[str, Any]]) -> list[str]:
    return sorted(g["IndexName"] for g in step)


def test_additions_come_first_then_removals_one_change_each() -> None:
    old = [_gsi("a", "x"), _gsi("b", "y"), _gsi("keep", "k")]
    new = [_gsi("keep", "k"), _gsi("c", "z"), _gsi("d", "w")]
    steps = gsi_steps(old, new)
    assert [_names(s) for s in steps] == [
        ["a", "b", "c", "keep"],
        ["a", "b", "c", "d", "keep"],
        ["b", "c", "d", "keep"],
        ["c", "d", "keep"],
    ]


def test_a_redefined_index_is_deleted_before_it_is_created_again() -> None:
    steps = gsi_steps([_gsi("a", "x")], [_gsi("a", "x", "other")])
    assert steps == [[], [_gsi("a", "x", "other")]]


def test_the_previous_release_takes_ten_updates_and_each_template_defines_only_used_keys() -> None:
    previous = json.loads(
        subprocess.run(
            ["git", "-C", str(ROOT), "show", "ba0122a:infra/template.json"], check=True, capture_output=True, text=True
        ).stdout
    )
    template = json.loads((ROOT / "infra" / "template.json").read_text())
    steps = step_templates(previous, template)
    assert len(steps) == 10 and steps[-1] == template
    before = previous["Resources"]["ExecutionsTable"]["Properties"]["GlobalSecondaryIndexes"]
    for step in steps:
        props = step["Resources"]["ExecutionsTable"]["Properties"]
        now = props["GlobalSecondaryIndexes"]
        assert len({g["IndexName"] for g in now} ^ {g["IndexName"] for g in before}) == 1  # one change
        used = {k["AttributeName"] for g in now for k in g["KeySchema"]} | {"pk", "sk"}
        assert {a["AttributeName"] for a in props["AttributeDefinitions"]} == used
        # the catalog table is not touched
        assert step["Resources"]["CatalogTable"] == template["Resources"]["CatalogTable"]
        before = now
    # after the two additions both new indexes exist and the backfill's by_month still does
    second = set(_names(steps[1]["Resources"]["ExecutionsTable"]["Properties"]["GlobalSecondaryIndexes"]))
    assert {"list_wf", "list_month", "by_month"} <= second
