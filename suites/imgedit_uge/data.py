"""ImgEdit-Bench UGE (PKU-YuanGroup/ImgEdit, Benchmark/UGE), as released:

    UGE_edit.json: {"<key>": {"id": "000029784.jpg", "prompt": "Remove the lemon slice ..."}, ...}

47 keys in the release at 547185d, each an original image and an instruction, no edit type. The
original images lie under a root folder (`origin_img_root` in UGE_bench.py; here `benchmark.image_root`,
by default the JSON's own folder): the image of a key is `<root>/<id>`, which may not leave the root.
The id is the key (edits are saved as `<key>.png`, as UGE_bench.py reads them); every sample's
category is `uge` (the suite reports one number).
"""

from __future__ import annotations

from pathlib import Path

from suites.imgedit.data import first_value, load_keyed
from suites.shared.samples import Problem, Sample

CATEGORY = "uge"
FIELDS = ("id", "prompt")


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    return load_keyed(path, options, FIELDS, lambda item: (CATEGORY, None))


def looks_like(path: Path, first: dict | None) -> bool:
    """A .json object whose first value has id and prompt and no edit_type (the basic suite's has one)."""
    value = first_value(path)
    return isinstance(value, dict) and set(value) == set(FIELDS)
