"""OmniContext's results layout, as VectorSpaceLab/OmniGen2's omnicontext/README.md ("Step2 Generate
Images") gives it and test_omnicontext_score.py reads it
(`os.path.join(result_dir, model_name, "fullset", task_type, f"{key}.png")`):

    <folder>/<method>/fullset/<task_type>/<key>.png

With <folder> as the scripts' --result_dir and <method> as --model_name, `python -m
omnicontext.test_omnicontext_score --result_dir <folder> --model_name <method> ...` then judges it
unchanged (writing <method>/gpt4dot1/<task_type>/score.jsonl, which calculate_statistics.py reads).
The official scorer skips a missing output ("Output image not found ... skip"); export lists them.
Import reads <key>.png only (any image format inside), as the scorer does.
"""

from __future__ import annotations

from pathlib import Path

from suites.shared.layout import method_root

DESCRIPTION = "<folder>/<method>/fullset/<task_type>/<key>.png"


def root(folder: Path, method: str | None) -> Path:
    """The method's folder; for import without a method, the folder itself when it holds fullset/,
    else its only subfolder that does."""
    return method_root(folder, method, holds=lambda p: (p / "fullset").is_dir(), shape="fullset")


def edit_relpath(sample) -> str:
    return f"fullset/{sample.category}/{sample.extras.get('key') or sample.id}.png"


def extra_files(sample) -> dict[str, bytes]:
    return {}
