#!/usr/bin/env bash
# GPU call (1 H200, ~3-4 min with the two dummy builds): issue 16's speed part. Qwen-Image-Edit-2511 at
# 1024² with two input images: 40 steps true CFG 4 vs a random rank-64 LoRA fused + Lightning's scheduler,
# 8 steps CFG 1; the fused LoRA's per-step overhead; two-image vs one-image s/step (bench/lora_speed.py).
# Needs the peft wheel in .whl/ (pure Python): pip download --no-deps peft==0.21.2 -d .whl
source bench/device_env.sh
timeout 290 python3 bench/lora_speed.py --load-format dummy --device cuda --out $OUT/lora_speed.json \
  > $OUT/logs/lora_speed.log 2>&1
echo "rc=$?"
grep -E '^\[|speedup|overhead|ratio|Error' $OUT/logs/lora_speed.log | tail -20
