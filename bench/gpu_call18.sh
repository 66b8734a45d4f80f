#!/usr/bin/env bash
# GPU call 18 (1 GPU): goal 6 again on another machine, with the code as committed at the end of
# session 3 (scorer defaults: --decode auto = static on CUDA): the seed-style loop, then the service at
# max batch 96 over 768 samples (8 batches: closer to the steady state than 384).
source bench/device_env.sh
timeout 150 python3 bench/judge_speed.py --load-format dummy --device cuda:0 --n 64 --only seed --log-dir $OUT/logs \
  --out $OUT/judge_speed18.json > $OUT/logs/judge_speed18.log 2>&1
echo "seed rc=$?"
grep -E "^\[|Traceback|Error" $OUT/logs/judge_speed18.log | cut -c1-300
timeout 240 python3 bench/judge_speed.py --load-format dummy --device cuda:0 --n 768 --max-batch 96 --prefill-batch 32 --max-wait-ms 2000 \
  --only service --decodes static --log-dir $OUT/logs --out $OUT/judge_speed18_b96.json > $OUT/logs/judge_speed18_b96.log 2>&1
echo "speed b96 n768 rc=$?"
grep -E "^\[|^    \{|Traceback|Error" $OUT/logs/judge_speed18_b96.log | cut -c1-500
grep -hE "batch:|Error|Traceback" $OUT/logs/scorer_service_*.log | cut -c1-250
