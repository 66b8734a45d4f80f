#!/usr/bin/env bash
# GPU call 24 (2-GPU machine, session 4): after Dynamo's local dynamic-shape profile was turned off for
# the compiled blocks (on top of Inductor's deterministic mode): 2 editors then 1 editor, 4 samples,
# default mode, on a fresh machine (empty compile cache), edits compared byte for byte.
# Call 25 re-ran it after each editor stopped sharing compile caches: `bash bench/gpu_call24.sh call25`.
TAG=${1:-call24}
source bench/device_env.sh
for n in 2 1; do
  timeout 250 python3 bench/scaling.py --counts $n --editors-flag gpus --workdir /tmp/scal --out $OUT/${TAG}_scaling$n.json \
    -- --config bench/gpu_run.yaml --limit 4 --no-score > $OUT/logs/${TAG}_scaling$n.log 2>&1
  echo "rc $n editor(s)=$?"
done
grep -hE '^\{"editors"|\[GPU [01]\] .*done' $OUT/logs/${TAG}_scaling2.log $OUT/logs/${TAG}_scaling1.log
grep -h "compile\|runtime" /tmp/scal/editors-2/logs/*editor*GPU*0*.log 2>/dev/null | head -3
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
