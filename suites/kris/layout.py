"""KRIS-Bench's results layout, as mercurystraw/Kris_Bench's scorers read it (README.md "Notes";
metrics_common.py, metrics_knowledge.py, metrics_view_change.py, metrics_multi_element.py,
metrics_temporal_prediction.py: `os.path.join(RESULTS_DIR, model, category, f"{image_id}.jpg")`):

    <folder>/<method>/<category>/<id>.jpg        the edit, a JPEG file

With <folder> as the scripts' `results/` beside the release's `KRIS_Bench/`, `python
metrics_common.py --models <method>` (and the four other scripts) then judge it unchanged and write
<folder>/<method>/<category>/metrics.json; the release's images stay where they are: nothing else
is written. The scripts send the file's bytes labelled image/jpeg, so the edit is written as a real
JPEG (quality 95): the official judge sees that JPEG, ours the edit itself. Import reads <id>.jpg
(any image format inside), or <id>.png where there is no .jpg (ByteDance-Seed/Bagel's copies of the
scripts read and write that). The scripts skip an id whose edit is missing (ours lists it instead).
"""

from __future__ import annotations

import io
from pathlib import Path

from suites.shared.layout import method_root

DESCRIPTION = "<folder>/<method>/<category>/<id>.jpg"
JPEG_QUALITY = 95


def root(folder: Path, method: str | None) -> Path:
    """The method's folder; for import without a method, the folder itself when it holds category
    folders, else its only subfolder that does."""
    from suites.kris.data import CATEGORIES

    return method_root(folder, method, holds=lambda p: any((p / c).is_dir() for c in CATEGORIES),
                       shape="<category>")



def edit_relpath(sample) -> str:
    return f"{sample.category}/{sample.extras.get('key') or sample.id}.jpg"


def import_relpath(root: Path, sample) -> str:
    jpg = edit_relpath(sample)
    png = jpg[: -len(".jpg")] + ".png"
    return png if not (root / jpg).is_file() and (root / png).is_file() else jpg


def encode(data: bytes, *, field: str) -> bytes:
    """The edit as the JPEG file the scripts read."""
    from editfleet_common.images import decode_image

    buf = io.BytesIO()
    decode_image(data, field=field).convert("RGB").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def extra_files(sample) -> dict[str, bytes]:
    return {}
