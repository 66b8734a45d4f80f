#!/usr/bin/env bash
# GPU call 9 (1 GPU): a whole `orchestrator run` (3 samples, default speed mode, 20 steps, 1024²) with the
# judge staged on the host during editing: editors up, editing, editors down, judge go -> SERVING, scoring.
source bench/device_env.sh
timeout 200 python3 -c "from pathlib import Path; from bench.judge_startup import save_dummy; print('save_s', save_dummy(Path('/tmp/judge'), 'cuda:0'))"
timeout 370 python3 bench/scaling.py --counts 1 --editors-flag gpus --workdir /tmp/e2e --out $OUT/e2e.json \
  -- --config bench/gpu_run_staged.yaml --limit 3 > $OUT/logs/e2e.log 2>&1
echo "rc=$?"
cp /tmp/e2e/editors-1/manifest.json $OUT/ 2>/dev/null
ls /tmp/e2e/editors-1/
tail -40 $OUT/logs/e2e.log
