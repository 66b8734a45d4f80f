"""The documentation agrees with the code: the reference pages of docs/reference/ are what
tools/gen_docs.py makes of the click commands, the run config's dataclasses, the Setting tables and
the suite catalog (a flag, key or suite added without `make docs` fails here), and every relative
link of README.md and docs/ points at a file that exists (and, into a Markdown page, at a heading
it has)."""

from __future__ import annotations

import re
from pathlib import Path

from tools import gen_docs

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def test_reference_pages_match_the_code():
    stale = gen_docs.differing()
    assert not stale, (f"{', '.join(stale)} differ from the code: run `make docs` "
                       "(.venv/orchestrator/bin/python tools/gen_docs.py) and commit the pages")


def test_check_mode_agrees():
    assert gen_docs.main(["--check"]) == 0


def prose(text: str) -> str:
    """The page without its fenced code blocks and inline code spans (links there are not links)."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(page: Path) -> set[str]:
    """The heading anchors GitHub gives a Markdown page."""
    found: set[str] = set()
    for line in prose(page.read_text(encoding="utf-8").replace("`", "")).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


def test_every_relative_link_points_at_something_that_exists():
    assert (REPO / "docs").is_dir() and len(PAGES) > 1
    broken = []
    for page in PAGES:
        for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
            if SCHEME.match(target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(REPO)}: {target}"
            if not dest.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{where} (no heading #{anchor} in {dest.relative_to(REPO)})")
    assert not broken, "broken links:\n  " + "\n  ".join(broken)
