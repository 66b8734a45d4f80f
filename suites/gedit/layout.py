"""GEdit-Bench's results layout, as stepfun-ai/Step1X-Edit's scorer reads it
(GEdit-Bench/EVAL.md, GEdit-Bench/test_gedit_score.py, GEdit-Bench/generate_image_example.py):

    <folder>/<method>/fullset/<task_type>/<en|cn>/<key>.png          the edit
    <folder>/<method>/fullset/<task_type>/<en|cn>/<key>_SRCIMG.png   the source image (input_image)

`python test_gedit_score.py --model_name <method> --save_path <folder>` then judges it unchanged;
the scorer skips a key whose edit or source image is missing (ours lists it instead).
"""

from __future__ import annotations

from pathlib import Path

from suites.shared.layout import as_png, method_root

DESCRIPTION = "<folder>/<method>/fullset/<task_type>/<en|cn>/<key>.png (+ <key>_SRCIMG.png)"


def root(folder: Path, method: str | None) -> Path:
    """The method's folder; for import without a method, the folder itself when it holds fullset/,
    else its only subfolder that does."""
    return method_root(folder, method, holds=lambda p: (p / "fullset").is_dir(), shape="fullset")



def _folder(sample) -> str:
    return f"fullset/{sample.category}/{sample.language}"


def _key(sample) -> str:
    return sample.extras.get("key") or sample.id


def edit_relpath(sample) -> str:
    return f"{_folder(sample)}/{_key(sample)}.png"


def extra_files(sample) -> dict[str, bytes]:
    return {f"{_folder(sample)}/{_key(sample)}_SRCIMG.png": as_png(sample.source_bytes(), field=f"{sample.id}: source image")}
