"""Native format: JSON Lines, one sample per line.

    {"id": "phys-01", "image": "images/phys-01.png", "instruction": "...", "category": "physical",
     "description": "optional: what the source image shows"}

`image` is relative to the JSONL file's folder and may not leave it. Other fields are kept as extras.
"""

from __future__ import annotations

from pathlib import Path

from .base import Problem, Sample, resolve_inside
from .jsonl import read_json_lines

REQUIRED = ("id", "image", "instruction", "category")


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    samples, problems = [], []
    base_dir = path.parent
    for line_no, record, error in read_json_lines(path):
        where = f"{path.name}:{line_no}"
        if error:
            problems.append(Problem(where, None, error, line_no))
            continue
        missing = [k for k in REQUIRED if k not in record or record[k] is None]
        sample_id = str(record["id"]) if record.get("id") is not None else ""
        if missing:
            problems.append(Problem(where, sample_id or None, f"missing field(s): {', '.join(missing)}", line_no))
            continue
        wrong_type = [k for k in ("image", "instruction", "category") if not isinstance(record[k], str)]
        if wrong_type or not isinstance(record["id"], (str, int)):
            problems.append(Problem(
                where, sample_id or None, f"field(s) of the wrong type: {', '.join(wrong_type or ['id'])}", line_no
            ))
            continue
        image_path, issue = resolve_inside(base_dir, record["image"])
        if issue:  # listed here; the sample's other fields are still checked
            problems.append(Problem(where, sample_id, issue, line_no))
        samples.append(
            Sample(
                id=sample_id,
                category=record["category"],
                instruction=record["instruction"],
                description=str(record.get("description") or ""),
                image_path=image_path,
                language=str(record.get("language") or ""),
                where=where,
                order=line_no,
                extras={k: v for k, v in record.items() if k not in REQUIRED + ("description", "language")},
            )
        )
    return samples, problems


def looks_like(path: Path, first: dict | None) -> bool:
    return path.suffix == ".jsonl" and first is not None and "id" in first and "image" in first
