"""The seed project's format: one JSON list of items.

    [{"subset": "物理", "src_img_b64": "<base64 PNG/JPEG>", "edit_instruction_en": "...",
      "original_description_en": "...", "original_image_path": "物理/0001.png"}, ...]

The category is `subset`; the image is embedded (`original_image_path` is kept as a record only).
Items carry no id: the id is `<subset>_<n>` with n the item's 0-based index within its subset,
the seed's own numbering (an explicit `id` field, when present, wins).
"""

from __future__ import annotations

import binascii
import json
from pathlib import Path

from .base import Problem, Sample, decode_b64

REQUIRED = ("subset", "src_img_b64", "edit_instruction_en")
# The seed's "Average score" pools every sample.
HEADLINE = "micro_mean"


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        return [], [Problem(path.name, None, f"not UTF-8 ({exc.reason})")]
    except json.JSONDecodeError as exc:
        return [], [Problem(path.name, None, f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})")]
    if isinstance(items, dict) and isinstance(items.get("data"), list):
        items = items["data"]
    if not isinstance(items, list):
        return [], [Problem(path.name, None, f"expected a JSON list of items, got {type(items).__name__}")]

    samples, problems = [], []
    per_subset: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"{path.name}[{index}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, None, f"expected an object, got {type(item).__name__}", index))
            continue
        subset = item.get("subset")
        n = per_subset.get(str(subset), 0)
        per_subset[str(subset)] = n + 1
        sample_id = str(item["id"]) if item.get("id") is not None else f"{subset}_{n:04d}"
        missing = [k for k in REQUIRED if not isinstance(item.get(k), str)]
        if missing:
            problems.append(Problem(where, sample_id, f"missing or non-string field(s): {', '.join(missing)}", index))
            continue
        image = None
        try:
            image = decode_b64(item["src_img_b64"]) or None
            if image is None:
                problems.append(Problem(where, sample_id, "src_img_b64 is empty", index))
        except (binascii.Error, ValueError) as exc:
            problems.append(Problem(where, sample_id, f"src_img_b64 is not valid base64 ({exc})", index))
        samples.append(
            Sample(
                id=sample_id,
                category=subset,
                instruction=item["edit_instruction_en"],
                description=str(item.get("original_description_en") or ""),
                image_bytes=image,
                language="en",
                where=where,
                order=index,
                extras={k: v for k, v in item.items() if k not in REQUIRED + ("original_description_en", "id")},
            )
        )
    return samples, problems


def looks_like(path: Path, first: dict | None) -> bool:
    if path.suffix != ".json":
        return False
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    return head.startswith(b"[") or head.startswith(b"{")
