"""python -m scorer_service --model ID_OR_PATH [--device cuda] [--port 50052] ...

Starts the gRPC server at once with health NOT_SERVING, loads the judge, runs a short warm-up
(one sample, 2 new tokens), then reports SERVING. SIGTERM/SIGINT: refuse new calls, let running
ones finish within --grace.

Staged start (--stage-on-host), for a judge that takes over a GPU from the editors:
  1. while the GPU is still busy: imports, CUDA context (a few hundred MB on the GPU), protocols,
     processor, weights read into host memory in the target dtype (page-locked on CUDA); then the
     health service "editfleet.v1.Scorer.staged" turns SERVING and the log says "STAGED";
  2. SIGUSR1 (the go signal, sent once the GPU is free; one sent earlier is remembered): the
     weights are copied to the device, the short warm-up runs, health turns SERVING.
Until SERVING, health answers NOT_SERVING and Score/GetInfo answer UNAVAILABLE. Each phase's time
is logged ("phase ...").
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from editfleet_common import settings
from editfleet_common.grpc_server import exit_now
from editfleet_common.service import Lifecycle, StartFailed, Stopped, at_least_one, common_parser, parse_service_args

from . import guards

log = logging.getLogger("scorer_service")


def build_parser() -> argparse.ArgumentParser:
    common = common_parser(port=50052, threads=4, max_queue=256, max_streams=32,
                           model_help="hub id or local directory (with --load-format dummy: a directory of configs, "
                                      "or anything to use the shipped Qwen3-VL-8B configs)",
                           grace_help="seconds to finish running calls on SIGTERM")
    p = argparse.ArgumentParser(prog="python -m scorer_service", description="VLM judge over gRPC", parents=[common])
    g = p.add_argument_group("the scorer's own")
    settings.MAX_BATCH.add_to(g)
    g.add_argument("--max-wait-ms", type=float, default=500.0,
                   help="how long the first request of a batch waits for company while the device is idle "
                        "(a judge batch takes seconds on a GPU: filling it is worth a fraction of that)")
    settings.MAX_NEW_TOKENS.add_to(g)
    settings.GPUS.add_to(g, type=at_least_one)
    g.add_argument("--min-new-tokens", type=int, default=0,
                   help="force replies to at least this many tokens (benchmarks: a fixed output length)")
    g.add_argument("--cudnn-attention", choices=["off", "on"], default="off",
                   help="let SDPA pick cuDNN attention (off by default: on an H100 it builds an execution plan "
                        "for every new shape, ~17 ms each, and a judge sees a new shape per batch and per decode "
                        "step; the warm-up spent 3 s on it); recorded in the model identity's runtime")
    g.add_argument("--decode", choices=["auto", "dynamic", "static"], default="auto",
                   help="dynamic: transformers' generate and growing cache. static (Qwen3-VL; the fast one, "
                        "more so with a large --max-batch, e.g. 96 on an 80 GB card): a preallocated cache per "
                        "batch size, prompts prefilled in chunks of --prefill-batch, greedy decode steps of the "
                        "whole batch replayed as one CUDA graph; same replies as dynamic. auto (default): static "
                        "for Qwen3-VL on CUDA, else dynamic. Recorded in the model identity's runtime")
    g.add_argument("--prefill-batch", type=int, default=32,
                   help="static decoding: prompts per prefill forward (bounds the prefill's activation memory; "
                        "the batch's KV cache is --max-batch rows)")
    g.add_argument("--max-attempts", type=int, choices=[1, 2], default=2,
                   help="2: re-ask once with a stricter suffix when no score can be parsed")
    g.add_argument("--suites-dir", action="append", default=[],
                   help="a lab's own suite folder (or a folder of them): its protocols and combine rules join the "
                        "built-in suites' (repeatable; also EDITFLEET_SUITES_DIR)")
    g.add_argument("--protocols-dir", action="append", default=[],
                   help="extra protocol files outside any suite folder (repeatable)")
    g.add_argument("--default-protocol", default="seed-0-10")
    g.add_argument("--decode-threads", type=int, default=min(8, os.cpu_count() or 1),
                   help="threads decoding the images of streamed requests, several at once")
    g.add_argument("--no-warmup", action="store_true", help="report SERVING without a warm-up batch")
    guards.add_flags(p.add_argument_group("bounds per request and health", "scorer_service/guards.py (issue 28)"))
    g.add_argument("--stage-on-host", action="store_true",
                   help="staged start: prepare everything that needs no free GPU (weights in host memory), "
                        "then wait for SIGUSR1 before moving the judge to --device (see the module doc)")
    api = p.add_argument_group("judge backend", "a local model (transformers) or an OpenAI-compatible endpoint (openai)")
    settings.add_flags(api, settings.API_SETTINGS, max_concurrency={"type": at_least_one})
    api.add_argument("--retry-base-s", type=float, default=1.0, help="openai: first backoff step (doubles per retry)")
    api.add_argument("--top-logprobs", type=int, default=20,
                     help="openai: top_logprobs asked for the expected score (0: none); absent where not returned")
    metrics = p.add_argument_group("reference metrics", "--backend metrics: --model is CLIP (scorer_service/backends/metrics)")
    settings.add_flags(metrics, (settings.DINO_MODEL,))
    metrics.add_argument("--encoder-batch", type=int, default=16,
                         help="metrics: images or texts per backbone forward (fixed: the last chunk is padded)")
    return p


def load_metrics_judge(args: argparse.Namespace):
    """--backend metrics: CLIP (--model) and DINO (--dino-model) on --device, no language model."""
    from .backends import load_backend
    from .judge import Judge

    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    try:
        backend = load_backend("metrics", args.model, dino_model=args.dino_model, device=args.device,
                               dtype=args.dtype, load_format=args.load_format, revision=args.revision,
                               encoder_batch=args.encoder_batch, seed=args.seed)
    except (OSError, ValueError) as exc:  # a folder or hub id that is not there: one line naming it
        raise StartFailed(f"metrics backbones: {exc}") from None
    return Judge(backend, max_attempts=args.max_attempts)


def load_api_judge(args: argparse.Namespace):
    """--backend openai: nothing to load and no torch; the warm-up (one 1-token request) checks the key
    before any sample is spent."""
    from .backends import load_backend
    from .judge import Judge

    try:
        backend = load_backend(
            "openai", args.model, base_url=args.base_url, api_key_env=args.api_key_env,
            max_concurrency=args.max_concurrency, request_timeout_s=args.request_timeout_s,
            max_retries=args.max_retries, retry_base_s=args.retry_base_s, max_new_tokens=args.max_new_tokens,
            seed=args.seed, top_logprobs=args.top_logprobs)
    except ValueError as exc:  # a bad URL, the key's variable unset: one line naming it
        raise StartFailed(str(exc)) from None
    return Judge(backend, max_attempts=args.max_attempts)


def load_judge(args: argparse.Namespace, lifecycle: Lifecycle, service, staged, guard=None):
    """On the frame's loading thread: the judge, loaded (staged: in host memory, then on the device
    after the go signal). guard: a memory_fit.OutOfMemoryGuard (out of memory: one line, exit 2)."""
    from contextlib import nullcontext

    def during(phase: str):
        return guard.during(phase) if guard is not None else nullcontext()

    if args.backend == "openai":
        return load_api_judge(args)
    if args.backend == "metrics":
        return load_metrics_judge(args)
    from grpc_health.v1 import health_pb2

    from .backends.transformers import NoShippedConfigs, NotEnoughGpus, set_threads
    from .client import STAGED_HEALTH_SERVICE
    from .judge import Judge
    from .staging import pack_into_pinned, prepare_device, release_host_cache

    set_threads(args.threads)
    if args.cudnn_attention == "off":
        import torch

        torch.backends.cuda.enable_cudnn_sdp(False)  # process-wide: this process hosts one judge
    pinned = False
    if args.stage_on_host:
        service.not_ready_reason = "the judge is staged in host memory, waiting for the go signal (SIGUSR1)"
        prepare_device(args.device)
        lifecycle.phase("device context")
    try:
        with during("loading" + (" into host memory" if args.stage_on_host else "")):
            judge = Judge.load(
                args.model, device=args.device, dtype=args.dtype, load_format=args.load_format,
                revision=args.revision, max_new_tokens=args.max_new_tokens, seed=args.seed,
                trust_remote_code=args.trust_remote_code, stage_on_host=args.stage_on_host, decode=args.decode,
                prefill_batch=args.prefill_batch, min_new_tokens=args.min_new_tokens or None,
                max_attempts=args.max_attempts, gpus=args.gpus,
            )
    except (NoShippedConfigs, NotEnoughGpus) as exc:  # one line naming what is missing
        raise StartFailed(str(exc)) from None
    lifecycle.phase("load" + (" to host memory" if args.stage_on_host else ""))
    if args.stage_on_host:
        if args.device.startswith("cuda"):
            try:
                sizes = pack_into_pinned(judge.backend.model)
                pinned = True
                log.info("pinned %.2f GB of weights in %d block(s) (%.2f GB page-locked)",
                         sizes["weights_bytes"] / 1e9, sizes["blocks"], sizes["bytes"] / 1e9)
            except Exception as exc:  # noqa: BLE001 - pageable memory only makes the copy slower
                log.warning("could not pin the weights (%s: %s); the copy to the device will be slower",
                            type(exc).__name__, exc)
            lifecycle.phase("pin")
        lifecycle.host.health.set(STAGED_HEALTH_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        log.info("STAGED in %.2fs (go signal %s); waiting for SIGUSR1 to move the judge to %s",
                 time.monotonic() - lifecycle.started, "already received" if staged.go.is_set() else "not yet received",
                 args.device)
        waiting_since = time.monotonic()
        if not staged.wait_for_go(lambda: lifecycle.stopped):
            log.info("stopped while staged")
            raise Stopped()
        lifecycle.waited_s += time.monotonic() - waiting_since
        # a signal sent before staging ended waited for it
        lifecycle.go_at = max(staged.go_at or lifecycle.last_mark, lifecycle.last_mark)
        log.info("go signal: moving the judge to %s", args.device)
        try:
            with during("moving to the device at the go signal"):
                judge.move_to_device()
        except StartFailed:
            raise
        except Exception as exc:  # noqa: BLE001
            log.exception("cannot move the judge to %s", args.device)
            raise StartFailed(f"cannot move judge to {args.device}: {type(exc).__name__}: {exc}") from None
        if pinned:
            release_host_cache()
        lifecycle.phase("to device", since=lifecycle.go_at)
    if args.device.startswith("cuda"):
        judge.identity.runtime["sdpa_cudnn"] = args.cudnn_attention
    log.info("judge: %s", judge.identity)
    return judge


def startup_problems(args: argparse.Namespace) -> list[str]:
    """What would stop a local judge's load, found before a port is bound or torch imported, one line
    each naming the flag: the model (a folder that is not there or holds no config.json, never taken for
    a hub id; a hub id neither cached nor on the hub; the metrics judge's CLIP and DINO alike) and the
    device (--device, --gpus). The orchestrator's preflight asks the same (editfleet_common.model_checks).
    An API judge has neither."""
    from editfleet_common.model_checks import device_problem, model_problem

    if args.backend == "openai":
        return []
    found = [device_problem(args.device, gpus=args.gpus, confirm_with_torch=True)]
    if args.backend == "transformers":
        found.insert(0, model_problem(args.model, what="judge", needs="config.json", kind="transformers",
                                      flag="--model", dummy=args.load_format == "dummy", ask_hub=True,
                                      revision=args.revision))
    if args.backend == "metrics":  # its two backbones: CLIP (--model) and DINO (--dino-model)
        dummy = args.load_format == "dummy"
        found[:0] = [model_problem(args.model, what="metrics CLIP", needs="config.json", kind="transformers",
                                   flag="--model", dummy=dummy, ask_hub=True, revision=args.revision),
                     model_problem(args.dino_model, what="metrics DINO", needs="config.json", kind="transformers",
                                   flag="--dino-model", dummy=dummy, ask_hub=True)]
    problems = [problem for problem in found if problem]
    if not problems and args.backend == "transformers":  # the model is there and so is the device: does it fit?
        problems += fit_problems(args)
    return problems


def fit_problems(args: argparse.Namespace) -> list[str]:
    """The judge's weights against the free memory where they load (editfleet_common.memory_fit), before
    anything loads: from the safetensors headers of its folder (or cached hub snapshot), or, for
    --load-format dummy, from its configs built on the meta device (torch and transformers imported for
    that: the dummy load needs them next anyway); a hub id still to be downloaded is not estimated. With
    --gpus K: the K GPUs together; a staged start (--stage-on-host): host memory, the GPU being the
    editors' until the go signal. Sets args.weights and args.room for the load's out-of-memory line."""
    from editfleet_common.dtypes import resolve_dtype_name
    from editfleet_common.memory_fit import device_room, does_not_fit, fits, service_remedies, service_weights

    dtype = resolve_dtype_name(args.dtype, args.device)
    args.weights = args.room = None
    dummy_bytes = None
    if args.load_format == "dummy":
        from .backends.transformers.loading import dummy_weight_bytes

        def dummy_bytes(torch_dtype):
            return {"": dummy_weight_bytes(args.model, torch_dtype)}
    args.weights = service_weights(args.model, dtype, dummy_bytes)
    if args.weights is None:
        return []
    where = "cpu" if args.stage_on_host else args.device
    args.room = device_room(where, gpus=args.gpus)
    if fits(args.weights, args.room):
        return []
    if args.stage_on_host:
        return [does_not_fit("judge", args.model, args.weights, args.room,
                             ["a staged start holds the weights in host memory until the go signal: start it without "
                              "--stage-on-host once the GPU is free, or on a machine with more memory"],
                             on="the host, where --stage-on-host holds it (RAM)")]
    return [does_not_fit("judge", args.model, args.weights, args.room,
                         service_remedies(args.weights, args.room, args.device, split=True), device=args.device)]


def memory_guard(args: argparse.Namespace):
    """The load's, the move's (staged) and the warm-up's out-of-memory errors as one line."""
    from editfleet_common.memory_fit import OutOfMemoryGuard, gib

    room = getattr(args, "room", None)
    had = f" ({room.where} had {gib(room.free)} free at start)" if room is not None else ""
    if args.device.startswith("cuda"):
        remedies = [f"give it a GPU with more free memory{had}",
                    "split it over GPUs with --gpus K (a run: --judge-gpus-per-replica K)"]
    else:
        remedies = [f"give it a machine with more memory{had}"]
    if getattr(args, "weights", None) is not None and args.weights.dtype == "float32":
        remedies.insert(0, "--dtype bfloat16 halves the weights")
    return OutOfMemoryGuard("judge", args.model, args.device, weights=getattr(args, "weights", None),
                            remedies=remedies)


def main(argv: list[str] | None = None) -> int:
    from editfleet_common.launch import die_with_parent_if_asked

    die_with_parent_if_asked()  # before anything slow: a launcher that dies now takes this service with it
    started = time.monotonic()
    args = parse_service_args(build_parser(), argv)
    from .staging import StagedStart  # no torch yet: the SIGUSR1 handler goes in before anything slow

    staged = StagedStart(args.stage_on_host)
    if args.stage_on_host and args.device.startswith("cuda"):
        # Load every GPU kernel with the CUDA context, while staged, instead of lazily on first use:
        # on an H100 the first (warm-up) batch after the go signal spent 1.0-2.6 s mostly on that.
        # Read once by the driver at CUDA init, which comes later; an explicit setting wins.
        os.environ.setdefault("CUDA_MODULE_LOADING", "EAGER")

    if args.backend == "openai" and (args.stage_on_host or not args.base_url):
        print("error: --backend openai needs --base-url and takes no --stage-on-host", file=sys.stderr)
        return 2
    if args.backend == "metrics" and args.stage_on_host:
        print("error: --backend metrics takes no --stage-on-host (its backbones load in seconds)", file=sys.stderr)
        return 2
    if args.backend == "metrics" and args.default_protocol == "seed-0-10":  # the warm-up asks the default protocol
        args.default_protocol = "magicbrush"
    if args.gpus > 1 and (args.backend != "transformers" or not args.device.startswith("cuda")
                          or args.stage_on_host or args.decode == "static"):
        print(f"error: --gpus {args.gpus} splits a local judge over GPUs: it needs --device cuda and takes neither "
              "--stage-on-host nor --decode static (both are single-device)", file=sys.stderr)
        return 2
    from suites.catalog import catalog
    from suites.shared.protocol import ProtocolError
    from suites.protocols import load_protocols
    from suites.spec import SuiteError

    try:
        registry = load_protocols(args.protocols_dir, default=args.default_protocol,
                                         suites=catalog(args.suites_dir))
    except (ProtocolError, SuiteError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = startup_problems(args)
    if problems:  # a usage error, as a taken port is: exit 2, nothing started
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr, flush=True)
        return 2

    if args.max_new_tokens is not None:  # one budget for every protocol (settings.reply_budget), for both backends
        for name in registry.names():
            budget = registry.get(name).max_new_tokens
            if budget and budget > args.max_new_tokens:
                log.warning("protocol %s: its suite's replies run to %d tokens; this judge cuts them at %d "
                            "(--max-new-tokens): leave it out, or give --max-new-tokens %d, to judge it as the "
                            "suite does", name, budget, args.max_new_tokens, budget)

    from editfleet_common.service import serve

    from .server import service_spec

    guard = memory_guard(args) if args.backend == "transformers" else None
    spec = service_spec(args, registry, load=lambda lifecycle, service: load_judge(args, lifecycle, service, staged,
                                                                                   guard), memory_guard=guard)
    code = serve(args, spec, started=started)
    return 2 if guard is not None and guard.tripped else code  # out of memory: as the check's refusal


if __name__ == "__main__":
    exit_now(main())
