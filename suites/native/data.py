"""Native format: JSON Lines, one sample per line.

    {"id": "phys-01", "image": "images/phys-01.png", "instruction": "...", "category": "physical",
     "description": "optional: what the source image shows"}
    {"id": "multi-01", "images": ["images/person.png", "images/hat.png"], "instruction": "...",
     "category": "multi", "extras": {"num_inference_steps": 20, "width": 768, "height": 1024}}

`image` (or `images`, several input images in order, for multi-image editors) is relative to the JSONL
file's folder and may not leave it. A turn of a multi-turn chain gives `input_from` (the id of the
sample whose edit is its input) instead of `image`:

    {"id": "room-1", "image": "images/room.png", "instruction": "Add a lamp", "category": "room"}
    {"id": "room-2", "input_from": "room-1", "instruction": "Make the lamp red", "category": "room"}
 `extras` are this sample's own pipeline arguments, merged over the
run's `editor.extras` (`width`, `height`, `num_inference_steps`, `guidance_scale`, `negative_prompt` set
the request's own fields) and recorded with the edit. Other fields are kept for the record.
"""

from __future__ import annotations

from pathlib import Path

from suites.shared.samples import Problem, Sample, edit_args_problem, resolve_inside
from suites.shared.jsonl import read_json_lines

REQUIRED = ("id", "instruction", "category")  # and "image", "images" or "input_from"
KNOWN = REQUIRED + ("image", "images", "input_from", "description", "language", "extras")


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    samples, problems = [], []
    base_dir = path.parent
    for line_no, record, error in read_json_lines(path):
        where = f"{path.name}:{line_no}"
        if error:
            problems.append(Problem(where, None, error, line_no))
            continue
        missing = [k for k in REQUIRED if k not in record or record[k] is None]
        chained = record.get("input_from") is not None
        if record.get("image") is None and record.get("images") is None and not chained:
            missing.append("image (or images, or input_from)")
        sample_id = str(record["id"]) if record.get("id") is not None else ""
        if missing:
            problems.append(Problem(where, sample_id or None, f"missing field(s): {', '.join(missing)}", line_no))
            continue
        wrong_type = [k for k in ("image", "instruction", "category") if k in record and not isinstance(record[k], str)]
        images = record.get("images")
        if images is not None and (not isinstance(images, list) or not images
                                   or not all(isinstance(i, str) for i in images)):
            wrong_type.append("images (a non-empty list of paths)")
        if chained and (not isinstance(record["input_from"], (str, int)) or isinstance(record["input_from"], bool)):
            wrong_type.append("input_from (a sample's id)")
        if wrong_type or not isinstance(record["id"], (str, int)):
            problems.append(Problem(
                where, sample_id or None, f"field(s) of the wrong type: {', '.join(wrong_type or ['id'])}", line_no
            ))
            continue
        if record.get("image") is not None and images is not None:
            problems.append(Problem(where, sample_id, "give image or images, not both", line_no))
            continue
        if chained and (record.get("image") is not None or images is not None):
            problems.append(Problem(where, sample_id, "give input_from or image(s), not both: a chain's turn "
                                    "edits the edit that input_from names", line_no))
            continue
        paths = []
        for index, relative in enumerate([] if chained else images if images is not None else [record["image"]]):
            image_path, issue = resolve_inside(base_dir, relative)
            if issue:  # listed here; the sample's other fields are still checked
                problems.append(Problem(where, sample_id, f"images[{index}]: {issue}" if images else issue, line_no))
            paths.append(image_path)
        edit_args = record.get("extras") or {}
        issue = edit_args_problem(edit_args)
        if issue:
            problems.append(Problem(where, sample_id, issue, line_no))
            edit_args = {}
        samples.append(
            Sample(
                id=sample_id,
                category=record["category"],
                instruction=record["instruction"],
                description=str(record.get("description") or ""),
                image_path=paths[0] if paths else None,
                more_images=[p for p in paths[1:] if p is not None] if None not in paths else [],
                input_from=str(record["input_from"]) if chained else "",
                language=str(record.get("language") or ""),
                where=where,
                order=line_no,
                extras={k: v for k, v in record.items() if k not in KNOWN},
                edit_args=edit_args,
            )
        )
    return samples, problems


def looks_like(path: Path, first: dict | None) -> bool:
    return (path.suffix == ".jsonl" and first is not None and "id" in first
            and ("image" in first or "images" in first or "input_from" in first))
