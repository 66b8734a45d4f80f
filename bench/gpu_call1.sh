#!/usr/bin/env bash
# GPU call 1 (2-GPU machine): editor speed modes on GPU 0 then judge start-up; service overhead on
# GPU 1 then judge throughput. Results in $OUT/*.json, logs in $OUT/logs/.
source bench/device_env.sh
M=Qwen/Qwen-Image-Edit
(
  CUDA_VISIBLE_DEVICES=0 timeout 330 python3 bench/editor_speed.py --load-format dummy --model $M --device cuda \
    --steps 20 --size 1024 --out $OUT/editor_speed.json > $OUT/logs/editor_speed.log 2>&1
  CUDA_VISIBLE_DEVICES=0 timeout 200 python3 bench/judge_startup.py --dir /tmp/judge --device cuda:0 \
    --out $OUT/judge_startup.json > $OUT/logs/judge_startup.log 2>&1
) &
(
  CUDA_VISIBLE_DEVICES=1 timeout 330 python3 bench/service_overhead.py --load-format dummy --model $M --device cuda:0 \
    --steps 20 --size 1024 --n 3 --out $OUT/service_overhead.json > $OUT/logs/service_overhead.log 2>&1
  CUDA_VISIBLE_DEVICES=1 timeout 220 python3 bench/judge_speed.py --load-format dummy --device cuda:0 --n 32 \
    --max-batch 32 --expected-batches 8,32 --out $OUT/judge_speed.json > $OUT/logs/judge_speed.log 2>&1
) &
wait
for f in $OUT/logs/*.log; do echo "=== $f"; grep -E "^\[|Error|error|Traceback" $f | tail -12; done
tail -5 /tmp/editfleet-bench/*.log
