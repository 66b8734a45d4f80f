#!/usr/bin/env bash
# GPU call 14 (1 GPU): judge throughput (goal 6), static decoding with chunked prefill into one large
# decode batch (max batch 128 = 4 prefill chunks of 32), against the seed-style loop in the same call.
source bench/device_env.sh
timeout 240 python3 bench/judge_speed.py --load-format dummy --device cuda:0 --n 64 --max-batch 32 --expected-batches 32 \
  --decodes static --log-dir $OUT/logs --out $OUT/judge_speed14.json > $OUT/logs/judge_speed14.log 2>&1
echo "speed rc=$?"
grep -E "^\[|^    \{|Traceback|Error" $OUT/logs/judge_speed14.log | cut -c1-700
grep -h "batch:" $OUT/logs/scorer_service_*.log | cut -c1-250
mkdir -p $OUT/logs/a && mv $OUT/logs/scorer_service_*.log $OUT/logs/a/
for mb in 128 96; do
  n=$((mb * 3))
  timeout 170 python3 bench/judge_speed.py --load-format dummy --device cuda:0 --n $n --max-batch $mb --prefill-batch 32 \
    --only service --decodes static --log-dir $OUT/logs --out $OUT/judge_speed14_b$mb.json > $OUT/logs/judge_speed14_b$mb.log 2>&1
  echo "speed b$mb n$n rc=$?"
  grep -E "^\[|^    \{|Traceback|Error" $OUT/logs/judge_speed14_b$mb.log | cut -c1-500
  grep -hE "batch:|memory|Error|Traceback" $OUT/logs/scorer_service_*.log | cut -c1-250
  mkdir -p $OUT/logs/b$mb && mv $OUT/logs/scorer_service_*.log $OUT/logs/b$mb/
done
nvidia-smi --query-gpu=memory.used --format=csv
