#!/usr/bin/env bash
# GPU call 12 (1 GPU): judge throughput (goal 6) with the static greedy decoder (CUDA graph per batch
# size) and grouped decode attention, against the seed-style loop (transformers' attention, generate).
source bench/device_env.sh
timeout 330 python3 bench/judge_speed.py --load-format dummy --device cuda:0 --n 64 --max-batch 32 --expected-batches 32 \
  --decodes dynamic,static --log-dir $OUT/logs --out $OUT/judge_speed12.json > $OUT/logs/judge_speed12.log 2>&1
echo "speed rc=$?"
grep -E "^\[|^    \{|Traceback|Error" $OUT/logs/judge_speed12.log | cut -c1-600
grep -h "batch:" $OUT/logs/scorer_service_*.log | cut -c1-250
mkdir -p $OUT/logs/b32 && mv $OUT/logs/scorer_service_*.log $OUT/logs/b32/
timeout 200 python3 bench/judge_speed.py --load-format dummy --device cuda:0 --n 128 --max-batch 64 --only service \
  --decodes static --log-dir $OUT/logs --out $OUT/judge_speed12b.json > $OUT/logs/judge_speed12b.log 2>&1
echo "speed b64 rc=$?"
grep -E "^\[|^    \{|Traceback|Error" $OUT/logs/judge_speed12b.log | cut -c1-600
grep -h "batch:" $OUT/logs/scorer_service_*.log | cut -c1-250
