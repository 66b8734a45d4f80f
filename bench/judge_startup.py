"""Judge start-up: `from_pretrained` of a judge (the floor) against the scorer service from process
start to answering (health SERVING, warm-up included).

Without downloadable weights, the real Qwen3-VL-8B architecture is built with random weights and
saved once with `save_pretrained` (safetensors) to --dir; both measurements then load those files
from a warm page cache, like a second run on the same node.

    python bench/judge_startup.py --dir /tmp/judge --device cuda:0 --out $OUT/judge_startup.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import card_name, git_commit, write_json  # noqa: E402
from editfleet_common.launch import ServiceProcess, free_port  # noqa: E402

TIME_FROM_PRETRAINED = """
import sys, time, torch
from transformers import AutoModelForImageTextToText
cuda = sys.argv[2].startswith("cuda")
if cuda:
    torch.empty(1, device=sys.argv[2])  # CUDA context outside the timed region
t0 = time.perf_counter()
m = AutoModelForImageTextToText.from_pretrained(sys.argv[1], dtype=torch.bfloat16 if cuda else torch.float32,
                                                device_map=sys.argv[2])
if cuda:
    torch.cuda.synchronize()
print(f"FROM_PRETRAINED_S {time.perf_counter() - t0:.3f}")
"""


def save_dummy(directory: Path, device: str) -> float:
    import torch

    from editfleet_common.model_files import hash_files
    from scorer_service.judge import Judge

    t0 = time.perf_counter()
    judge = Judge.load("Qwen/Qwen3-VL-8B-Instruct", device=device, load_format="dummy")
    judge.model.save_pretrained(directory)
    judge.processor.save_pretrained(directory)
    del judge
    torch.cuda.empty_cache()
    hash_files(directory)  # the content-hash cache a first start would fill
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default="/tmp/editfleet-judge")
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--log-dir", default="/tmp/editfleet-bench")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    directory = Path(args.dir)
    result = {"bench": "judge_startup", "card": card_name(), "date": time.strftime("%Y-%m-%d"),
              "git": git_commit(), "command": " ".join(sys.argv)}
    if not (directory / "config.json").exists():
        result["save_s"] = save_dummy(directory, args.device)
    result["weights_gb"] = sum(f.stat().st_size for f in directory.glob("*.safetensors")) / 1e9

    loads = []
    for _ in range(args.repeats):
        out = subprocess.run([sys.executable, "-c", TIME_FROM_PRETRAINED, str(directory), args.device],
                             capture_output=True, text=True)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("FROM_PRETRAINED_S")]
        if not line:
            raise SystemExit(f"from_pretrained failed:\n{out.stderr[-3000:]}")
        loads.append(float(line[0].split()[1]))
    result["from_pretrained_s"] = loads

    ups = []
    for i in range(args.repeats):
        port = free_port()
        argv = [sys.executable, "-m", "scorer_service", "--model", str(directory), "--device", args.device,
                "--port", str(port)]
        service = ServiceProcess("scorer", argv, port, log_path=Path(args.log_dir) / f"judge_startup_{i}.log")
        Path(args.log_dir).mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        service.start()
        service.wait_healthy(timeout=600)
        ups.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        code = service.stop(grace=30)
        result.setdefault("scorer_down_s", []).append(time.perf_counter() - t1)
        result.setdefault("exit_codes", []).append(code)
    result["scorer_serving_s"] = ups
    result["ratio_best"] = min(ups) / min(loads)
    print(f"[judge] from_pretrained {min(loads):.2f}s, scorer SERVING {min(ups):.2f}s = {result['ratio_best']:.2f}x")
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
