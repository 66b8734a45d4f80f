"""Where the staged judge's warm-up batch spends its time after the go signal (the part of goal 5 left
over once the weights are on the device): the staged path (load on host, pin, move), then the warm-up
batch under the profiler (CPU + CUDA), twice: the first call pays the lazy initialisation. The
profiler records the ops of every thread: the processor's on this one, the forwards on the judge's
device thread (and static decoding on its decode thread).

    python bench/judge_warmup_profile.py --model /tmp/judge --device cuda:0 --out $OUT/warmup_profile.json
    python bench/judge_warmup_profile.py --model models/tiny-qwen3-vl --device cpu  # dry run (scorer)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.common import card_name, git_commit, write_json  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="/tmp/judge")
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--cudnn-attention", choices=["off", "on"], default="off", help="as the scorer's flag")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    from torch.profiler import ProfilerActivity, profile

    from scorer_service.judge import Judge
    from suites.protocols import load_protocols
    from scorer_service.samples import warmup_sample
    from scorer_service.staging import pack_into_pinned, prepare_device

    cuda = args.device.startswith("cuda")
    torch.backends.cuda.enable_cudnn_sdp(args.cudnn_attention == "on")
    prepare_device(args.device)
    judge = Judge.load(args.model, device=args.device, stage_on_host=cuda)
    if cuda:
        pack_into_pinned(judge.backend.model)
    result = {"bench": "judge_warmup_profile", "card": card_name(), "date": time.strftime("%Y-%m-%d"),
              "git": git_commit(), "command": " ".join(sys.argv), "move_s": judge.move_to_device(), "calls": []}
    sample = warmup_sample(load_protocols())
    all_threads = torch._C._profiler._ExperimentalConfig(profile_all_threads=True)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])

    for _ in range(2):
        t0 = time.perf_counter()
        with profile(activities=activities, experimental_config=all_threads) as prof:
            judge.warm_up(sample)
            if cuda:
                torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=40, max_name_column_width=70)
        print(f"warm-up call: {seconds:.2f}s\n{table}", flush=True)
        result["calls"].append({"seconds": seconds, "top_cpu_total": table})
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
