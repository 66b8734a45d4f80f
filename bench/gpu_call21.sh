#!/usr/bin/env bash
# GPU call 21 (2-GPU machine, session 4): goal 4 in the default speed mode at HEAD: whole
# `orchestrator run`s with 1 then 2 editors (one per GPU), 6 samples, 20 steps at 1024², true CFG 4,
# no scoring; then the edits of the two runs compared file by file (same seed + same sample must give
# the same edit whatever the number of GPUs).
# Call 22 re-ran it after the dummy weights were seeded: `bash bench/gpu_call21.sh 4 call22`.
LIMIT=${1:-6}
TAG=${2:-call21}
source bench/device_env.sh
timeout 560 python3 bench/scaling.py --counts 1,2 --editors-flag gpus --workdir /tmp/scal --out $OUT/${TAG}_scaling.json \
  -- --config bench/gpu_run.yaml --limit $LIMIT --no-score > $OUT/logs/${TAG}_scaling.log 2>&1
echo "rc=$?"
grep -E '^\{' $OUT/logs/${TAG}_scaling.log
python3 - <<'PY'
import hashlib
from pathlib import Path
def digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in Path(root).rglob("*.png")}
one, two = digests("/tmp/scal/editors-1"), digests("/tmp/scal/editors-2")
same = [k for k in one if two.get(k) == one[k]]
print(f"edits: 1 editor {len(one)}, 2 editors {len(two)}, byte-identical {len(same)}")
for k in sorted(set(one) | set(two)):
    if one.get(k) != two.get(k):
        print("differs:", k)
PY
cp /tmp/scal/editors-2/manifest.json $OUT/${TAG}_manifest_2editors.json 2>/dev/null
