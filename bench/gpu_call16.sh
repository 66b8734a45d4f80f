#!/usr/bin/env bash
# GPU call 16 (1 GPU): judge throughput (goal 6): the seed-style loop, then the service with static
# decoding (chunks prefilled on their own cache and copied into one decode batch of 128 / 96 rows;
# the next batch fills while one is prepared or prefilled), same call. After call 15: the decoder-pool
# fixes (an emptied idle list; room for a chunk's cache before a second decode cache), and a batching
# wait of 2 s so that the streamed burst forms full batches.
source bench/device_env.sh
timeout 150 python3 bench/judge_speed.py --load-format dummy --device cuda:0 --n 64 --only seed,expected --expected-batches 32 \
  --log-dir $OUT/logs --out $OUT/judge_speed16.json > $OUT/logs/judge_speed16.log 2>&1
echo "seed rc=$?"
grep -E "^\[|Traceback|Error" $OUT/logs/judge_speed16.log | cut -c1-300
for mb in 128 96; do
  n=384
  timeout 180 python3 bench/judge_speed.py --load-format dummy --device cuda:0 --n $n --max-batch $mb --prefill-batch 32 --max-wait-ms 2000 \
    --only service --decodes static --log-dir $OUT/logs --out $OUT/judge_speed16_b$mb.json > $OUT/logs/judge_speed16_b$mb.log 2>&1
  echo "speed b$mb n$n rc=$?"
  grep -E "^\[|^    \{|Traceback|Error" $OUT/logs/judge_speed16_b$mb.log | cut -c1-500
  grep -hE "batch:|memory|Error|Traceback" $OUT/logs/scorer_service_*.log | cut -c1-250
  mkdir -p $OUT/logs/b$mb && mv $OUT/logs/scorer_service_*.log $OUT/logs/b$mb/
done
