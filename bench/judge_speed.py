"""Judge throughput: the scorer service (dynamic batching over gRPC) against a batch-4 `generate`
loop like the seed's, same GPU, same prompts (seed-0-10 protocol, two images per sample), same
output length (every reply forced to exactly --new-tokens tokens, one attempt per sample). The
probability-weighted score path (one prompt forward per sample, no decoding) is timed on its own.

Parts (--only, comma-separated; default all):
  seed      the seed-style loop: plain `generate` in batches of 4, transformers' default cache
  expected  the expected score alone (a full forward over prompt + prefix + "1"), per --expected-batches
  service   one scorer service per --decodes mode (dynamic, static), each its own process, started,
            warmed up with one batch of --max-batch requests (static on CUDA: captures its decode
            graph), then timed; its log (with each batch's phases: inputs, prefill, decode) in --log-dir.
            Its device memory (torch's allocated and reserved, read from the service's metrics every
            0.2 s during the warm-up and the timed run, both at --max-batch) is reported as the
            largest values seen (`device_memory_gb`; none off CUDA)
--seed-n: the seed loop times the first --seed-n samples only (default all --n): at 0.46 samples/s (the
Qwen3-VL-30B-A3B judge) the loop alone would otherwise take most of a 10-minute device call.
Each service row also says how its answers compare with the other parts of the same run: replies
identical to the seed loop's (`same_replies_as_seed_loop`), to the dynamic service's, and the
largest expected-score difference from the full-forward computation (`max_abs_expected_diff_vs_full_forward`).
In bf16 on a GPU another batch size alone can flip a greedy token of a random-weight judge (its
next-token distributions are nearly flat), so replies that differ from the batch-4 seed loop's are
a prompt to look, not by themselves a defect; the static row against the dynamic one (same batches)
is the sharper comparison.

    python bench/judge_speed.py --model models/tiny-qwen3-vl --device cpu --n 4 --size 64 --new-tokens 4 --expected-batches 2 --max-batch 4 --decodes static --log-dir $TMP  # dry run (scorer)
    python bench/judge_speed.py --model models/tiny-qwen3-vl-moe --device cpu --n 3 --size 32 --new-tokens 3 --only service --decodes static --max-batch 3 --prefill-batch 2 --log-dir $TMP  # dry run (scorer)
    python bench/judge_speed.py --load-format dummy --device cuda:0 --n 64 --expected-batches 32 --out $OUT/judge.json

The seed's own judge, Qwen3-VL-30B-A3B (mixture of experts, random weights from the shipped configs,
experts as grouped GEMMs), on one H200 (goal: the static service >= 10x the seed loop):

    python bench/judge_speed.py --model Qwen/Qwen3-VL-30B-A3B-Instruct --load-format dummy --device cuda:0 --n 128 --seed-n 32 --only seed,service --max-batch 64 --prefill-batch 16 --out $OUT/judge_moe.json
"""

from __future__ import annotations

import argparse
import gc
import io
import re
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.common import card_name, git_commit, source_image, write_json  # noqa: E402
from editfleet_common.launch import ServiceProcess, free_port  # noqa: E402
from scorer_service.client import ScorerClient, make_request  # noqa: E402
from scorer_service.judge import Judge  # noqa: E402
from suites.protocols import load_protocols  # noqa: E402
from scorer_service.samples import ScoreInput, build_prompts, prepare  # noqa: E402

PARTS = ("seed", "expected", "service")
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


def in_process(args, samples, sync, parts) -> tuple[dict, dict]:
    """(rows, answers): answers are the seed loop's replies and the full-forward expected scores,
    by sample id, to compare the services' answers with."""
    # the baseline is the seed's way: plain generate, transformers' default (dynamic) cache
    judge = Judge.load(args.model, device=args.device, dtype=args.dtype, load_format=args.load_format,
                       max_new_tokens=args.new_tokens, decode="dynamic",
                       min_new_tokens=args.new_tokens)  # same output length for every reply
    backend = judge.backend
    backend.use_transformers_decode_attention()  # the seed's loop: transformers as it comes
    registry = load_protocols()
    prepared = [prepare(s, registry) for s in samples]
    rows = {}
    answers: dict[str, dict] = {"replies": {}, "expected": {}}

    def seed_loop(batch: int, items, keep: bool = False):
        for i in range(0, len(items), batch):
            chunk = items[i:i + batch]
            texts = backend.generate(build_prompts(chunk))  # seed-0-10: one prompt per sample
            if keep:
                answers["replies"].update({s.sample_id: t for s, t in zip(chunk, texts)})

    if "seed" in parts:
        seed_loop(4, prepared[:4])  # warm-up
        sync()
        timed = prepared[:args.seed_n] if args.seed_n else prepared
        t0 = time.perf_counter()
        seed_loop(4, timed, keep=True)
        sync()
        rows["seed_batch4_generate"] = {"samples": len(timed), "seconds": time.perf_counter() - t0,
                                        "runtime": dict(sorted(judge.identity.runtime.items()))}

    def expected_only(batch: int, items, keep: bool = False):
        for i in range(0, len(items), batch):
            chunk = items[i:i + batch]
            values = backend.reference_expected_scores(build_prompts(chunk))
            if keep:
                answers["expected"].update({s.sample_id: values.get(n) for n, s in enumerate(chunk)})

    for batch in args.expected_batches if "expected" in parts else []:
        expected_only(batch, prepared[:batch])  # warm-up at this batch size
        sync()
        t0 = time.perf_counter()
        expected_only(batch, prepared, keep=batch == max(args.expected_batches))
        sync()
        rows[f"expected_score_only_batch{batch}"] = {"samples": len(prepared), "seconds": time.perf_counter() - t0}
    for row in rows.values():
        row["samples_per_s"] = row["samples"] / row["seconds"]
    if torch.cuda.is_available():
        rows["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
    del judge, backend
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return rows, answers


class DeviceMemory:
    """The largest device memory (GB, torch's allocated and reserved) a service's metrics report,
    read every `every` seconds from its /metrics while running."""

    GAUGES = {"allocated": "editfleet_device_memory_allocated_bytes",
              "reserved": "editfleet_device_memory_reserved_bytes"}

    def __init__(self, port: int, every: float = 0.2):
        self.url, self.every = f"http://127.0.0.1:{port}/metrics", every
        self.peak = {name: 0.0 for name in self.GAUGES}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.read()  # once more at the end

    def _poll(self) -> None:
        while not self._stop.wait(self.every):
            self.read()

    def read(self) -> None:
        try:
            text = urllib.request.urlopen(self.url, timeout=5).read().decode()
        except OSError:
            return
        for name, gauge in self.GAUGES.items():
            found = re.search(rf"^{gauge} (\S+)$", text, re.M)
            if found:
                self.peak[name] = max(self.peak[name], float(found.group(1)) / 1e9)

    def row(self) -> dict | None:
        """{"allocated": GB, "reserved": GB}, None where the service reports none (off CUDA)."""
        return dict(self.peak) if any(self.peak.values()) else None


def through_service(args, samples, decode: str) -> tuple[dict, dict]:
    """(row, answers by sample id: first reply and expected score) for a service with this decode mode."""
    port, metrics_port = free_port(), free_port()
    argv = [sys.executable, "-m", "scorer_service", "--model", args.model, "--device", args.device,
            "--dtype", args.dtype, "--load-format", args.load_format, "--port", str(port),
            "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms),
            "--max-queue", str(4 * args.n), "--max-new-tokens", str(args.new_tokens),
            "--min-new-tokens", str(args.new_tokens), "--max-attempts", "1", "--decode", decode,
            "--prefill-batch", str(args.prefill_batch), "--metrics-port", str(metrics_port)]
    log = Path(args.log_dir) / f"scorer_service_{decode}.log"
    service = ServiceProcess("scorer", argv, port, log_path=log).start()
    rows = {"decode": decode}
    answers = {}
    try:
        t_up = time.perf_counter()
        service.wait_healthy(timeout=900)
        rows["startup_s"] = time.perf_counter() - t_up
        requests = [make_request(s.sample_id, source_image=s.source_image, edited_image=s.edited_image,
                                 instruction=s.instruction, category=s.category, variables=s.variables)
                    for s in samples]
        with ScorerClient(service.address) as client, DeviceMemory(metrics_port) as memory:
            t_warm = time.perf_counter()
            list(client.score_many(requests[: args.max_batch]))  # warm-up at the batch size used
            rows["warmup_batch_s"] = time.perf_counter() - t_warm
            warm_batches = dict(client.info().batch_stats.batch_size_counts)
            t0 = time.perf_counter()
            results = list(client.score_many(requests))
            elapsed = time.perf_counter() - t0
            info = client.info()
        rows["device_memory_gb"] = memory.row()  # the largest seen, at --max-batch
        counts = dict(info.batch_stats.batch_size_counts)
        rows.update({
            "samples": len(results), "seconds": elapsed, "samples_per_s": len(results) / elapsed,
            "statuses": sorted({r.status for r in results}),
            "with_expected_score": sum(r.HasField("expected_score") for r in results),
            "batch_size_counts": counts,  # warm-up included, as before
            "timed_batch_size_counts": {k: v - warm_batches.get(k, 0) for k, v in counts.items()
                                        if v - warm_batches.get(k, 0)},
            "runtime": dict(sorted(info.model.runtime.items())),
        })
        answers = {r.sample_id: {"reply": r.raw_responses[0] if r.raw_responses else None,
                                 "expected": r.expected_score if r.HasField("expected_score") else None}
                   for r in results}
    finally:
        rows["exit_code"] = service.stop(grace=60)
    return rows, answers


def compare(answers: dict, replies: dict, expected: dict) -> dict:
    """How a service's answers compare with replies / expected scores (by sample id) from elsewhere."""
    out = {}
    if replies:
        same = sum(answers.get(i, {}).get("reply") == text for i, text in replies.items())
        out["same_replies"] = f"{same}/{len(replies)}"
    diffs = [abs(answers[i]["expected"] - value) for i, value in expected.items()
             if value is not None and answers.get(i, {}).get("expected") is not None]
    if expected:
        out["max_abs_expected_diff"] = max(diffs) if diffs else None
        out["expected_compared"] = len(diffs)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="Qwen/Qwen3-VL-8B-Instruct")
    p.add_argument("--load-format", default="auto", choices=["auto", "dummy"])
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--seed-n", type=int, default=None, help="samples the seed loop times (default: all --n)")
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--prefill-batch", type=int, default=32, help="the service's --prefill-batch (static decoding)")
    p.add_argument("--max-wait-ms", type=float, default=500.0, help="the service's batching wait (its default)")
    p.add_argument("--expected-batches", type=lambda s: [int(x) for x in s.split(",")], default=[8, 32])
    p.add_argument("--only", type=lambda s: s.split(","), default=list(PARTS),
                   help=f"parts to run, comma-separated: {','.join(PARTS)} (default all)")
    p.add_argument("--decodes", type=lambda s: s.split(","), default=["dynamic", "static"],
                   help="service rows, one process each: dynamic,static (default both, in that order)")
    p.add_argument("--skip-service", action="store_true", help="same as leaving service out of --only")
    p.add_argument("--log-dir", default="/tmp/editfleet-bench")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    parts = [x for x in args.only if x != "service" or not args.skip_service]
    unknown = [x for x in parts if x not in PARTS] + [d for d in args.decodes if d not in ("dynamic", "static")]
    if unknown:
        p.error(f"unknown part or decode mode: {', '.join(unknown)}")
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    samples = inputs(args.n, args.size)
    result = {"bench": "judge_speed", "card": card_name(), "date": time.strftime("%Y-%m-%d"), "git": git_commit(),
              "command": " ".join(sys.argv), "settings": {k: v for k, v in vars(args).items()}}
    answers = {"replies": {}, "expected": {}}
    if "seed" in parts or "expected" in parts:
        result["in_process"], answers = in_process(args, samples, sync, parts)
    seed = result.get("in_process", {}).get("seed_batch4_generate")
    base = seed["samples_per_s"] if seed else None

    def show(key: str, row: dict) -> None:
        if base:
            row["x_seed_loop"] = row["samples_per_s"] / base
        ratio = f" ({row['x_seed_loop']:.2f}x seed loop)" if base else ""
        print(f"[{key}] {row['samples_per_s']:.3f} samples/s{ratio}", flush=True)

    for key, row in result.get("in_process", {}).items():
        if isinstance(row, dict):
            show(key, row)
    write_json(args.out, result)  # after each part: a run cut short by its time limit keeps what finished
    if "service" in parts:
        result["services"] = {}
        dynamic_answers = None
        for decode in args.decodes:
            row, got = through_service(args, samples, decode)
            result["services"][decode] = row
            vs_seed = compare(got, answers["replies"], answers["expected"])
            row.update({f"{k}_as_seed_loop" if k == "same_replies" else f"{k}_vs_full_forward": v
                        for k, v in vs_seed.items()})
            if dynamic_answers is not None:
                vs_dynamic = compare(got, {i: a["reply"] for i, a in dynamic_answers.items()},
                                     {i: a["expected"] for i, a in dynamic_answers.items()})
                row.update({f"{k}_vs_dynamic_service": v for k, v in vs_dynamic.items()})
            if decode == "dynamic":
                dynamic_answers = got
            show(f"service decode={decode} max_batch={args.max_batch}", row)
            write_json(args.out, result)
            print("   ", {k: v for k, v in row.items()
                          if k.startswith(("same_", "max_abs", "timed_batch", "runtime", "device_memory"))},
                  flush=True)
        # the row earlier versions wrote as "service"
        result["service"] = result["services"].get("dynamic") or next(iter(result["services"].values()), None)
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
