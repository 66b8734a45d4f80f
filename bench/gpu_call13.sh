#!/usr/bin/env bash
# GPU call 13 (1 GPU): judge throughput (goal 6) with static decoding pipelined (one batch prefilled
# while another decodes, processor on the batch's own thread), against the seed-style loop.
source bench/device_env.sh
timeout 300 python3 bench/judge_speed.py --load-format dummy --device cuda:0 --n 64 --max-batch 32 --expected-batches 32 \
  --decodes dynamic,static --log-dir $OUT/logs --out $OUT/judge_speed13.json > $OUT/logs/judge_speed13.log 2>&1
echo "speed rc=$?"
grep -E "^\[|^    \{|Traceback|Error" $OUT/logs/judge_speed13.log | cut -c1-700
grep -h "batch:" $OUT/logs/scorer_service_*.log | cut -c1-250
mkdir -p $OUT/logs/a && mv $OUT/logs/scorer_service_*.log $OUT/logs/a/
for mb in 32 48; do
  n=$((mb * 4))
  timeout 150 python3 bench/judge_speed.py --load-format dummy --device cuda:0 --n $n --max-batch $mb --only service \
    --decodes static --log-dir $OUT/logs --out $OUT/judge_speed13_b$mb.json > $OUT/logs/judge_speed13_b$mb.log 2>&1
  echo "speed b$mb n$n rc=$?"
  grep -E "^\[|^    \{|Traceback|Error" $OUT/logs/judge_speed13_b$mb.log | cut -c1-500
  grep -hE "batch:|memory|Error" $OUT/logs/scorer_service_*.log | cut -c1-250
  mkdir -p $OUT/logs/b$mb && mv $OUT/logs/scorer_service_*.log $OUT/logs/b$mb/
done
