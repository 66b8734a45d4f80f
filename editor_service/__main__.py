"""python -m editor_service --model ID_OR_PATH --device cuda:0 --port 50051

One process per device hosting one diffusers edit pipeline behind the editfleet.v1.Editor service.
"""

from __future__ import annotations

import argparse
import logging
import os

from editfleet_common.grpc_server import DEFAULT_MAX_MESSAGE_BYTES, TlsConfig, exit_now
from editfleet_common.images import DEFAULT_MAX_PIXELS


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m editor_service", description=__doc__.strip().splitlines()[2])
    p.add_argument("--model", required=True, help="HF model id or local directory (diffusers layout)")
    p.add_argument("--revision", default=None, help="HF revision (branch, tag or commit) to load")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default: cpu)")
    p.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"],
                   help="auto: bfloat16 on GPUs, float32 on CPU")
    p.add_argument("--load-format", default="auto", choices=["auto", "dummy"],
                   help="dummy: random weights built from configs (capacity planning without weights)")
    p.add_argument("--speed-mode", default="default", choices=["reference", "default", "fast"],
                   help="GPU only (CPU always runs reference): default = same outputs, faster kernels + "
                        "compiled blocks; fast = FP8 + output forecast (transformer on ~1 step in 3), changes outputs (see editor_service/speed.py)")
    p.add_argument("--forecast-interval", type=int, default=3,
                   help="fast mode: the transformer runs on one step in N once warm (the others extrapolate its "
                        "output); 1 runs every step (FP8 only). Larger is faster and further from reference")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow the model folder's own Python code to run (custom pipelines/components); off by "
                        "default: a model is data, and pickled weights are refused by torch.load(weights_only=True)")
    p.add_argument("--lora", action="append", default=[], metavar="PATH[:SCALE]",
                   help="a LoRA adapter (.safetensors that diffusers' load_lora_weights reads) fused into the model at start, "
                        "at SCALE (default 1); repeatable. Its sha256 and scale are part of the model identity")
    p.add_argument("--scheduler", default=None, metavar="JSON_OR_FILE",
                   help='scheduler override merged over the pipeline\'s scheduler config, e.g. \'{"shift": 3.0}\' '
                        '(with "_class_name" to change the class); a JSON object or a .json file')
    p.add_argument("--max-images", type=int, default=None,
                   help="input images one edit may carry (default: 3 for multi-image pipelines such as "
                        "QwenImageEditPlusPipeline, 1 otherwise)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in containers)")
    p.add_argument("--port", type=int, default=50051)
    p.add_argument("--max-queue", type=int, default=4, help="edits that may wait beyond the running one")
    p.add_argument("--max-streams", type=int, default=16,
                   help="Edit calls open at once (waiting, running or still sending their result); more get "
                        "RESOURCE_EXHAUSTED, so that health checks always find a free handler thread")
    p.add_argument("--max-input-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="bound on source and output pixels (decompression bombs)")
    p.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    p.add_argument("--grace", type=float, default=30.0, help="seconds to finish accepted edits on SIGTERM")
    p.add_argument("--threads", type=int, default=int(os.environ.get("EDITFLEET_THREADS", "2")),
                   help="torch CPU threads (default: $EDITFLEET_THREADS or 2), fixed so results do not "
                        "depend on how many processes share the machine")
    p.add_argument("--default-steps", type=int, default=None, help="steps when a request gives 0 (default: the pipeline's)")
    p.add_argument("--min-steps", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--default-guidance", type=float, default=None,
                   help="guidance when a request gives none (default: the pipeline's)")
    p.add_argument("--default-negative-prompt", default=None,
                   help="negative prompt when a request gives none (default: ' ' for true-CFG pipelines)")
    p.add_argument("--tls-cert", help="server certificate (PEM); enables TLS with --tls-key")
    p.add_argument("--tls-key", help="server private key (PEM)")
    p.add_argument("--tls-client-ca", help="CA for client certificates: requires mutual TLS")
    p.add_argument("--log-level", default=os.environ.get("EDITFLEET_LOG_LEVEL", "INFO"))
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        p.error("--tls-client-ca needs --tls-cert and --tls-key")
    if not 1 <= args.min_steps <= args.max_steps:
        p.error(f"--min-steps {args.min_steps} / --max-steps {args.max_steps}: need 1 <= min <= max")
    if args.default_steps is not None and not args.min_steps <= args.default_steps <= args.max_steps:
        p.error(f"--default-steps {args.default_steps} outside [--min-steps, --max-steps]")
    if args.forecast_interval < 1:
        p.error(f"--forecast-interval {args.forecast_interval}: need >= 1")
    if args.max_queue < 0 or args.threads < 1 or args.max_input_pixels < 1 or args.max_message_bytes < 1024:
        p.error("--max-queue >= 0, --threads >= 1, --max-input-pixels >= 1, --max-message-bytes >= 1024")
    if args.max_streams < 1:
        p.error(f"--max-streams {args.max_streams}: need >= 1")
    for flag in ("tls_cert", "tls_key", "tls_client_ca"):
        path = getattr(args, flag)
        if path and not os.path.isfile(path):
            p.error(f"--{flag.replace('_', '-')}: no such file: {path}")
    if args.max_images is not None and args.max_images < 1:
        p.error(f"--max-images {args.max_images}: need >= 1")
    from .adapters import AdapterError, LoraSpec, check_lora_file, read_scheduler_override

    try:
        args.lora = [LoraSpec.parse(text) for text in args.lora]
        args.scheduler = read_scheduler_override(args.scheduler)
    except AdapterError as exc:
        p.error(str(exc))
    for lora in args.lora:
        problem = check_lora_file(lora.path)
        if problem:
            p.error(f"--lora {lora.path}: {problem}")
    return args


def main(argv=None) -> int:
    from editfleet_common.launch import die_with_parent_if_asked

    die_with_parent_if_asked()  # before anything slow: a launcher that dies now takes this service with it
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s editor[%(process)d] %(name)s: %(message)s",
    )
    tls = TlsConfig(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None

    def load():
        # torch is imported here, in the loading thread, so the port answers health checks at once
        from .pipeline import EditPipeline

        pipeline = EditPipeline.load(
            args.model,
            device=args.device,
            dtype=args.dtype,
            load_format=args.load_format,
            revision=args.revision,
            threads=args.threads,
            max_input_pixels=args.max_input_pixels,
            speed_mode=args.speed_mode,
            forecast_interval=args.forecast_interval,
            trust_remote_code=args.trust_remote_code,
            loras=args.lora,
            scheduler=args.scheduler,
            max_images=args.max_images,
        )
        defaults = pipeline.defaults
        defaults.min_steps, defaults.max_steps = args.min_steps, args.max_steps
        if args.default_steps is not None:
            defaults.num_inference_steps = args.default_steps
        defaults.num_inference_steps = min(max(defaults.num_inference_steps, args.min_steps), args.max_steps)
        if args.default_guidance is not None:
            defaults.guidance_scale = args.default_guidance
        if args.default_negative_prompt is not None:
            defaults.negative_prompt = args.default_negative_prompt
        return pipeline

    from .server import serve

    return serve(
        load,
        host=args.host,
        port=args.port,
        max_queue=args.max_queue,
        max_message_bytes=args.max_message_bytes,
        grace_s=args.grace,
        max_streams=args.max_streams,
        tls=tls,
    )


if __name__ == "__main__":
    exit_now(main())
