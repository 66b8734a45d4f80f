#!/usr/bin/env bash
# GPU call 23 (2-GPU machine, session 4): after Inductor's deterministic mode became part of the default
# speed mode: (1) whole `orchestrator run`s with 2 editors (GPUs 0,1), then 1 editor (GPU 0), 4 samples,
# default mode, and their edits compared byte for byte; (2) meanwhile on GPU 1, what the deterministic
# mode costs per step: transformer-only default mode with and without it, alternated.
source bench/device_env.sh
python3 -c "import torch._inductor.config as c; print('inductor deterministic flag present:', hasattr(c, 'deterministic'))"
timeout 250 python3 bench/scaling.py --counts 2 --editors-flag gpus --workdir /tmp/scal --out $OUT/call23_scaling2.json \
  -- --config bench/gpu_run.yaml --limit 4 --no-score > $OUT/logs/call23_scaling2.log 2>&1
echo "rc 2 editors=$?"
CUDA_VISIBLE_DEVICES=1 timeout 300 python3 bench/transformer_variants.py --out $OUT/call23_det.json \
  --variants compiled_cudnn_realrope,compiled_cudnn_realrope_det,compiled_cudnn_realrope,compiled_cudnn_realrope_det \
  > $OUT/logs/call23_det.log 2>&1 &
VARIANTS=$!
timeout 250 python3 bench/scaling.py --counts 1 --editors-flag gpus --workdir /tmp/scal --out $OUT/call23_scaling1.json \
  -- --config bench/gpu_run.yaml --limit 4 --no-score > $OUT/logs/call23_scaling1.log 2>&1
echo "rc 1 editor=$?"
wait $VARIANTS
echo "rc variants=$?"
grep -hE '^\{"editors"|\[GPU [01]\] .*done' $OUT/logs/call23_scaling2.log $OUT/logs/call23_scaling1.log
grep -E '^\[|Error' $OUT/logs/call23_det.log
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
