"""LabBench's results layout: <folder>/<method>/<uid>.png."""

from __future__ import annotations

from pathlib import Path

from suites.shared.layout import method_root

DESCRIPTION = "<folder>/<method>/<uid>.png"


def root(folder: Path, method: str | None) -> Path:
    return method_root(folder, method)


def edit_relpath(sample) -> str:
    return f"{sample.id}.png"


def extra_files(sample) -> dict[str, bytes]:
    return {}
