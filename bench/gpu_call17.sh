#!/usr/bin/env bash
# GPU call 17 (1 GPU): goal 5 in one run, again after cuDNN attention off and static decoding (auto) became the scorer defaults: from_pretrained of the saved random judge (the floor, twice),
# then a whole `orchestrator run` (3 samples, default mode) with the judge staged during editing;
# the judge's own phase log comes back.
source bench/device_env.sh
timeout 200 python3 -c "from pathlib import Path; from bench.judge_startup import save_dummy; print('save_s', save_dummy(Path('/tmp/judge'), 'cuda:0'))"
for i in 1 2; do
  python3 -c "import sys; sys.path.insert(0, '.'); from bench.judge_startup import TIME_FROM_PRETRAINED as c; exec(c)" /tmp/judge cuda:0 \
    | grep FROM_PRETRAINED_S
done
timeout 330 python3 bench/scaling.py --counts 1 --editors-flag gpus --workdir /tmp/e2e --out $OUT/e2e17.json \
  -- --config bench/gpu_run_staged.yaml --limit 3 > $OUT/logs/e2e17.log 2>&1
echo "rc=$?"
cp /tmp/e2e/editors-1/manifest.json $OUT/manifest17.json 2>/dev/null
grep -h -E 'phases|SERVING|batch:' /tmp/e2e/editors-1/logs/*scorer*.log /tmp/e2e/editors-1/logs/*judge*.log 2>/dev/null | tail -8
ls /tmp/e2e/editors-1/logs/
grep -E 'Judge SERVING|editors_down' $OUT/logs/e2e17.log | head -3
