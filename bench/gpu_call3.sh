#!/usr/bin/env bash
# GPU call 3 (2-GPU machine): scaling with 1 and 2 editors (whole orchestrator runs), then the speed
# modes (reference/default/fast) on GPU 0 alone.
source bench/device_env.sh
timeout 330 python3 bench/scaling.py --counts 1,2 --editors-flag gpus --workdir /tmp/scaling \
  --out $OUT/scaling.json -- --config bench/gpu_run.yaml --limit 6 > $OUT/logs/scaling.log 2>&1
CUDA_VISIBLE_DEVICES=0 timeout 170 python3 bench/editor_speed.py --load-format dummy --model Qwen/Qwen-Image-Edit \
  --device cuda --steps 20 --size 1024 --out $OUT/editor_speed3.json > $OUT/logs/editor_speed3.log 2>&1
grep -E '^\{"editors"|SERVING|Edited|zero|swap|Error|error' $OUT/logs/scaling.log | tail -20
grep -E "^\[|Error" $OUT/logs/editor_speed3.log | tail -8
for f in /tmp/scaling/editors-2/logs/*.log; do echo "== $f"; tail -3 $f; done
