"""Build Stepline's one deployable CloudFormation template, offline, and lint it.

    python infra/package.py --stage dev --out build

1. Copies ``infra/template.json`` with the ``StageName`` parameter pinned to the Chalice
   stage (default and only allowed value), so a ``prod`` package cannot be deployed with
   ``dev`` names that its ``policy-prod.json`` does not grant.
2. Runs ``chalice package --stage <stage> --merge-template <that copy> <out>``: Chalice's
   functions, API and roles, deep-merged with our tables, queues, bucket, log groups and
   the function settings that point at them (``<out>/sam.json`` + ``deployment.zip``).
3. Slims ``deployment.zip`` for Lambda's Python runtime (``slim_zip``): drops boto3, botocore
   and s3transfer, which the runtime provides (30 of the 37 MB unzipped; docs/design.md has
   the measurements), and the sample callables (local mode only; the sample definitions
   stay, for ``GET /templates``), and adds compiled
   bytecode, which Lambda's read-only /var/task could never cache.
4. Runs ``cfn-lint`` on ``<out>/sam.json``; any error fails the build.

Needs no AWS account: nothing here calls AWS.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
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


#: Top-level zip entries Lambda's Python runtime already has (the AWS SDK), and ours that only
#: local mode uses. A path matches an entry if it is the entry or starts with ``entry/``.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
LOCAL_ONLY = ("chalicelib/samples/callables.py",)  # the sample definitions stay: GET /templates


def _dropped(name: str) -> bool:
    top = name.split("/", 1)[0]
    if top.split("-", 1)[0] in RUNTIME_PROVIDED and (top in RUNTIME_PROVIDED or top.endswith(".dist-info")):
        return True
    return any(name == entry or name.startswith(entry + "/") for entry in LOCAL_ONLY)


def slim_zip(path: Path, runtime: str) -> None:
    """Rewrite Chalice's zip without what the runtime provides or only local mode uses, plus
    ``.pyc`` files (unchecked-hash: valid whatever the files' times) when this interpreter is
    the runtime's Python version."""
    compile_here = runtime == f"python{sys.version_info.major}.{sys.version_info.minor}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "task"
        with zipfile.ZipFile(path) as source:
            for info in source.infolist():
                if not _dropped(info.filename):
                    source.extract(info, root)
        if compile_here:
            compileall.compile_dir(
                str(root),
                quiet=2,
                workers=1,
                ddir="/var/task",
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        slim = path.with_suffix(".slim")
        with zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
            for file in sorted(p for p in root.rglob("*") if p.is_file()):
                info = zipfile.ZipInfo(file.relative_to(root).as_posix(), date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16  # world-readable, as Lambda requires
                info.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(info, file.read_bytes())
        shutil.move(slim, path)


def package(stage: str, out: Path, lint: bool = True) -> Path:
    """Package the app for ``stage`` into ``out``; returns the path of the template."""
    env = {**os.environ}
    # chalice insists on a region, although the template resolves it at deploy time
    env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION", "us-east-1"))
    out = out.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        merge = Path(tmp) / f"merge-{stage}.json"
        merge.write_text(json.dumps(stage_template(stage), indent=1))
        subprocess.run(
            [
                _tool("chalice"),
                "--project-dir",
                str(ROOT),
                "package",
                "--stage",
                stage,
                "--merge-template",
                str(merge),
                str(out),
            ],
            check=True,
            env=env,
            cwd=ROOT,
        )
    result = out / "sam.json"
    runtime = json.loads(result.read_text())["Resources"]["APIHandler"]["Properties"]["Runtime"]
    slim_zip(out / "deployment.zip", runtime)
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
