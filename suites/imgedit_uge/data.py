"""ImgEdit-Bench UGE (PKU-YuanGroup/ImgEdit, Benchmark/UGE), as released:

    UGE_edit.json: {"<key>": {"id": "000029784.jpg", "prompt": "Remove the lemon slice ..."}, ...}

47 keys in the release at 547185d, each an original image and an instruction, no edit type. The
original images lie under a root folder (`origin_img_root` in UGE_bench.py; here `benchmark.image_root`,
by default the JSON's own folder): the image of a key is `<root>/<id>`, which may not leave the root.
The id is the key (edits are saved as `<key>.png`, as UGE_bench.py reads them); every sample's
category is `uge` (the suite reports one number).
"""

from __future__ import annotations

import json
from pathlib import Path

from suites.shared.samples import Problem, Sample, resolve_inside

CATEGORY = "uge"
FIELDS = ("id", "prompt")


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        return [], [Problem(path.name, None, f"not UTF-8 ({exc.reason})")]
    except json.JSONDecodeError as exc:
        return [], [Problem(path.name, None, f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})")]
    if not isinstance(data, dict):
        return [], [Problem(path.name, None, f"expected a JSON object key -> {{id, prompt}}, got {type(data).__name__}")]
    root = Path(options.get("image_root") or path.parent)
    if not root.is_dir():
        return [], [Problem(path.name, None, f"image root {str(root)!r} is not a folder (benchmark.image_root)")]
    samples, problems = [], []
    for order, (key, item) in enumerate(data.items()):
        where = f"{path.name}[{key!r}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, key, f"expected an object {{id, prompt}}, got {type(item).__name__}", order))
            continue
        missing = [f for f in FIELDS if not isinstance(item.get(f), str)]
        if missing:
            problems.append(Problem(where, key, f"missing or non-string field(s): {', '.join(missing)}", order))
            continue
        image_path, issue = resolve_inside(root, item["id"])
        if issue:
            problems.append(Problem(where, key, f"id: {issue.replace('the benchmark folder', 'the image root')}", order))
        samples.append(Sample(id=key, category=CATEGORY, instruction=item["prompt"], image_path=image_path,
                              language="en", where=where, order=order, extras={"image_id": item["id"]}))
    return samples, problems


def looks_like(path: Path, first: dict | None) -> bool:
    """A .json object whose first value has id and prompt and no edit_type (the basic suite's has one)."""
    if path.suffix != ".json":
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    value = next(iter(data.values()), None) if isinstance(data, dict) and data else None
    return isinstance(value, dict) and set(value) == set(FIELDS)
