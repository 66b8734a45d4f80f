"""MagicBrush's results layout, as its evaluation/image_eval.py reads a method's results
(`--generated_path`, evaluation/README.md):

    <folder>/<method>/<img_id>/<img_id>_1.png          turn 1
    <folder>/<method>/<img_id>/<img_id>_inde_<k>.png   turn k >= 2, single-turn (from the ground truth's input)
    <folder>/<method>/<img_id>/<img_id>_iter_<k>.png   turn k >= 2, multi-turn (from the edit of turn k-1)

`python image_eval.py --generated_path <folder>/<method> --gt_path test/images --caption_path
test/local_descriptions.json` then scores it: its all-turn numbers from `_1` and `_inde_<k>`, its
final-turn ones from each session's last `_iter_<k>` (`_1` for a session of one turn).
"""

from __future__ import annotations

from pathlib import Path

from suites.shared.layout import method_root

DESCRIPTION = "<folder>/<method>/<img_id>/<img_id>_1.png, <img_id>_inde_<k>.png, <img_id>_iter_<k>.png"


def root(folder: Path, method: str | None) -> Path:
    return method_root(folder, method)


def edit_relpath(sample) -> str:
    session, turn = sample.extras["session"], int(sample.extras["turn"])
    if turn == 1:
        return f"{session}/{session}_1.png"
    kind = "iter" if sample.extras.get("setting") == "multi-turn" else "inde"
    return f"{session}/{session}_{kind}_{turn}.png"


def extra_files(sample) -> dict[str, bytes]:
    return {}
