"""LabBench's data: {"labbench": 1, "items": [{"uid": "a1", "picture": "a1.png", "ask": "...", "kind": "..."}]}."""

from __future__ import annotations

import json
from pathlib import Path

from suites.shared.samples import Problem, Sample, resolve_inside


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [], [Problem(path.name, None, f"not a LabBench file ({exc})")]
    samples, problems = [], []
    for order, item in enumerate(data.get("items") or []):
        where = f"{path.name}[{order}]"
        picture, issue = resolve_inside(path.parent, str(item.get("picture", "")))
        if issue:
            problems.append(Problem(where, item.get("uid"), issue, order))
        samples.append(Sample(id=str(item["uid"]), category=str(item["kind"]), instruction=str(item["ask"]),
                              image_path=picture, where=where, order=order, variables={"hint": str(item["kind"])}))
    return samples, problems


def looks_like(path: Path, first: dict | None) -> bool:
    if path.suffix != ".json":
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("labbench") == 1
    except (OSError, ValueError, AttributeError):
        return False
