"""Judging throughput over 1 and N judge replicas (issue 15 C; goal: N replicas >= 0.9 * N x one).

For each replica count, that many scorer services are started (replica i on GPU i, its own
CUDA_VISIBLE_DEVICES, or on the CPU), waited for and warmed up (untimed), then the orchestrator's
own judging loop (orchestrator.scoring.Scorer: one queue, a ScoreStream per replica) judges --n
samples (seed-0-10, two images each) and samples/s is taken over that pass. Every reply is forced to
exactly --new-tokens tokens (--min-new-tokens = --max-new-tokens), one attempt per sample, so that
every configuration does the same work. The result rows give samples/s, the efficiency against N x
the one-replica rate, each replica's share of the samples and the largest batch each ran.

    python bench/judge_replicas.py --model models/tiny-qwen3-vl --device cpu --replicas 1,2 --n 6 --size 64 --new-tokens 4 --max-batch 2 --threads 1 --log-dir $TMP/logs --out $OUT/judge_replicas.json  # dry run (scorer)
    python bench/judge_replicas.py --load-format dummy --gpus 0,1,2,3,4,5,6,7 --replicas 1,8 --n 768 \
        --max-batch 32 --out $OUT/judge_replicas.json                      # on an 8-GPU machine
    python bench/judge_replicas.py --load-format dummy --model qwen3-vl-30b-a3b --gpus 0,1,2,3 --gpus-per-replica 2 \
        --replicas 1,2 --n 256 --max-batch 32 --out $OUT/judge_split.json   # judges split over 2 GPUs each
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import card_name, git_commit, source_image, write_json  # noqa: E402
from editfleet_common.launch import ServiceProcess, free_port, venv_python, wait_all_healthy  # noqa: E402
from orchestrator.benchmark import Sample  # noqa: E402
from orchestrator.fleet.base import Endpoint  # noqa: E402
from orchestrator.results import RunDir  # noqa: E402
from orchestrator.scoring import ScoreItem, Scorer  # noqa: E402
from orchestrator.ui import PlainUI  # noqa: E402
from scorer_service.client import ScorerClient  # noqa: E402

INSTRUCTION = "Make the apple look frozen in a block of ice."
DESCRIPTION = "A red apple on a wooden table next to a glass of water."


def start_replicas(args, count: int, logs: Path) -> list[ServiceProcess]:
    procs = []
    for i in range(count):
        port = free_port()
        k = args.gpus_per_replica
        group = args.gpus[i * k:(i + 1) * k]
        device = ("cuda" if k > 1 else "cuda:0") if args.gpus else "cpu"
        argv = [venv_python("scorer"), "-m", "scorer_service", "--model", args.model, "--device", device,
                "--port", str(port), "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms),
                "--max-new-tokens", str(args.new_tokens), "--min-new-tokens", str(args.new_tokens),
                "--max-attempts", "1", "--threads", str(args.threads)]
        if args.load_format != "auto":
            argv += ["--load-format", args.load_format]
        if k > 1:
            argv += ["--gpus", str(k)]  # the judge's weights split over the replica's GPUs
        env = {"CUDA_VISIBLE_DEVICES": ",".join(map(str, group)) if args.gpus else ""}
        procs.append(ServiceProcess(f"scorer-{i}", argv, port, env=env, log_path=logs / f"scorer-{count}-{i}.log").start())
    errors = wait_all_healthy(procs, args.start_timeout)
    if errors:
        for p in procs:
            p.stop(grace=10)
        raise SystemExit("\n".join(errors))
    return procs


def items(n: int, folder: Path, prefix: str) -> list[ScoreItem]:
    src, edit = folder / "source.png", folder / "edit.png"
    return [ScoreItem(i, Sample(id=f"{prefix}{i}", category="physical", instruction=INSTRUCTION,
                                description=DESCRIPTION, image_path=src), {"sha256": ""}, edit)
            for i in range(n)]


def judge_pass(args, endpoints: list[Endpoint], batch: list[ScoreItem], folder: Path) -> tuple[float, list[dict]]:
    run_dir = RunDir(folder).create()
    scorer = Scorer(run_dir=run_dir, ui=PlainUI(io.StringIO()), protocol="seed-0-10", batch_size=args.max_batch,
                    max_in_flight=4 * args.max_batch, max_attempts=1, client_factory=ScorerClient,
                    stall_timeout_s=args.stall_timeout)
    started = time.monotonic()
    outcome = scorer.run(endpoints, batch)
    took = time.monotonic() - started
    if outcome.unscored:
        raise SystemExit(f"{len(outcome.unscored)} sample(s) not judged: see the scorer logs")
    return took, run_dir.scores.read()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="qwen3-vl-8b", help="local dir or hub id (with --load-format dummy: a model with shipped configs, e.g. qwen3-vl-8b)")
    p.add_argument("--load-format", choices=["auto", "dummy"], default="auto")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    p.add_argument("--gpus", default="", help="GPU indices, one replica each (e.g. 0,1,2,3)")
    p.add_argument("--replicas", default="1,2", help="replica counts to measure, e.g. 1,8")
    p.add_argument("--gpus-per-replica", type=int, default=1,
                   help="each replica's weights split over this many of --gpus (the scorer's --gpus)")
    p.add_argument("--n", type=int, default=256, help="samples per timed pass")
    p.add_argument("--size", type=int, default=1024, help="image side (pixels)")
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=500)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--start-timeout", type=float, default=1800)
    p.add_argument("--stall-timeout", type=float, default=600)
    p.add_argument("--log-dir", default="", help="scorer logs (default: a temporary folder)")
    p.add_argument("--out", default="", help="write the result JSON here")
    args = p.parse_args(argv)
    args.gpus = [int(g) for g in args.gpus.split(",") if g.strip()] if args.device == "cuda" else []
    counts = [int(c) for c in args.replicas.split(",")]
    if args.device == "cuda" and max(counts) * args.gpus_per_replica > len(args.gpus):
        p.error(f"--replicas up to {max(counts)} x --gpus-per-replica {args.gpus_per_replica} needs as many --gpus, "
                f"got {args.gpus}")

    work = Path(tempfile.mkdtemp(prefix="judge-replicas-"))
    logs = Path(args.log_dir) if args.log_dir else work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    source_image(args.size, seed=1).save(work / "source.png")
    source_image(args.size, seed=2).save(work / "edit.png")
    rows = []
    for count in counts:
        procs = start_replicas(args, count, logs)
        try:
            endpoints = [Endpoint("scorer" if i == 0 else f"scorer-{i}", proc.address) for i, proc in enumerate(procs)]
            judge_pass(args, endpoints, items(args.max_batch * count, work, f"warm{count}-"), work / f"warm-{count}")
            took, records = judge_pass(args, endpoints, items(args.n, work, f"r{count}-"), work / f"run-{count}")
        finally:
            for proc in procs:
                proc.stop(grace=30)
        shares = Counter(r.get("judge_replica", "scorer") for r in records)
        rows.append({"replicas": count, "samples": len(records), "seconds": round(took, 3),
                     "samples_per_s": round(len(records) / took, 4),
                     "samples_per_replica": dict(sorted(shares.items())),
                     "largest_batch": max(r["batch_size"] for r in records),
                     "statuses": dict(Counter(r["status"] for r in records))})
        print(f"{count} replica(s): {rows[-1]['samples_per_s']:.3f} samples/s over {len(records)} samples "
              f"({took:.1f}s), per replica {rows[-1]['samples_per_replica']}", flush=True)
    one = next((r for r in rows if r["replicas"] == 1), None)
    for row in rows:
        if one is not None:
            row["efficiency_vs_n_x_one"] = round(row["samples_per_s"] / (row["replicas"] * one["samples_per_s"]), 4)
    result = {"bench": "judge_replicas", "card": card_name(), "commit": git_commit(), "args": vars(args),
              "goal": "N replicas >= 0.9 * N x one replica's samples/s", "rows": rows}
    for row in rows:
        if "efficiency_vs_n_x_one" in row:
            print(f"  {row['replicas']} replica(s): efficiency {row['efficiency_vs_n_x_one']:.3f} of N x one")
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
