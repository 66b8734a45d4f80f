#!/usr/bin/env bash
# GPU call 26 (2-GPU machine, session 4, last of the budget): is the compiled path what makes one of
# two editors compute other bits? The same 2-editor vs 1-editor comparison in *reference* mode (no
# compile, diffusers as shipped), 2 samples (one per editor in the 2-editor run). Not run yet: the
# session's device time was spent (next session: run it first).
source bench/device_env.sh
for n in 2 1; do
  timeout 85 python3 bench/scaling.py --counts $n --editors-flag gpus --workdir /tmp/scal --out $OUT/call26_scaling$n.json \
    -- --config bench/gpu_run.yaml --limit 2 --speed-mode reference --no-score > $OUT/logs/call26_scaling$n.log 2>&1
  echo "rc $n editor(s)=$?"
done
grep -hE '\[GPU [01]\] .*done' $OUT/logs/call26_scaling2.log $OUT/logs/call26_scaling1.log
python3 bench/compare_edits.py /tmp/scal/editors-1 /tmp/scal/editors-2
