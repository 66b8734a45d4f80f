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
import threading

from editfleet_common.grpc_server import DEFAULT_MAX_MESSAGE_BYTES, ServiceHost, TlsConfig, exit_now

log = logging.getLogger("scorer_service")


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: need >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m scorer_service", description="VLM judge over gRPC")
    p.add_argument("--model", required=True, help="hub id or local directory (with --load-format dummy: "
                   "a directory of configs, or anything to use the shipped Qwen3-VL-8B configs)")
    p.add_argument("--revision", default=None, help="hub revision (branch, tag or commit) to load")
    p.add_argument("--device", default=env("SCORER_DEVICE", "cpu"), help="cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="auto", help="auto (bfloat16 on cuda, float32 on cpu), float32, bfloat16, float16")
    p.add_argument("--load-format", choices=["auto", "dummy"], default="auto",
                   help="dummy: the real architecture with random weights (performance work only)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow the model folder's own Python code to run (auto_map); off by default: a model "
                        "is data, and pickled weights are refused by torch.load(weights_only=True)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=50052)
    p.add_argument("--max-batch", type=int, default=8, help="samples per device batch")
    p.add_argument("--max-wait-ms", type=float, default=500.0,
                   help="how long the first request of a batch waits for company while the device is idle "
                        "(a judge batch takes seconds on a GPU: filling it is worth a fraction of that)")
    p.add_argument("--max-queue", type=int, default=256, help="waiting samples before RESOURCE_EXHAUSTED")
    p.add_argument("--max-streams", type=_at_least_one, default=32,
                   help="Score and ScoreStream calls open at once; more get RESOURCE_EXHAUSTED, so that health "
                        "checks always find a free handler thread (the orchestrator opens one stream)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--min-new-tokens", type=int, default=0,
                   help="force replies to at least this many tokens (benchmarks: a fixed output length)")
    p.add_argument("--cudnn-attention", choices=["off", "on"], default="off",
                   help="let SDPA pick cuDNN attention (off by default: on an H100 it builds an execution plan "
                        "for every new shape, ~17 ms each, and a judge sees a new shape per batch and per decode "
                        "step; the warm-up spent 3 s on it); recorded in the model identity's runtime")
    p.add_argument("--decode", choices=["auto", "dynamic", "static"], default="auto",
                   help="dynamic: transformers' generate and growing cache. static (Qwen3-VL; the fast one, "
                        "more so with a large --max-batch, e.g. 96 on an 80 GB card): a preallocated cache per "
                        "batch size, prompts prefilled in chunks of --prefill-batch, greedy decode steps of the "
                        "whole batch replayed as one CUDA graph; same replies as dynamic. auto (default): static "
                        "for Qwen3-VL on CUDA, else dynamic. Recorded in the model identity's runtime")
    p.add_argument("--prefill-batch", type=int, default=32,
                   help="static decoding: prompts per prefill forward (bounds the prefill's activation memory; "
                        "the batch's KV cache is --max-batch rows)")
    p.add_argument("--max-attempts", type=int, choices=[1, 2], default=2,
                   help="2: re-ask once with a stricter suffix when no score can be parsed")
    p.add_argument("--protocols-dir", action="append", default=[], help="extra protocol files (repeatable)")
    p.add_argument("--default-protocol", default="seed-0-10")
    p.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    p.add_argument("--max-image-pixels", type=int, default=40_000_000)
    p.add_argument("--grace", type=float, default=30.0, help="seconds to finish running calls on SIGTERM")
    p.add_argument("--decode-threads", type=int, default=min(8, os.cpu_count() or 1),
                   help="threads decoding the images of streamed requests, several at once")
    p.add_argument("--threads", type=int, default=int(env("EDITFLEET_THREADS", "4")),
                   help="torch CPU threads (default $EDITFLEET_THREADS or 4)")
    p.add_argument("--seed", type=int, default=0, help="seed for --load-format dummy weights")
    p.add_argument("--no-warmup", action="store_true", help="report SERVING without a warm-up batch")
    p.add_argument("--stage-on-host", action="store_true",
                   help="staged start: prepare everything that needs no free GPU (weights in host memory), "
                        "then wait for SIGUSR1 before moving the judge to --device (see the module doc)")
    api = p.add_argument_group("judge backend", "who answers: a local model (transformers) or an OpenAI-compatible "
                               "chat-completions endpoint (openai; --model is then the model id sent to it)")
    api.add_argument("--backend", choices=["transformers", "openai"], default="transformers")
    api.add_argument("--base-url", default="", help="openai: the endpoint, e.g. https://api.openai.com/v1")
    api.add_argument("--api-key-env", default="OPENAI_API_KEY",
                     help="openai: the NAME of the environment variable holding the key ('' : none); never the key")
    api.add_argument("--max-concurrency", type=_at_least_one, default=8, help="openai: requests in flight at once")
    api.add_argument("--request-timeout-s", type=float, default=120.0, help="openai: seconds per request")
    api.add_argument("--max-retries", type=int, default=5,
                     help="openai: retries of a request after 429, 5xx, a timeout or a dropped connection")
    api.add_argument("--retry-base-s", type=float, default=1.0, help="openai: first backoff step (doubles per retry)")
    api.add_argument("--top-logprobs", type=int, default=20,
                     help="openai: top_logprobs asked for the expected score (0: none); absent where not returned")
    p.add_argument("--tls-cert", help="server certificate (PEM); enables TLS")
    p.add_argument("--tls-key", help="server private key (PEM)")
    p.add_argument("--tls-client-ca", help="CA for client certificates: enables mutual TLS")
    p.add_argument("--log-level", default=env("LOG_LEVEL", "INFO"))
    return p


def _serve_over_api(args, host, service, registry) -> int:
    """--backend openai: no model to load (and no torch); the warm-up, one 1-token request, checks the
    key before any sample is spent."""
    from .backends import load_backend
    from .backends.base import JudgeUnusable
    from .batcher import Batcher
    from .judge import Judge
    from .samples import warmup_sample

    try:
        judge = Judge(load_backend(
            "openai", args.model, base_url=args.base_url, api_key_env=args.api_key_env,
            max_concurrency=args.max_concurrency, request_timeout_s=args.request_timeout_s,
            max_retries=args.max_retries, retry_base_s=args.retry_base_s, max_new_tokens=args.max_new_tokens,
            seed=args.seed, top_logprobs=args.top_logprobs), max_attempts=args.max_attempts)
        if not args.no_warmup:
            outcome = judge.warm_up(warmup_sample(registry))
            if outcome.status == "ERROR":
                raise RuntimeError(f"warm-up request failed: {outcome.error}")
    except (JudgeUnusable, ValueError, RuntimeError) as exc:
        log.error("cannot use the judge endpoint: %s", exc)
        print(f"error: {exc}", file=sys.stderr)
        host.stop()
        return 2 if isinstance(exc, JudgeUnusable) else 1
    log.info("judge: %s", judge.identity)
    # one sample per batch, up to --max-concurrency at once: a slow or retried request holds up no other,
    # and a failed batch is never asked again for samples that were answered
    batcher = Batcher(judge.score, max_batch=1, max_wait_s=0.0, max_queue=args.max_queue, name="api-requests",
                      max_in_flight=judge.batches_in_flight).start()
    service.attach(judge, batcher)
    host.set_serving(True)
    log.info("SERVING on port %d: judge %s at %s, protocols %s, %d request(s) at once", host.port, args.model,
             judge.identity.runtime.get("endpoint_host"), ", ".join(registry.names()), args.max_concurrency)
    host.wait()
    batcher.stop(timeout=args.grace)
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    from editfleet_common.launch import die_with_parent_if_asked

    die_with_parent_if_asked()  # before anything slow: a launcher that dies now takes this service with it
    args = build_parser().parse_args(argv)
    import time

    started = time.monotonic()
    from .staging import StagedStart  # no torch yet: the SIGUSR1 handler goes in before anything slow

    staged = StagedStart(args.stage_on_host)
    if args.stage_on_host and args.device.startswith("cuda"):
        # Load every GPU kernel with the CUDA context, while staged, instead of lazily on first use:
        # on an H100 the first (warm-up) batch after the go signal spent 1.0-2.6 s mostly on that.
        # Read once by the driver at CUDA init, which comes later; an explicit setting wins.
        import os

        os.environ.setdefault("CUDA_MODULE_LOADING", "EAGER")
    phases: dict[str, float] = {}

    def phase(name: str, since: float) -> float:
        now = time.monotonic()
        phases[name] = now - since
        log.info("phase %s: %.2fs", name, phases[name])
        return now

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.backend == "openai" and (args.stage_on_host or not args.base_url):
        print("error: --backend openai needs --base-url and takes no --stage-on-host", file=sys.stderr)
        return 2
    if bool(args.tls_cert) != bool(args.tls_key):
        print("error: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2

    from editfleet.v1 import scorer_pb2_grpc

    from .protocol import ProtocolError, ProtocolRegistry

    try:
        registry = ProtocolRegistry.load(args.protocols_dir, default=args.default_protocol)
    except ProtocolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from .server import LONG_RUNNING_METHODS, SERVICE_NAME, ScorerService

    tls = TlsConfig(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    host = ServiceHost(
        service_names=[SERVICE_NAME],
        host=args.host,
        port=args.port,
        max_message_bytes=args.max_message_bytes,
        long_running_methods=LONG_RUNNING_METHODS,
        max_streams=args.max_streams,
        grace_s=args.grace,
        tls=tls,
    )
    service = ScorerService(registry, max_message_bytes=args.max_message_bytes,
                            max_image_pixels=args.max_image_pixels, decode_threads=args.decode_threads)
    host.add(scorer_pb2_grpc.add_ScorerServicer_to_server, service)
    signalled = threading.Event()
    host.install_signal_handlers(on_stop=signalled.set)

    def exit_if_stopped_before_serving() -> None:
        # The load runs on this (main) thread and cannot be interrupted; a SIGTERM that comes
        # before the judge serves has nothing to drain, so the process ends as soon as the server has.
        host.wait()
        if signalled.is_set() and service.batcher is None:
            log.info("stopped before the judge was serving")
            exit_now(0)

    threading.Thread(target=exit_if_stopped_before_serving, name="stop-watch", daemon=True).start()
    # Health answers NOT_SERVING while the model loads, so orchestrators can tell "loading" from "down";
    # Scorer calls get UNAVAILABLE until then.
    host.start()
    log.info("listening on %s:%d (NOT_SERVING while loading %s)", args.host, host.port, args.model)
    mark = phase("imports+server", started)
    if args.backend == "openai":
        return _serve_over_api(args, host, service, registry)

    from grpc_health.v1 import health_pb2

    from .batcher import Batcher
    from .client import STAGED_HEALTH_SERVICE
    from .backends.transformers import set_threads
    from .judge import Judge
    from .samples import warmup_sample
    from .staging import pack_into_pinned, prepare_device, release_host_cache

    set_threads(args.threads)
    if args.cudnn_attention == "off":
        import torch

        torch.backends.cuda.enable_cudnn_sdp(False)  # process-wide: this process hosts one judge
    pinned = False
    try:
        if args.stage_on_host:
            service.not_ready_reason = "the judge is staged in host memory, waiting for the go signal (SIGUSR1)"
            prepare_device(args.device)
            mark = phase("device context", mark)
        judge = Judge.load(
            args.model, device=args.device, dtype=args.dtype, load_format=args.load_format,
            revision=args.revision, max_new_tokens=args.max_new_tokens, seed=args.seed,
            trust_remote_code=args.trust_remote_code, stage_on_host=args.stage_on_host, decode=args.decode,
            prefill_batch=args.prefill_batch, min_new_tokens=args.min_new_tokens or None,
            max_attempts=args.max_attempts,
        )
        mark = phase("load" + (" to host memory" if args.stage_on_host else ""), mark)
        if args.stage_on_host and args.device.startswith("cuda"):
            try:
                sizes = pack_into_pinned(judge.backend.model)
                pinned = True
                log.info("pinned %.2f GB of weights in %d block(s) (%.2f GB page-locked)",
                         sizes["weights_bytes"] / 1e9, sizes["blocks"], sizes["bytes"] / 1e9)
            except Exception as exc:  # noqa: BLE001 - pageable memory only makes the copy slower
                log.warning("could not pin the weights (%s: %s); the copy to the device will be slower",
                            type(exc).__name__, exc)
            mark = phase("pin", mark)
    except Exception as exc:  # noqa: BLE001 - a clear one-line reason, then exit non-zero
        log.exception("cannot load the judge")
        print(f"error: cannot load judge {args.model!r}: {type(exc).__name__}: {exc}", file=sys.stderr)
        host.stop()
        return 1
    if args.stage_on_host:
        host.health.set(STAGED_HEALTH_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        log.info("STAGED in %.2fs (go signal %s); waiting for SIGUSR1 to move the judge to %s",
                 time.monotonic() - started, "already received" if staged.go.is_set() else "not yet received",
                 args.device)
        if not staged.wait_for_go(lambda: host.stopped):
            log.info("stopped while staged")
            return 0
        go_at = max(staged.go_at or mark, mark)  # a signal sent before staging ended waited for it
        log.info("go signal: moving the judge to %s", args.device)
        try:
            judge.move_to_device()
        except Exception as exc:  # noqa: BLE001
            log.exception("cannot move the judge to %s", args.device)
            print(f"error: cannot move judge to {args.device}: {type(exc).__name__}: {exc}", file=sys.stderr)
            host.stop()
            return 1
        if pinned:
            release_host_cache()
        mark = phase("to device", go_at)
    if args.device.startswith("cuda"):
        judge.identity.runtime["sdpa_cudnn"] = args.cudnn_attention
    log.info("judge: %s", judge.identity)
    if not args.no_warmup:
        outcome = judge.warm_up(warmup_sample(registry))
        if outcome.status == "ERROR":
            print(f"error: warm-up batch failed: {outcome.error}", file=sys.stderr)
            host.stop()
            return 1
        mark = phase("warm-up", mark)

    batcher = Batcher(judge.score, max_batch=args.max_batch, max_wait_s=args.max_wait_ms / 1000.0,
                      max_queue=args.max_queue, name="judge-batches", max_in_flight=judge.batches_in_flight,
                      ready_for_next=judge.ready_for_next).start()
    service.attach(judge, batcher)
    host.set_serving(True)
    log.info("SERVING on port %d: protocols %s, max batch %d, max wait %.0f ms",
             host.port, ", ".join(registry.names()), args.max_batch, args.max_wait_ms)
    log.info("phases: %s; process start -> SERVING %.2fs%s",
             ", ".join(f"{k} {v:.2f}s" for k, v in phases.items()), time.monotonic() - started,
             f"; go signal -> SERVING {time.monotonic() - go_at:.2f}s" if args.stage_on_host else "")
    host.wait()
    batcher.stop(timeout=args.grace)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    exit_now(main())
