"""Emu Edit's results layout. Meta released no scoring script; the layout is the one AnyEdit's
AnyBench evaluation reads (anybench/eval: `{save_path}/{idx}.png`, one folder per split):

    <folder>/<method>/<split>/<idx>.png
"""

from __future__ import annotations

from pathlib import Path

from suites.shared.layout import method_root

DESCRIPTION = "<folder>/<method>/<split>/<idx>.png"


def root(folder: Path, method: str | None) -> Path:
    return method_root(folder, method)


def edit_relpath(sample) -> str:
    return f"{sample.extras['split']}/{sample.extras['idx']}.png"


def extra_files(sample) -> dict[str, bytes]:
    return {}
