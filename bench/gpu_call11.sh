#!/usr/bin/env bash
# GPU call 11 (1 GPU): the scorer with cuDNN attention off (its new default): staged start (goal 5) and
# throughput against the seed-style loop, which keeps torch's default attention choice (goal 6).
source bench/device_env.sh
timeout 210 python3 bench/judge_startup.py --dir /tmp/judge --device cuda:0 --repeats 1 --log-dir $OUT/logs \
  --out $OUT/judge_startup11.json > $OUT/logs/judge_startup11.log 2>&1
echo "startup rc=$?"
grep -E "^\[" $OUT/logs/judge_startup11.log; grep -h 'phases' $OUT/logs/judge_startup_*.log | tail -2
timeout 300 python3 bench/judge_speed.py --load-format dummy --device cuda:0 --n 64 --max-batch 32 --expected-batches 32 \
  --decodes dynamic --log-dir $OUT/logs --out $OUT/judge_speed11.json > $OUT/logs/judge_speed11.log 2>&1
echo "speed rc=$?"
grep -E "^\[|Traceback" $OUT/logs/judge_speed11.log
