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
