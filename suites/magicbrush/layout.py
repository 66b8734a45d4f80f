"""MagicBrush's results layout, as its evaluation/image_eval.py reads a method's results
(`--generated_path`, evaluation/README.md):

    <folder>/<method>/<img_id>/<img_id>_1.png          turn 1
    <folder>/<method>/<img_id>/<img_id>_inde_<k>.png   turn k >= 2, single-turn (from the ground truth's input)

`python image_eval.py --generated_path <folder>/<method> --gt_path test/images --caption_path
test/local_descriptions.json` then scores it (its all-turn numbers; the final-turn ones need the
multi-turn `<img_id>_iter_<k>.png`, which come with the multi-turn chains).
"""

from __future__ import annotations

from pathlib import Path

from suites.shared.layout import method_root

DESCRIPTION = "<folder>/<method>/<img_id>/<img_id>_1.png, <img_id>_inde_<k>.png"


def root(folder: Path, method: str | None) -> Path:
    return method_root(folder, method)


def edit_relpath(sample) -> str:
    session, turn = sample.extras["session"], int(sample.extras["turn"])
    return f"{session}/{session}_1.png" if turn == 1 else f"{session}/{session}_inde_{turn}.png"


def extra_files(sample) -> dict[str, bytes]:
    return {}
