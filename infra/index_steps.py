"""The stack updates that take a deployed stack's table indexes to a new template's, one GSI each.

    aws cloudformation get-template --stack-name stepline-prod --query TemplateBody > build/previous.json
    python infra/index_steps.py --previous build/previous.json --template build/packaged.json --out build/steps

CloudFormation (DynamoDB underneath) creates or deletes only one global secondary index per
table update, so a release that changes several cannot be deployed in one go. This writes
``step-1.json`` ... ``step-N.json``: copies of ``--template`` whose tables each differ from the
step before by one index, the new indexes added first (the new code reads them) and the old
ones removed after (run the list backfill between the two, README "Upgrading"); the last
step is ``--template`` itself. Each step's ``AttributeDefinitions`` name exactly the key
attributes it uses, as CloudFormation requires. Deploy them in order with the usual
``aws cloudformation deploy`` command. Needs no AWS account: nothing here calls AWS.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

Template = dict[str, Any]


def _tables(template: Template) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::DynamoDB::Table"
    }


def gsi_steps(current: list[dict[str, Any]], target: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The index lists a table goes through from ``current`` to ``target``, one change each.

    Additions first, then deletions; an index whose definition changed under the same name
    is deleted, then created again (DynamoDB cannot change an index's keys in place).
    """
    wanted = {g["IndexName"]: g for g in target}
    have = {g["IndexName"]: g for g in current}
    changed = [name for name in have if name in wanted and have[name] != wanted[name]]
    steps: list[list[dict[str, Any]]] = []
    state = list(current)
    for name in changed:  # a redefined index goes first: its name is taken
        state = [g for g in state if g["IndexName"] != name]
        steps.append(list(state))
    for name, gsi in wanted.items():
        if name not in have or name in changed:
            state = [*state, gsi]
            steps.append(list(state))
    for name in have:
        if name not in wanted:
            state = [g for g in state if g["IndexName"] != name]
            steps.append(list(state))
    return steps


def _with_indexes(props: dict[str, Any], previous: dict[str, Any], gsis: list[dict[str, Any]]) -> dict[str, Any]:
    types = {
        a["AttributeName"]: a["AttributeType"]
        for a in previous.get("AttributeDefinitions", []) + props.get("AttributeDefinitions", [])
    }
    used = [k["AttributeName"] for k in props["KeySchema"]]
    used += [k["AttributeName"] for g in gsis for k in g["KeySchema"] if k["AttributeName"] not in used]
    out = dict(props)
    out["AttributeDefinitions"] = [{"AttributeName": a, "AttributeType": types[a]} for a in dict.fromkeys(used)]
    if gsis:
        out["GlobalSecondaryIndexes"] = gsis
    else:
        out.pop("GlobalSecondaryIndexes", None)
    return out


def step_templates(previous: Template, template: Template) -> list[Template]:
    """One template per index change (see the module's docstring); ``template`` is the last."""
    before, after = _tables(previous), _tables(template)
    per_table = {
        name: gsi_steps(before[name].get("GlobalSecondaryIndexes", []), props.get("GlobalSecondaryIndexes", []))
        for name, props in after.items()
        if name in before
    }
    current = {name: before[name].get("GlobalSecondaryIndexes", []) for name in per_table}
    out: list[Template] = []
    # tables are independent: step k changes every table that still has a k-th change
    for k in range(max((len(s) for s in per_table.values()), default=0)):
        step = copy.deepcopy(template)
        for name, steps in per_table.items():
            if k < len(steps):
                current[name] = steps[k]
            props = step["Resources"][name]["Properties"]
            step["Resources"][name]["Properties"] = _with_indexes(props, before[name], current[name])
        out.append(step)
    if out:
        out[-1] = template
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--previous", required=True, type=Path, help="the deployed stack's template (JSON)")
    parser.add_argument("--template", required=True, type=Path, help="the new release's packaged template")
    parser.add_argument("--out", required=True, type=Path, help="folder for step-1.json ... step-N.json")
    args = parser.parse_args(argv)
    steps = step_templates(json.loads(args.previous.read_text()), json.loads(args.template.read_text()))
    args.out.mkdir(parents=True, exist_ok=True)
    for number, step in enumerate(steps, 1):
        (args.out / f"step-{number}.json").write_text(json.dumps(step, indent=2) + "\n")
    print(f"{len(steps)} stack update(s): deploy {args.out}/step-1.json ... step-{len(steps)}.json in order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
