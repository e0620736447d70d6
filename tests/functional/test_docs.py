"""Docs are code: the API reference names every route, and the README links only what a clone has."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_api_reference_names_every_route_of_the_app() -> None:
    from app import app

    reference = (ROOT / "docs" / "api.md").read_text()
    missing = [
        f"{method} {path}"
        for path, methods in app.routes.items()
        for method in methods
        if f"`{method} {path}`" not in reference
    ]
    assert not missing, "docs/api.md does not describe: " + ", ".join(sorted(missing))


def test_readme_and_docs_link_only_files_in_the_repository() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        assert "../shared" not in text, f"{page.name} points outside the repository"
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            assert (page.parent / target).exists(), f"{page.name} links {target}, which is not in the repository"


def test_readme_links_the_api_reference() -> None:
    assert "(docs/api.md)" in (ROOT / "README.md").read_text()


def _design_table_paths() -> list[str]:
    """Every file or folder the module table of docs/design.md names, as a repository path."""
    text = (ROOT / "docs" / "design.md").read_text()
    table = text.split("## Modules", 1)[1].split("\n## ", 1)[0]
    roots = ("chalicelib/", "stepline_cli/", "app.py", "infra/", "bench/", "tests/")
    paths: list[str] = []
    for row in table.splitlines():
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        base = ""
        for token in re.findall(r"`([^`]+)`", cells[0]):
            if not token.startswith(roots):
                token = f"{base}{token}" if "/" not in token else f"chalicelib/{token}"
            base = token if token.endswith("/") else token.rsplit("/", 1)[0] + "/"
            paths.append(token)
        folder = paths[-1] if paths and paths[-1].endswith("/") else None
        if folder:  # files named in a folder's description live in that folder
            paths += [folder + name for name in re.findall(r"`([a-z_]+\.py)`", cells[1])]
    return paths


def test_every_module_the_design_table_names_exists() -> None:
    paths = _design_table_paths()
    assert "chalicelib/domain/machine.py" in paths and "chalicelib/engine/runner.py" in paths, paths
    missing = [path for path in paths if not (ROOT / path).exists()]
    assert not missing, f"docs/design.md names modules that do not exist: {missing}"


def test_code_and_docs_say_what_and_why_not_which_ticket() -> None:
    pattern = re.compile(r"\bissues? #?\d+", re.IGNORECASE)
    roots = ["app.py", "README.md", "chalicelib", "docs", "stepline_cli", "bench", "infra", "tests"]
    files = [ROOT / r for r in roots if (ROOT / r).is_file()]
    files += [
        p for r in roots if (ROOT / r).is_dir() for p in (ROOT / r).rglob("*") if p.suffix in {".py", ".md", ".js"}
    ]
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in files
        if path.resolve() != Path(__file__).resolve()
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, f"issue numbers in code or docs: {found}"
