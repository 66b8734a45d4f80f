"""Reading benchmark JSON Lines with a precise location for every bad line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator


def read_json_lines(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line number, record, error) for every non-blank line."""
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield line_no, None, f"not UTF-8 ({exc.reason} at byte {exc.start})"
                continue
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield line_no, None, f"not valid JSON ({exc.msg}, column {exc.colno})"
                continue
            if not isinstance(record, dict):
                yield line_no, None, f"expected a JSON object, got {type(record).__name__}"
                continue
            yield line_no, record, None


def first_record(path: Path) -> dict | None:
    for _, record, _ in read_json_lines(path):
        return record
    return None
