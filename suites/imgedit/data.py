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

from suites.shared.samples import Problem, Sample, resolve_inside

# The edit types of Benchmark/Basic/prompts.json (one judge prompt each).
EDIT_TYPES = ("replace", "add", "adjust", "remove", "style", "action", "extract", "background", "compose")
FIELDS = ("id", "prompt", "edit_type")


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        return [], [Problem(path.name, None, f"not UTF-8 ({exc.reason})")]
    except json.JSONDecodeError as exc:
        return [], [Problem(path.name, None, f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})")]
    if not isinstance(data, dict):
        return [], [Problem(path.name, None, f"expected a JSON object key -> {{id, prompt, edit_type}}, got {type(data).__name__}")]
    root = Path(options.get("image_root") or path.parent)
    if not root.is_dir():
        return [], [Problem(path.name, None, f"image root {str(root)!r} is not a folder (benchmark.image_root)")]
    samples, problems = [], []
    for order, (key, item) in enumerate(data.items()):
        where = f"{path.name}[{key!r}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, key, f"expected an object {{id, prompt, edit_type}}, got {type(item).__name__}", order))
            continue
        missing = [f for f in FIELDS if not isinstance(item.get(f), str)]
        if missing:
            problems.append(Problem(where, key, f"missing or non-string field(s): {', '.join(missing)}", order))
            continue
        if item["edit_type"] not in EDIT_TYPES:
            problems.append(Problem(where, key, f"edit_type {item['edit_type']!r} is not one of ImgEdit's "
                                                f"{len(EDIT_TYPES)} ({', '.join(EDIT_TYPES)})", order))
            continue
        image_path, issue = resolve_inside(root, item["id"])
        if issue:
            problems.append(Problem(where, key, f"id: {issue.replace('the benchmark folder', 'the image root')}", order))
        samples.append(Sample(id=key, category=item["edit_type"], instruction=item["prompt"], image_path=image_path,
                              language="en", where=where, order=order, extras={"image_id": item["id"]}))
    return samples, problems


def looks_like(path: Path, first: dict | None) -> bool:
    if path.suffix != ".json":
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    value = next(iter(data.values()), None) if isinstance(data, dict) and data else None
    return isinstance(value, dict) and all(f in value for f in FIELDS)
