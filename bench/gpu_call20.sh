#!/usr/bin/env bash
# GPU call 20 (1 GPU, session 4): goal 2's untried exact levers at transformer level, one run, one card:
# fused q/k/v projections, cuBLASLt GELU epilogue, both, and a batched-CFG proxy (one batch-2 forward
# vs two batch-1 forwards), bracketed by the default-mode baseline before and after. The card's SM
# clock and power are sampled every 500 ms.
source bench/device_env.sh
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_event_reasons.active \
  --format=csv,noheader -lms 500 > $OUT/call20_smi.csv &
SMI=$!
timeout 540 python3 bench/transformer_variants.py --profile --out $OUT/call20_levers.json \
  --variants compiled_cudnn_realrope,lever_fused_qkv,lever_gelu_epilogue,lever_both,lever_batch2_proxy,compiled_cudnn_realrope \
  > $OUT/call20_levers.log 2>&1
echo "rc=$?"
kill $SMI
grep -E "^\[|GELU|^cond|Error|error" $OUT/call20_levers.log | tail -20
