"""ImgEdit-Bench, basic suite (PKU-YuanGroup/ImgEdit, Benchmark/Basic), as released:

    basic_edit.json: {"<key>": {"id": "animal/000342021.jpg", "prompt": "...", "edit_type": "adjust"}, ...}

with the original images under a root folder (`origin_img_root` in basic_bench.py; here
`benchmark.image_root`, by default the JSON's own folder): the image of a key is `<root>/<id>`, which
may not leave the root. The category is `edit_type` (the nine of Benchmark/Basic/prompts.json); the
id is the key (edits are saved as `<key>.png`, as the suite expects).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from suites.shared.json_file import read_with_image_root
from suites.shared.samples import Problem, Sample, resolve_inside

# The edit types of Benchmark/Basic/prompts.json (one judge prompt each).
EDIT_TYPES = ("replace", "add", "adjust", "remove", "style", "action", "extract", "background", "compose")
FIELDS = ("id", "prompt", "edit_type")


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    return load_keyed(path, options, FIELDS, _edit_type)


def _edit_type(item: dict) -> tuple[str | None, str | None]:
    if item["edit_type"] not in EDIT_TYPES:
        return None, f"edit_type {item['edit_type']!r} is not one of ImgEdit's {len(EDIT_TYPES)} ({', '.join(EDIT_TYPES)})"
    return item["edit_type"], None


def load_keyed(path: Path, options: dict, fields: tuple[str, ...],
               category_of: Callable[[dict], tuple[str | None, str | None]]) -> tuple[list[Sample], list[Problem]]:
    """An ImgEdit-Bench file (this basic set's, or UGE's: suites/imgedit_uge): key -> {fields}, every one a
    string, the image of a key `<root>/<id>`. category_of(item): (the sample's category, None), or
    (None, why the item is refused)."""
    shape = "{" + ", ".join(fields) + "}"
    data, root, problems = read_with_image_root(path, options, dict, f"a JSON object key -> {shape}")
    if problems:
        return [], problems
    samples = []
    for order, (key, item) in enumerate(data.items()):
        where = f"{path.name}[{key!r}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, key, f"expected an object {shape}, got {type(item).__name__}", order))
            continue
        missing = [f for f in fields if not isinstance(item.get(f), str)]
        if missing:
            problems.append(Problem(where, key, f"missing or non-string field(s): {', '.join(missing)}", order))
            continue
        category, why = category_of(item)
        if why:
            problems.append(Problem(where, key, why, order))
            continue
        image_path, issue = resolve_inside(root, item["id"])
        if issue:
            problems.append(Problem(where, key, f"id: {issue.replace('the benchmark folder', 'the image root')}", order))
        samples.append(Sample(id=key, category=category, instruction=item["prompt"], image_path=image_path,
                              language="en", where=where, order=order, extras={"image_id": item["id"]}))
    return samples, problems


def first_value(path: Path):
    """The first value of a .json file's top-level object, what detection looks at; None for another file,
    one that cannot be read, or no non-empty object."""
    if path.suffix != ".json":
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return next(iter(data.values()), None) if isinstance(data, dict) and data else None


def looks_like(path: Path, first: dict | None) -> bool:
    value = first_value(path)
    return isinstance(value, dict) and all(f in value for f in FIELDS)
