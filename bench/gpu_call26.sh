#!/usr/bin/env bash
# GPU call 26 (2-GPU machine, session 4, last of the budget): is the compiled path what makes one of
# two editors compute other bits? The same 2-editor vs 1-editor comparison in *reference* mode (no
# compile, diffusers as shipped), 2 samples (one per editor in the 2-editor run).
source bench/device_env.sh
for n in 2 1; do
  timeout 85 python3 bench/scaling.py --counts $n --editors-flag gpus --workdir /tmp/scal --out $OUT/call26_scaling$n.json \
    -- --config bench/gpu_run.yaml --limit 2 --speed-mode reference --no-score > $OUT/logs/call26_scaling$n.log 2>&1
  echo "rc $n editor(s)=$?"
done
grep -hE '\[GPU [01]\] .*done' $OUT/logs/call26_scaling2.log $OUT/logs/call26_scaling1.log
python3 - <<'PY'
import hashlib
import numpy as np
from pathlib import Path
from PIL import Image
def digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in Path(root).rglob("*.png")}
one, two = digests("/tmp/scal/editors-1"), digests("/tmp/scal/editors-2")
same = [k for k in one if two.get(k) == one[k]]
print(f"edits: 1 editor {len(one)}, 2 editors {len(two)}, byte-identical {len(same)}")
for k in sorted(set(one) & set(two)):
    if one[k] != two[k]:
        a = np.asarray(Image.open(Path("/tmp/scal/editors-1") / k), dtype=np.int16)
        b = np.asarray(Image.open(Path("/tmp/scal/editors-2") / k), dtype=np.int16)
        d = np.abs(a - b)
        print(f"differs: {k} max {d.max()} mean {d.mean():.3f} pixels differing {(d > 0).mean():.3%}")
PY
