"""A benchmark released as one JSON file with its images under a root folder (`benchmark.image_root`,
by default the file's own folder): the file read, its top-level shape and the root checked, each
refusal one Problem naming the file (ImgEdit-Bench's two sets, RISEBench, RISEBench++)."""

from __future__ import annotations

import json
from pathlib import Path

from suites.shared.samples import Problem


def read_with_image_root(path: Path, options: dict, kind: type, expected: str) -> tuple[object, Path | None, list[Problem]]:
    """(the file's JSON value, the image root, []) or (None, None, [the one Problem]): not UTF-8, not JSON,
    not a `kind` ("expected <expected>, got <type>"), or an image root that is not a folder."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        return None, None, [Problem(path.name, None, f"not UTF-8 ({exc.reason})")]
    except json.JSONDecodeError as exc:
        return None, None, [Problem(path.name, None, f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})")]
    if not isinstance(data, kind):
        return None, None, [Problem(path.name, None, f"expected {expected}, got {type(data).__name__}")]
    root = Path(options.get("image_root") or path.parent)
    if not root.is_dir():
        return None, None, [Problem(path.name, None, f"image root {str(root)!r} is not a folder (benchmark.image_root)")]
    return data, root, []
