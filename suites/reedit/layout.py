"""RE-Edit's edits layout, as Yixuan-Ding-ZJU/RE-Edit's scorer reads it
(single_scoring_part_vllm/data_loader.py, match_primary_images; the names as
src/iterative_pipeline_v7.py saves primary edits, _save_image):

    <folder>/<method>/<subset>/<pair_id>_primary.png

with pair_id the item's original_image_path file name without extension (Chinese subset names in
English, as the pipeline writes them): the same file that the pipeline's `primary_images_dir` reads.
The scorer matches a file by its leading digits (`(\\d+)_`) against the item's image number (the
first digits of that file name); where pair_id does not start with the image number, the edit is
written as `<image number>_primary.png` instead, so that the scorer still finds it.

    python main.py --config_path scoring_config.yaml --json_path RE-Edit.json \\
        --image_dir <folder>/<method> --image_suffix_pattern "*_primary.png" --metric_type ...

then judges it unchanged (the source images are embedded in RE-Edit.json: nothing else is written).
The scorer skips an item without an edit file; ours lists it.
"""

from __future__ import annotations

import re
from pathlib import Path

from suites.shared.layout import method_root

DESCRIPTION = "<folder>/<method>/<subset>/<pair_id>_primary.png"
SUFFIX = "_primary.png"  # main.py's default --image_suffix_pattern "*_primary.png"


def root(folder: Path, method: str | None) -> Path:
    return method_root(folder, method)  # import without --method: the folder holding <subset>/



def file_name(pair_id: str, image_id: str) -> str:
    """pair_id's file when the scorer's match (leading digits, then "_") gives this item's number."""
    name = f"{pair_id}{SUFFIX}"
    leading = re.match(r"(\d+)_", Path(name).stem)
    return name if leading and leading.group(1) == image_id else f"{image_id}{SUFFIX}"


def edit_relpath(sample) -> str:
    return f"{sample.category}/{file_name(sample.extras['pair_id'], sample.extras['image_id'])}"


def extra_files(sample) -> dict[str, bytes]:
    return {}
