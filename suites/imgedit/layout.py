"""ImgEdit-Bench (basic)'s results layout, as PKU-YuanGroup/ImgEdit's scorer reads it
(Benchmark/Basic/basic_bench_readme.md, basic_bench.py: `<result_img_folder>/<key>.png`):

    <folder>/<method>/<key>.png

`python basic_bench.py --result_img_folder <folder>/<method> --edit_json basic_edit.json
--origin_img_root <the original images> --prompts_json prompts.json` then judges it unchanged (the
original images stay where the benchmark has them: nothing else is written).
"""

from __future__ import annotations

from pathlib import Path

from suites.shared.layout import method_root

DESCRIPTION = "<folder>/<method>/<key>.png"


def root(folder: Path, method: str | None) -> Path:
    return method_root(folder, method)  # import without --method: the folder holding <key>.png



def edit_relpath(sample) -> str:
    return f"{sample.id}.png"


def extra_files(sample) -> dict[str, bytes]:
    return {}
