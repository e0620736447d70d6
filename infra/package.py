"""Build Stepline's one deployable CloudFormation template, offline, and lint it.

    python infra/package.py --stage dev --out build

1. Copies ``infra/template.json`` with the ``StageName`` parameter pinned to the Chalice
   stage (default and only allowed value), so a ``prod`` package cannot be deployed with
   ``dev`` names that its ``policy-prod.json`` does not grant.
2. Runs ``chalice package --stage <stage> --merge-template <that copy> <out>``: Chalice's
   functions, API and roles, deep-merged with our tables, queues, bucket, log groups and
   the function settings that point at them (``<out>/sam.json`` + ``deployment.zip``).
3. Runs ``cfn-lint`` on ``<out>/sam.json``; any error fails the build.

Needs no AWS account: nothing here calls AWS.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "infra" / "template.json"


def _tool(name: str) -> str:
    """The console script installed next to this interpreter (the project's venv)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def stage_template(stage: str, template: Path = TEMPLATE) -> dict:
    data = json.loads(template.read_text())
    parameter = data["Parameters"]["StageName"]
    parameter["Default"] = stage
    parameter["AllowedValues"] = [stage]
    parameter.pop("AllowedPattern", None)
    return data


def package(stage: str, out: Path, lint: bool = True) -> Path:
    """Package the app for ``stage`` into ``out``; returns the path of the template."""
    env = {**os.environ}
    # chalice insists on a region, although the template resolves it at deploy time
    env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION", "us-east-1"))
    out = out.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        merge = Path(tmp) / f"merge-{stage}.json"
        merge.write_text(json.dumps(stage_template(stage), indent=1))
        subprocess.run([_tool("chalice"), "--project-dir", str(ROOT), "package", "--stage", stage,
                        "--merge-template", str(merge), str(out)], check=True, env=env, cwd=ROOT)
    result = out / "sam.json"
    if lint:
        subprocess.run([_tool("cfn-lint"), str(result)], check=True, cwd=ROOT)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev", help="Chalice stage (dev or prod)")
    parser.add_argument("--out", default=str(ROOT / "build"), help="output directory")
    parser.add_argument("--no-lint", action="store_true", help="skip cfn-lint")
    args = parser.parse_args(argv)
    try:
        result = package(args.stage, Path(args.out), lint=not args.no_lint)
    except subprocess.CalledProcessError as error:
        print(f"packaging failed: {' '.join(map(str, error.cmd[:3]))}... exited {error.returncode}", file=sys.stderr)
        return error.returncode or 1
    print(f"{result} (stage {args.stage}) passed cfn-lint" if not args.no_lint else str(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
