"""docs/services.md's scorer flag table has a row of its own for every bound of scorer_service/guards.py,
with the default the code has (issue 28: the table said "see --help" for all nine); the editor's table
has its --max-id-chars. Read from the parsers, so a new or changed flag fails here until documented."""

from __future__ import annotations

import argparse

from editfleet_common.launch import REPO_ROOT
from scorer_service import guards


def table_rows(section: str) -> dict[str, list[str]]:
    """The first flag table under `## <section>`: a row's first flag -> its cells."""
    text = (REPO_ROOT / "docs" / "services.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in body.splitlines():
        if line.startswith("| `--"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0].split("`")[1]] = cells
    return rows


def test_every_guard_flag_has_its_row_and_default():
    parser = argparse.ArgumentParser()
    guards.add_flags(parser)
    flags = {a.option_strings[0]: a.default for a in parser._actions if a.option_strings and a.dest != "help"}
    assert len(flags) == 9
    rows = table_rows("Scorer service")
    for flag, default in flags.items():
        assert flag in rows, f"{flag}: no row of its own in docs/services.md's scorer table"
        assert rows[flag][0] == f"`{flag}`", rows[flag]  # one flag per row
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        assert rows[flag][1] == shown, (flag, rows[flag])
    assert rows["--max-id-chars"][1] == "512" == table_rows("Editor service")["--max-id-chars"][1]
