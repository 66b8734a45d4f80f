#!/usr/bin/env bash
# GPU call 5 (1 GPU): editor speed modes after the fast mode moved to FP8 + output forecast (fullgraph
# compile): reference, default, fast, fp8 (= fast without the forecast), one process, clocks sampled.
source bench/device_env.sh
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_event_reasons.active \
  --format=csv -lms 1000 > $OUT/logs/smi5.csv &
SMI=$!
timeout 570 python3 bench/editor_speed.py --load-format dummy --model Qwen/Qwen-Image-Edit --device cuda \
  --steps 20 --size 1024 --modes reference,default,fast,fp8 --out $OUT/editor_speed5.json > $OUT/logs/editor_speed5.log 2>&1
echo "rc=$?"
kill $SMI
grep -E "^\[|Error|Traceback" $OUT/logs/editor_speed5.log | tail -20
