#!/usr/bin/env bash
# GPU call 2: transformer kernel/compile variants + profile on GPU 0; the fast mode on GPU 1.
source bench/device_env.sh
(CUDA_VISIBLE_DEVICES=0 timeout 420 python3 bench/transformer_variants.py --profile --out $OUT/variants.json > $OUT/logs/variants.log 2>&1) &
(CUDA_VISIBLE_DEVICES=1 timeout 420 python3 bench/editor_speed.py --load-format dummy --model Qwen/Qwen-Image-Edit --device cuda \
    --steps 20 --size 1024 --modes reference,default,fast --out $OUT/editor_speed_fast.json > $OUT/logs/editor_speed_fast.log 2>&1) &
wait
grep -E "^\[|^cond|Error" $OUT/logs/variants.log | tail -20
grep -A 30 "Self CUDA" $OUT/logs/variants.log | head -34
grep -E "^\[|Error" $OUT/logs/editor_speed_fast.log | tail -8
