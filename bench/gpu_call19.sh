#!/usr/bin/env bash
# GPU call 19 (1 GPU): check after the review mends (638ac50: no cache zeroing on reuse, write position
# derived inside the graph): static replies against the dynamic service's, three batches of 32 (the
# decoder reused twice), and the throughput of both.
source bench/device_env.sh
timeout 400 python3 bench/judge_speed.py --load-format dummy --device cuda:0 --n 96 --max-batch 32 --only service \
  --decodes dynamic,static --log-dir $OUT/logs --out $OUT/judge_speed19.json > $OUT/logs/judge_speed19.log 2>&1
echo "rc=$?"
grep -E "^\[|^    \{|Traceback|Error" $OUT/logs/judge_speed19.log | cut -c1-600
grep -hE "batch:|Traceback" $OUT/logs/scorer_service_*.log | cut -c1-220
