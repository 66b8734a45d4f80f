"""GEditBench v2's candidates gallery (the Hugging Face dataset GEditBench-v2/GEditBench-v2-CandidatesGallery),
as its README ("Start Model Arena on GEditBench v2") draws it and its code reads it:

    <gallery>/<model>/<key>.png      one edit per sample, a folder per model
    <gallery>/metadata.jsonl         {"key": ..., "candidates": [{"model": ..., "image": "<path>"}, ...]}

`autogen run geditv2` writes `<image-save-dir>/<model>/<key>.png` (src/autogen/workflows/generation.py)
and appends `{"model", "image": <path relative to the metadata file's folder>}` to each key's
`candidates` in a copy of metadata.jsonl; `GEditBenchV2Eval` (src/common_utils/dataset_loader.py)
pairs the candidates of each key, joining `image` to the gallery folder.

Export writes `<to>/<method>/<key>.png` (a new model's folder of the gallery; merging it into
metadata.jsonl is the official `--merge-to-metadata` step). Import reads `<folder>/<method>/`: each
sample's file is where the gallery's metadata.jsonl (beside the method's folder) says that model's
candidate for the key is, where it names one under the method's folder, else `<key>.png`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from suites.shared.layout import method_root

DESCRIPTION = "<folder>/<method>/<key>.png (the candidates gallery; metadata.jsonl beside the model folders)"
METADATA = "metadata.jsonl"


def root(folder: Path, method: str | None) -> Path:
    """The model's folder; for import without a method, the folder itself unless it is a gallery
    (holds metadata.jsonl), whose model folder must then be named."""
    return method_root(folder, method, holds=lambda p: not (p / METADATA).is_file(), shape="<key>.png")


def edit_relpath(sample) -> str:
    return f"{sample.extras.get('key') or sample.id}.png"


def extra_files(sample) -> dict[str, bytes]:
    return {}  # the source images are in the release's parquet files


@lru_cache(maxsize=4)
def _candidates(metadata: Path, mtime: float) -> dict[tuple[str, str], str]:
    """(key, model) -> image path relative to the gallery, from metadata.jsonl (bad lines skipped)."""
    out = {}
    for line in metadata.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if not isinstance(item, dict) or not isinstance(item.get("candidates"), list):
            continue
        for candidate in item["candidates"]:
            if isinstance(candidate, dict) and isinstance(candidate.get("model"), str) and isinstance(candidate.get("image"), str):
                out[(str(item.get("key")), candidate["model"])] = candidate["image"]
    return out


def import_relpath(root: Path, sample) -> str:
    """Where metadata.jsonl puts this model's candidate (inside the model's folder), else <key>.png."""
    metadata = root.parent / METADATA
    if metadata.is_file():
        image = _candidates(metadata, metadata.stat().st_mtime).get((sample.extras.get("key") or sample.id, root.name))
        if image:
            parts = Path(image).parts
            if len(parts) >= 2 and parts[0] == root.name and ".." not in parts:
                return str(Path(*parts[1:]))
    return edit_relpath(sample)
