"""RISEBench's outputs layout, as PhoenixZ810/RISEBench's gpt_eval.py reads it (README "Output
Generation", gpt_eval.py `find_image`):

    <folder>/<method>/images/<category>/<index>.png         e.g. images/temporal_reasoning/temporal_reasoning_1.png

`python gpt_eval.py --data data/data_total.json --output <folder>/<method>` then judges it unchanged
(the input images stay in the benchmark's data folder: nothing else is written). The official script
stops at the first missing output (FileNotFoundError); export lists the missing ones instead. On
import an edit may also be `<index>.jpg` or `<index>.jpeg`, looked for in that order after .png, as
find_image does.
"""

from __future__ import annotations

from pathlib import Path

from suites.shared.layout import method_root

DESCRIPTION = "<folder>/<method>/images/<category>/<index>.png (.jpg, .jpeg)"
SUFFIXES = ("png", "jpg", "jpeg")  # find_image's order


def root(folder: Path, method: str | None) -> Path:
    """The method's folder; for import without a method, the folder itself when it holds images/,
    else its only subfolder that does."""
    return method_root(folder, method, holds=lambda p: (p / "images").is_dir(), shape="images")



def edit_relpath(sample) -> str:
    return f"images/{sample.category}/{sample.id}.png"


def import_relpath(root: Path, sample) -> str:
    """The file import reads: the first of <index>.png, .jpg, .jpeg there, as find_image looks (the
    .png path when none is, to be listed as missing)."""
    options = [f"images/{sample.category}/{sample.id}.{suffix}" for suffix in SUFFIXES]
    return next((r for r in options if (Path(root) / r).is_file()), options[0])


def extra_files(sample) -> dict[str, bytes]:
    return {}
