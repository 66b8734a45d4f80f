"""The seed project's format: one JSON list of items.

    [{"subset": "物理", "src_img_b64": "<base64 PNG/JPEG>", "edit_instruction_en": "...",
      "original_description_en": "...", "original_image_path": "物理/0001.png"}, ...]

The category is `subset`; the image is embedded (`original_image_path` is kept as a record only).
Items carry no id: the id is `<subset>_<n>` with n the item's 0-based index within its subset,
the seed's own numbering (an explicit `id` field, when present, wins).

The record reading (`load` with more `required` fields, `first_item`) is shared with the formats
built on the seed's records (RE-Edit: benchmarks/reedit.py).
"""

from __future__ import annotations

import binascii
import json
from pathlib import Path

from suites.shared.samples import Problem, Sample, decode_b64

REQUIRED = ("subset", "src_img_b64", "edit_instruction_en")
# What becomes a Sample field; every other field of an item stays in Sample.extras.
CONSUMED = ("subset", "src_img_b64", "edit_instruction_en", "original_description_en", "id")
# The seed's "Average score" pools every sample.


def load(path: Path, options: dict, *, required: tuple[str, ...] = REQUIRED) -> tuple[list[Sample], list[Problem]]:
    """Every item as a Sample; an item lacking one of `required` (as a string) is a problem naming it."""
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
        missing = [k for k in required if not isinstance(item.get(k), str)]
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
                extras={k: v for k, v in item.items() if k not in CONSUMED},
            )
        )
    return samples, problems


def first_item(path: Path, *, limit: int = 64 << 20) -> dict | None:
    """The first item of a JSON list file, read only as far as its end (items embed whole images:
    the file may be large), or None when the file does not start like a list of objects."""
    decoder = json.JSONDecoder()
    with open(path, "rb") as f:
        data = b""
        while len(data) < limit:
            chunk = f.read(1 << 20)
            data += chunk
            text = data.decode("utf-8", errors="ignore").lstrip()
            if not text.startswith("["):
                return None
            start = text.find("{")
            if start != -1 and text[1:start].strip():
                return None  # the list's first element is not an object
            if start != -1:
                try:
                    obj, _ = decoder.raw_decode(text, start)
                    return obj if isinstance(obj, dict) else None
                except json.JSONDecodeError:
                    pass  # not all of it read yet (or not JSON: then at the end of the file)
            if not chunk:
                return None
    return None


def looks_like(path: Path, first: dict | None) -> bool:
    if path.suffix != ".json":
        return False
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    return head.startswith(b"[") or head.startswith(b"{")
