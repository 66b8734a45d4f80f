"""What the layouts share: the method's folder under the folder an export writes to or an import reads."""

from __future__ import annotations

from pathlib import Path
from typing import Callable


def method_root(folder: Path, method: str | None, *, holds: Callable[[Path], bool] | None = None,
                shape: str = "") -> Path:
    """`folder/method`; for import without a method, the folder itself (where `holds` is None or says
    it holds the layout), else its only subfolder that does (`shape`: what such a folder holds, for
    the message)."""
    from . import LayoutError

    folder = Path(folder)
    if method:
        if method in (".", "..") or "/" in method or "\\" in method:
            raise LayoutError(f"--method {method!r}: one folder name, without path separators")
        return folder / method
    if holds is None or holds(folder):
        return folder
    candidates = sorted(p for p in folder.iterdir() if p.is_dir() and holds(p)) if folder.is_dir() else []
    if len(candidates) == 1:
        return candidates[0]
    found = f" (found: {', '.join(p.name for p in candidates)})" if candidates else ""
    raise LayoutError(f"{folder}: give --method: no single <method>/{shape}/ folder in it{found}")
