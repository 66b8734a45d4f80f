"""Judge start-up: `from_pretrained` of a judge (the floor) against the scorer service from process
start to answering (health SERVING, warm-up included).

Without downloadable weights, the real Qwen3-VL-8B architecture is built with random weights and
saved once with `save_pretrained` (safetensors) to --dir; both measurements then load those files
from a warm page cache, like a second run on the same node.

    python bench/judge_startup.py --dir /tmp/judge --device cuda:0 --out $OUT/judge_startup.json
    python bench/judge_startup.py --dir models/tiny-qwen3-vl --device cpu --repeats 1 --log-dir $TMP  # dry run (scorer)

Staged start (the orchestrator's swap): the scorer started with --stage-on-host is timed from
SIGUSR1 (sent once its health service editfleet.v1.Scorer.staged is SERVING) to health SERVING;
--skip-staged leaves that out.
"""

from __future__ import annotations

import argparse
import signal
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
    judge.backend.model.save_pretrained(directory)
    judge.backend.processor.save_pretrained(directory)
    del judge
    torch.cuda.empty_cache()
    hash_files(directory)  # the content-hash cache a first start would fill
    return time.perf_counter() - t0


def _poll(channel, service: str, proc: ServiceProcess, timeout: float = 900.0) -> None:
    from editfleet_common.channels import health_status

    deadline = time.perf_counter() + timeout
    while health_status(channel, service, timeout=1.0) != "SERVING":
        if not proc.alive() or time.perf_counter() > deadline:
            raise SystemExit(f"staged scorer: {service or 'health'} never SERVING; see {proc.log_path}")
        time.sleep(0.005)


def measure_staged(args, directory: Path, result: dict, from_pretrained_s: float) -> None:
    """Scorer with --stage-on-host: time to staged (process start -> weights in host memory), then
    SIGUSR1 -> SERVING (what the orchestrator's scorer_up_s counts after the editors are down)."""
    from editfleet_common.channels import make_channel
    from scorer_service.client import STAGED_HEALTH_SERVICE

    for i in range(args.repeats):
        port = free_port()
        argv = [sys.executable, "-m", "scorer_service", "--model", str(directory), "--device", args.device,
                "--port", str(port), "--stage-on-host"]
        log_path = Path(args.log_dir) / f"judge_startup_staged_{i}.log"
        service = ServiceProcess("scorer", argv, port, log_path=log_path)
        t0 = time.perf_counter()
        service.start()
        channel = make_channel(service.address)
        try:
            _poll(channel, STAGED_HEALTH_SERVICE, service)
            result.setdefault("staged_ready_s", []).append(time.perf_counter() - t0)
            time.sleep(1.0)  # staged and idle, as behind running editors
            t1 = time.perf_counter()
            service.proc.send_signal(signal.SIGUSR1)
            _poll(channel, "", service)
            result.setdefault("go_to_serving_s", []).append(time.perf_counter() - t1)
        finally:
            channel.close()
            service.stop(grace=30)
        phases = [ln for ln in log_path.read_text(errors="replace").splitlines() if "scorer_service: phases:" in ln]
        result.setdefault("staged_phases", []).append(phases[-1].split("phases: ", 1)[1] if phases else "")
    go = min(result["go_to_serving_s"])
    result["ratio_staged_best"] = go / from_pretrained_s
    print(f"[judge] staged: ready {min(result['staged_ready_s']):.2f}s after start; SIGUSR1 -> SERVING {go:.2f}s "
          f"= {result['ratio_staged_best']:.2f}x from_pretrained (goal <= 1.2x)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default="/tmp/editfleet-judge")
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--log-dir", default="/tmp/editfleet-bench")
    p.add_argument("--out", default=None)
    p.add_argument("--skip-staged", action="store_true", help="do not measure the staged start")
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
    if not args.skip_staged:
        measure_staged(args, directory, result, min(loads))
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
