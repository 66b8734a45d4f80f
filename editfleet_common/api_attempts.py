"""How an API editor's failure says how many requests it sent: "... (after N attempt(s))".

The API editor (editor_service/api_editor/) ends the message of every failure that reached the
provider so; the orchestrator's run totals (orchestrator/api_usage.py) count the requests of the
edits that brought no image from it. One pattern for both sides."""

from __future__ import annotations

import re

ATTEMPTS_NOTE = re.compile(r"after (\d+) attempt\(s\)")


def note(attempts: int) -> str:
    return f"after {attempts} attempt(s)"


def requests_in(message: str) -> tuple[int, int]:
    """(requests, calls) a recorded failure's message names: one "after N attempt(s)" per call to the API
    editor (a failure given up after several calls joins their messages)."""
    found = [int(n) for n in ATTEMPTS_NOTE.findall(message or "")]
    return sum(found), len(found)
