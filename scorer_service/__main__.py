"""python -m scorer_service --model ID_OR_PATH [--device cuda] [--port 50052] ...

Starts the gRPC server at once with health NOT_SERVING, loads the judge, runs a warm-up batch,
then reports SERVING. SIGTERM/SIGINT: refuse new calls, let running ones finish within --grace.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from editfleet_common.grpc_server import DEFAULT_MAX_MESSAGE_BYTES, ServiceHost, TlsConfig

log = logging.getLogger("scorer_service")


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
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=50052)
    p.add_argument("--max-batch", type=int, default=8, help="samples per device batch")
    p.add_argument("--max-wait-ms", type=float, default=50.0, help="how long a lone request waits for company")
    p.add_argument("--max-queue", type=int, default=256, help="waiting samples before RESOURCE_EXHAUSTED")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--min-new-tokens", type=int, default=0,
                   help="force replies to at least this many tokens (benchmarks: a fixed output length)")
    p.add_argument("--max-attempts", type=int, choices=[1, 2], default=2,
                   help="2: re-ask once with a stricter suffix when no score can be parsed")
    p.add_argument("--protocols-dir", action="append", default=[], help="extra protocol files (repeatable)")
    p.add_argument("--default-protocol", default="seed-0-10")
    p.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    p.add_argument("--max-image-pixels", type=int, default=40_000_000)
    p.add_argument("--grace", type=float, default=30.0, help="seconds to finish running calls on SIGTERM")
    p.add_argument("--threads", type=int, default=int(env("EDITFLEET_THREADS", "4")),
                   help="torch CPU threads (default $EDITFLEET_THREADS or 4)")
    p.add_argument("--seed", type=int, default=0, help="seed for --load-format dummy weights")
    p.add_argument("--no-warmup", action="store_true", help="report SERVING without a warm-up batch")
    p.add_argument("--tls-cert", help="server certificate (PEM); enables TLS")
    p.add_argument("--tls-key", help="server private key (PEM)")
    p.add_argument("--tls-client-ca", help="CA for client certificates: enables mutual TLS")
    p.add_argument("--log-level", default=env("LOG_LEVEL", "INFO"))
    return p


def _warmup_sample(registry):
    """A small synthetic request through the whole path (processor, generate, expected score)."""
    from PIL import Image

    from editfleet_common.images import encode_png

    from .judge import ScoreInput, prepare

    protocol = registry.get("")
    variables = {name: "warm-up" for name in protocol.variables}
    image = encode_png(Image.new("RGB", (64, 64), (128, 128, 128)))
    return prepare(
        ScoreInput("warm-up", image, image, "warm-up", "", protocol.name, variables), registry
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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

    from .server import SERVICE_NAME, ScorerService

    tls = TlsConfig(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    host = ServiceHost(
        service_names=[SERVICE_NAME],
        host=args.host,
        port=args.port,
        max_message_bytes=args.max_message_bytes,
        grace_s=args.grace,
        tls=tls,
    )
    service = ScorerService(registry, max_message_bytes=args.max_message_bytes,
                            max_image_pixels=args.max_image_pixels)
    host.add(scorer_pb2_grpc.add_ScorerServicer_to_server, service)
    host.install_signal_handlers()
    # Health answers NOT_SERVING while the model loads, so orchestrators can tell "loading" from "down";
    # Scorer calls get UNAVAILABLE until then.
    host.start()
    log.info("listening on %s:%d (NOT_SERVING while loading %s)", args.host, host.port, args.model)

    from .batcher import Batcher
    from .judge import Judge, set_threads

    set_threads(args.threads)
    try:
        judge = Judge.load(
            args.model, device=args.device, dtype=args.dtype, load_format=args.load_format,
            revision=args.revision, max_new_tokens=args.max_new_tokens, seed=args.seed,
        )
    except Exception as exc:  # noqa: BLE001 - a clear one-line reason, then exit non-zero
        log.exception("cannot load the judge")
        print(f"error: cannot load judge {args.model!r}: {type(exc).__name__}: {exc}", file=sys.stderr)
        host.stop()
        return 1
    judge.max_attempts = args.max_attempts
    if args.min_new_tokens:
        judge.generation_config.min_new_tokens = args.min_new_tokens
    log.info("judge: %s", judge.identity)
    if not args.no_warmup:
        outcome = judge.score([_warmup_sample(registry)])[0]
        if outcome.status == "ERROR":
            print(f"error: warm-up batch failed: {outcome.error}", file=sys.stderr)
            host.stop()
            return 1
        log.info("warm-up done (%s)", outcome.status)

    batcher = Batcher(judge.score, max_batch=args.max_batch, max_wait_s=args.max_wait_ms / 1000.0,
                      max_queue=args.max_queue, name="judge-device").start()
    service.attach(judge, batcher)
    host.set_serving(True)
    log.info("SERVING on port %d: protocols %s, max batch %d, max wait %.0f ms",
             host.port, ", ".join(registry.names()), args.max_batch, args.max_wait_ms)
    host.wait()
    batcher.stop(timeout=args.grace)
    log.info("stopped")
    return 0


def exit_now(code: int) -> None:
    """Exit without interpreter teardown: once the server has drained, nothing is left to save, and
    tearing down torch/CUDA state object by object can take seconds that the fleet waits on
    (editors to zero before the judge starts). The driver frees the GPU memory at process exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
