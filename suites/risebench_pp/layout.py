"""RISEBench++'s outputs layout, as PhoenixZ810/RISEBench's RISEBench++/README.md ("Output Generation")
gives it and gemini_eval.py (`eval_vanilla`, `find_image`) reads it:

    <folder>/<method>/images/<category>/<index>.png     (images/hybrid_reasoning/ for multi-turn cases)

`python gemini_eval.py --data data/overall_data.json --input data --output <folder>/<method>` then
judges it unchanged. The official script gives a missing output the minimum scores; export lists the
missing ones. On import an edit may also be `<index>.jpg` or `<index>.jpeg`, looked for in that order
after .png, as find_image does.
"""

from __future__ import annotations

from pathlib import Path

from suites.shared.layout import method_root

DESCRIPTION = "<folder>/<method>/images/<category>/<index>.png (.jpg, .jpeg; hybrid_reasoning for multi-turn)"
SUFFIXES = ("png", "jpg", "jpeg")  # find_image's order


def root(folder: Path, method: str | None) -> Path:
    return method_root(folder, method, holds=lambda p: (p / "images").is_dir(), shape="images")


def edit_relpath(sample) -> str:
    return f"images/{sample.category}/{sample.id}.png"


def import_relpath(root: Path, sample) -> str:
    options = [f"images/{sample.category}/{sample.id}.{suffix}" for suffix in SUFFIXES]
    return next((r for r in options if (Path(root) / r).is_file()), options[0])


def extra_files(sample) -> dict[str, bytes]:
    return {}
