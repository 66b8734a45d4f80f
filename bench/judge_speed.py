"""Judge throughput: the scorer service (dynamic batching over gRPC) against a batch-4 `generate`
loop like the seed's, same GPU, same prompts (seed-0-10 protocol, two images per sample), same
output length (every reply forced to exactly --new-tokens tokens, one attempt per sample). The
probability-weighted score path (one prompt forward per sample, no decoding) is timed on its own.

    python bench/judge_speed.py --model models/tiny-qwen3-vl --device cpu --n 8 --size 64 --new-tokens 8
    python bench/judge_speed.py --load-format dummy --device cuda:0 --n 128 --size 1024 --out $OUT/judge.json
"""

from __future__ import annotations

import argparse
import gc
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.common import card_name, git_commit, source_image, write_json  # noqa: E402
from editfleet_common.launch import ServiceProcess, free_port  # noqa: E402
from scorer_service.client import ScorerClient, make_request  # noqa: E402
from scorer_service.judge import Judge, ScoreInput, prepare  # noqa: E402
from scorer_service.protocol import ProtocolRegistry  # noqa: E402

INSTRUCTION = "Make the apple look frozen in a block of ice."
DESCRIPTION = "A red apple on a wooden table next to a glass of water."


def png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def inputs(n: int, size: int) -> list[ScoreInput]:
    src, edit = png(source_image(size, seed=1)), png(source_image(size, seed=2))
    return [ScoreInput(sample_id=f"s{i}", source_image=src, edited_image=edit, instruction=INSTRUCTION,
                       category="physical", variables={"original_description": DESCRIPTION}) for i in range(n)]


def in_process(args, samples, sync) -> dict:
    judge = Judge.load(args.model, device=args.device, dtype=args.dtype, load_format=args.load_format,
                       max_new_tokens=args.new_tokens)
    judge.generation_config.min_new_tokens = args.new_tokens  # same output length for every reply
    registry = ProtocolRegistry.load()
    prepared = [prepare(s, registry) for s in samples]
    rows = {}

    def seed_loop(batch: int, items):
        for i in range(0, len(items), batch):
            judge._generate(judge._prompts(items[i:i + batch]))

    seed_loop(4, prepared[:4])  # warm-up
    sync()
    t0 = time.perf_counter()
    seed_loop(4, prepared)
    sync()
    rows["seed_batch4_generate"] = {"samples": len(prepared), "seconds": time.perf_counter() - t0}

    def expected_only(batch: int, items):
        for i in range(0, len(items), batch):
            chunk = items[i:i + batch]
            judge._expected_scores(chunk, judge._prompts(chunk))

    for batch in args.expected_batches:
        expected_only(batch, prepared[:batch])  # warm-up at this batch size
        sync()
        t0 = time.perf_counter()
        expected_only(batch, prepared)
        sync()
        rows[f"expected_score_only_batch{batch}"] = {"samples": len(prepared), "seconds": time.perf_counter() - t0}
    for row in rows.values():
        row["samples_per_s"] = row["samples"] / row["seconds"]
    if torch.cuda.is_available():
        rows["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
    del judge
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return rows


def through_service(args, samples) -> dict:
    port = free_port()
    argv = [sys.executable, "-m", "scorer_service", "--model", args.model, "--device", args.device,
            "--dtype", args.dtype, "--load-format", args.load_format, "--port", str(port),
            "--max-batch", str(args.max_batch), "--max-wait-ms", "50", "--max-queue", str(4 * args.n),
            "--max-new-tokens", str(args.new_tokens), "--min-new-tokens", str(args.new_tokens),
            "--max-attempts", "1"]
    log = Path(args.log_dir) / "scorer_service.log"
    service = ServiceProcess("scorer", argv, port, log_path=log).start()
    rows = {}
    try:
        t_up = time.perf_counter()
        service.wait_healthy(timeout=900)
        rows["startup_s"] = time.perf_counter() - t_up
        requests = [make_request(s.sample_id, source_image=s.source_image, edited_image=s.edited_image,
                                 instruction=s.instruction, category=s.category, variables=s.variables)
                    for s in samples]
        with ScorerClient(service.address) as client:
            list(client.score_many(requests[: args.max_batch]))  # warm-up at the batch size used
            t0 = time.perf_counter()
            results = list(client.score_many(requests))
            elapsed = time.perf_counter() - t0
            info = client.info()
        rows.update({
            "samples": len(results), "seconds": elapsed, "samples_per_s": len(results) / elapsed,
            "statuses": sorted({r.status for r in results}),
            "with_expected_score": sum(r.HasField("expected_score") for r in results),
            "batch_size_counts": dict(info.batch_stats.batch_size_counts),
        })
    finally:
        rows["exit_code"] = service.stop(grace=60)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="Qwen/Qwen3-VL-8B-Instruct")
    p.add_argument("--load-format", default="auto", choices=["auto", "dummy"])
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--expected-batches", type=lambda s: [int(x) for x in s.split(",")], default=[8, 32])
    p.add_argument("--skip-service", action="store_true")
    p.add_argument("--log-dir", default="/tmp/editfleet-bench")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    samples = inputs(args.n, args.size)
    result = {"bench": "judge_speed", "card": card_name(), "date": time.strftime("%Y-%m-%d"), "git": git_commit(),
              "command": " ".join(sys.argv), "settings": {k: v for k, v in vars(args).items()}}
    result["in_process"] = in_process(args, samples, sync)
    base = result["in_process"]["seed_batch4_generate"]["samples_per_s"]
    for key, row in result["in_process"].items():
        if isinstance(row, dict):
            row["x_seed_loop"] = row["samples_per_s"] / base
            print(f"[{key}] {row['samples_per_s']:.3f} samples/s ({row['x_seed_loop']:.2f}x)", flush=True)
    if not args.skip_service:
        result["service"] = svc = through_service(args, samples)
        svc["x_seed_loop"] = svc["samples_per_s"] / base
        print(f"[service max_batch={args.max_batch}] {svc['samples_per_s']:.3f} samples/s ({svc['x_seed_loop']:.2f}x)")
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
