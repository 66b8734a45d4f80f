"""What the layouts share: the method's folder under the folder an export writes to or an import reads,
an image as PNG bytes, and the error an export or import that cannot be done raises."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

from editfleet_common.images import decode_image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class LayoutError(Exception):
    """An export or import that cannot be done (named folder or file)."""


def method_root(folder: Path, method: str | None, *, holds: Callable[[Path], bool] | None = None,
                shape: str = "") -> Path:
    """`folder/method`; for import without a method, the folder itself (where `holds` is None or says
    it holds the layout), else its only subfolder that does (`shape`: what such a folder holds, for
    the message)."""
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


def as_png(data: bytes, *, field: str) -> bytes:
    """The image as PNG bytes: PNG files as they are, other formats decoded and re-encoded (lossless)."""
    if data.startswith(PNG_MAGIC):
        decode_image(data, field=field)  # still check it decodes
        return data
    img = decode_image(data, field=field)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
