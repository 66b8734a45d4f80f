#!/usr/bin/env bash
# GPU call 4 (1 GPU): all editor speed modes in one process (reference, default, fast, fp8 = fast without
# its cache), per-forward transformer time inside the pipeline, a CPU+CUDA profile of one default-mode
# step, and the card's clocks/power sampled every second.
source bench/device_env.sh
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active \
  --format=csv -lms 1000 > $OUT/logs/smi.csv &
SMI=$!
timeout 560 python3 bench/editor_speed.py --load-format dummy --model Qwen/Qwen-Image-Edit --device cuda \
  --steps 20 --size 1024 --modes reference,default,fast,fp8 --profile-mode default --trace-dir /tmp/traces \
  --out $OUT/editor_speed4.json > $OUT/logs/editor_speed4.log 2>&1
echo "rc=$?"
kill $SMI
gzip -c /tmp/traces/default_step.json > $OUT/default_step_trace.json.gz 2>/dev/null
grep -E "^\[|Error|Traceback" $OUT/logs/editor_speed4.log | tail -20
