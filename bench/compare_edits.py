"""Compare the edits of two `orchestrator run` output folders, sample by sample: byte-identical or not,
and for those that differ, by how much (8-bit levels). Same seed + same sample must give the same edit
whatever the number of editors.

    python bench/compare_edits.py /tmp/scal/editors-1 /tmp/scal/editors-2
    python bench/compare_edits.py examples/benchmark examples/benchmark  # dry run (orchestrator)
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.png")}


def main(argv=None) -> int:
    first, second = (Path(a) for a in (argv or sys.argv[1:]))
    one, two = digests(first), digests(second)
    same = [k for k in one if two.get(k) == one[k]]
    print(f"edits: {first} {len(one)}, {second} {len(two)}, byte-identical {len(same)}")
    for key in sorted(set(one) | set(two)):
        if key not in one or key not in two:
            print(f"only in one run: {key}")
        elif one[key] != two[key]:
            a = np.asarray(Image.open(first / key), dtype=np.int16)
            b = np.asarray(Image.open(second / key), dtype=np.int16)
            d = np.abs(a - b)
            print(f"differs: {key} max {d.max()} mean {d.mean():.3f} pixels differing {(d > 0).mean():.3%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
