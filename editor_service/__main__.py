"""python -m editor_service --model ID_OR_PATH --device cuda:0 --port 50051

One process per device hosting one diffusers edit pipeline behind the editfleet.v1.Editor service.
"""

from __future__ import annotations

import argparse
import logging
import os

from editfleet_common import settings
from editfleet_common.grpc_server import exit_now
from editfleet_common.service import common_parser, parse_service_args

from .checks import DEFAULT_MAX_ID_CHARS


def build_parser() -> argparse.ArgumentParser:
    common = common_parser(port=50051, threads=2, max_queue=4, max_streams=16,
                           model_help="HF model id or local directory (diffusers layout)",
                           load_format_help="dummy: random weights built from configs (capacity planning without weights)",
                           grace_help="seconds to finish accepted edits on SIGTERM")
    p = argparse.ArgumentParser(prog="python -m editor_service", description=__doc__.strip().splitlines()[2],
                                parents=[common])
    g = p.add_argument_group("the editor's own")
    settings.SPEED_MODE.add_to(g)
    settings.COMPILE_CACHE.add_to(g, default=os.environ.get("EDITFLEET_COMPILE_CACHE") or None, metavar="DIR")
    g.add_argument("--forecast-interval", type=int, default=3,
                   help="fast mode: the transformer runs on one step in N once warm (the others extrapolate its "
                        "output); 1 runs every step (FP8 only). Larger is faster and further from reference")
    g.add_argument("--default-steps", type=int, default=None, help="steps when a request gives 0 (default: the pipeline's)")
    g.add_argument("--min-steps", type=int, default=None,
                   help="fewest steps a request may ask (default: the fewest the pipeline's scheduler can run: 2 for "
                        "Qwen-Image's, whose one-step schedule is NaN; a lower value is refused at start)")
    g.add_argument("--max-steps", type=int, default=200,
                   help="most steps a request may ask, num_inference_steps or a step schedule in extras (sigmas)")
    g.add_argument("--default-guidance", type=float, default=None,
                   help="guidance when a request gives none (default: the pipeline's)")
    g.add_argument("--default-negative-prompt", default=None,
                   help="negative prompt when a request gives none (default: ' ' for true-CFG pipelines)")
    settings.LORAS.add_to(g, action="append", default=[], metavar="PATH[:SCALE]")
    settings.SCHEDULER.add_to(g, metavar="JSON_OR_FILE")
    g.add_argument("--max-id-chars", type=int, default=DEFAULT_MAX_ID_CHARS,
                   help="longest sample_id a request may carry, in characters; longer: INVALID_ARGUMENT (default: "
                        "%(default)s, as the scorer's)")
    g.add_argument("--max-images", type=int, default=None,
                   help="input images one edit may carry (default: 3 for multi-image pipelines such as "
                        "QwenImageEditPlusPipeline, 1 otherwise)")
    api = p.add_argument_group(
        "API editors", "the model under test behind an HTTP API (editor_service/api_editor/): no device, no torch; "
                       "--model is the model id sent, each request slot an edit in flight")
    settings.EDITOR_BACKEND.add_to(api)
    settings.EDITOR_PROVIDER.add_to(api, metavar="NAME_OR_FILE")
    settings.BASE_URL.add_to(api, help="API editors: the endpoint, e.g. https://api.openai.com/v1 (no credentials in it)")
    settings.API_KEY_ENV.add_to(api, help="API editors: the NAME of the environment variable holding the key ('': none); "
                                          "never the key")
    settings.MAX_CONCURRENCY.add_to(api, default=4, help="API editors: requests in flight at once (the edit slots)")
    settings.REQUEST_TIMEOUT_S.add_to(api, default=300.0, help="API editors: seconds per request (a stall is retried)")
    settings.MAX_RETRIES.add_to(api, help="API editors: retries of a request after 429, 5xx, a timeout, a dropped "
                                          "connection or a cut-off reply")
    api.add_argument("--retry-base-s", type=float, default=1.0, help="API editors: first backoff step (doubles per retry)")
    api.add_argument("--max-requests-per-s", type=float, default=0.0,
                     help="API editors: the provider's rate limit kept on our side: requests (over all slots, retries "
                          "included) spaced 1/N s apart; 0: none (its 429s are retried after Retry-After)")
    api.add_argument("--partial-images", type=int, default=0,
                     help="API editors: ask a provider that streams for this many partial images per edit (shown as "
                          "progress; OpenAI bills them); 0: none")
    g.add_argument("--http-port", type=int, default=None,
                   help="also serve OpenAI's Images API on this port (POST /v1/images/edits, GET /v1/models; "
                        "editor_service/http_api.py) over the same checks, limits and queue as gRPC; 0: any free "
                        "port; default: off")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    p = build_parser()
    args = parse_service_args(p, argv)
    min_steps = 1 if args.min_steps is None else args.min_steps  # the pipeline's own minimum is checked at load
    if not 1 <= min_steps <= args.max_steps:
        p.error(f"--min-steps {args.min_steps} / --max-steps {args.max_steps}: need 1 <= min <= max")
    if args.default_steps is not None and not min_steps <= args.default_steps <= args.max_steps:
        p.error(f"--default-steps {args.default_steps} outside [--min-steps, --max-steps]")
    if args.default_guidance is not None:
        from editfleet_common.errors import InvalidInput

        from .checks import check_guidance

        try:
            check_guidance("--default-guidance", args.default_guidance)
        except InvalidInput as exc:
            p.error(str(exc))
    if args.forecast_interval < 1:
        p.error(f"--forecast-interval {args.forecast_interval}: need >= 1")
    if args.max_id_chars < 1:
        p.error(f"--max-id-chars {args.max_id_chars}: need >= 1")
    if args.max_images is not None and args.max_images < 1:
        p.error(f"--max-images {args.max_images}: need >= 1")
    if args.http_port is not None and not 0 <= args.http_port <= 65535:
        p.error(f"--http-port {args.http_port}: need a port (0: any free one)")
    if args.http_port and args.http_port in (args.port, args.metrics_port):
        p.error(f"--http-port {args.http_port}: the gRPC or metrics port; give the HTTP API a port of its own")
    if args.backend != "diffusers":
        check_api_args(p, args)
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


def check_api_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """An API editor's flags (usage errors, exit 2): the endpoint, no credentials in it, a provider file
    that exists and fits the backend, and none of the local pipeline's own settings."""
    from urllib.parse import urlparse

    from .api_editor import Profile, url_credentials

    url = urlparse(args.base_url or "")
    if url.scheme not in ("http", "https") or not url.hostname:
        p.error(f"--backend {args.backend} needs --base-url http(s)://host[:port]/..., got {args.base_url!r}")
    where = url_credentials(args.base_url)
    if where:
        p.error(f"--base-url carries credentials ({where}): give the key's variable name in --api-key-env")
    if args.api_key_env and not args.api_key_env.replace("_", "a").isalnum():
        p.error("--api-key-env is the NAME of an environment variable (letters, digits, _), not the key itself")
    local_only = [flag for flag, given in (("--lora", args.lora), ("--scheduler", args.scheduler),
                                           ("--compile-cache", args.compile_cache),
                                           ("--load-format dummy", args.load_format == "dummy")) if given]
    if local_only:
        p.error(f"--backend {args.backend}: {', '.join(local_only)} are for a local pipeline")
    if (args.max_concurrency < 1 or args.request_timeout_s <= 0 or args.max_retries < 0 or args.partial_images < 0
            or not 0 <= args.max_requests_per_s < float("inf")):
        p.error("--max-concurrency >= 1, --request-timeout-s > 0, --max-retries >= 0, --partial-images >= 0, "
                "--max-requests-per-s >= 0")
    try:
        Profile.load(args.provider or {"openai-images": "openai", "openai-chat-image": "openrouter"}[args.backend],
                     args.backend)
    except ValueError as exc:
        p.error(str(exc))


def startup_problems(args: argparse.Namespace) -> list[str]:
    """What would stop a local pipeline's load, found before a port is bound or torch imported, one line
    each naming the flag: the model (a folder that is not there or holds no model_index.json, never taken
    for a hub id; a hub id neither cached nor on the hub) and the device (no GPU, or not that one). The
    orchestrator's preflight asks the same (editfleet_common.model_checks)."""
    from editfleet_common.model_checks import device_problem, model_problem

    found = [model_problem(args.model, what="editor", needs="model_index.json", kind="diffusers", flag="--model",
                           dummy=args.load_format == "dummy", ask_hub=True, revision=args.revision),
             device_problem(args.device, confirm_with_torch=True)]
    problems = [problem for problem in found if problem]
    if not problems:  # the model is there and so is the device: does the one fit on the other?
        problems += fit_problems(args)
    return problems


def fit_problems(args: argparse.Namespace) -> list[str]:
    """The pipeline's weights against its device's free memory (editfleet_common.memory_fit), before
    anything loads: from the safetensors headers of a folder (or cached hub snapshot), or, for --load-format
    dummy, from its configs built on the meta device (torch and diffusers imported for that: the dummy
    load needs them next anyway). A hub id still to be downloaded is not estimated. Sets
    args.weights (the estimate, or None) and args.room for the load's out-of-memory line."""
    from editfleet_common.dtypes import resolve_dtype_name
    from editfleet_common.memory_fit import device_room, does_not_fit, fits, service_remedies, service_weights

    dtype = resolve_dtype_name(args.dtype, args.device)
    args.weights = args.room = None
    dummy_bytes = None
    if args.load_format == "dummy":
        from .dummy_load import dummy_weight_bytes, resolve_config_dir

        def dummy_bytes(torch_dtype):
            return dummy_weight_bytes(resolve_config_dir(args.model), torch_dtype)
    args.weights = service_weights(args.model, dtype, dummy_bytes)
    if args.weights is None:
        return []
    args.room = device_room(args.device)
    if fits(args.weights, args.room):
        return []
    return [does_not_fit("editor", args.model, args.weights, args.room,
                         service_remedies(args.weights, args.room, args.device), device=args.device)]


def memory_guard(args: argparse.Namespace):
    """The load's and warm-up's out-of-memory errors as one line (memory_fit.OutOfMemoryGuard)."""
    from editfleet_common.memory_fit import OutOfMemoryGuard, gib

    room = getattr(args, "room", None)
    had = f" ({room.where} had {gib(room.free)} free at start)" if room is not None else ""
    remedies = ([f"give it a GPU with more free memory{had} (--device cuda:N; in a run, --gpus)"]
                if args.device.startswith("cuda") else [f"give it a machine with more memory{had}"])
    if (getattr(args, "weights", None) is not None and args.weights.dtype == "float32"):
        remedies.insert(0, "--dtype bfloat16 halves the weights")
    return OutOfMemoryGuard("editor", args.model, args.device, weights=getattr(args, "weights", None),
                            remedies=remedies)


def load_api_editor(args: argparse.Namespace):
    """The API editor in the pipeline's place (no torch)."""
    from .api_editor import ApiEditor, ApiSettings

    return ApiEditor(ApiSettings(
        backend=args.backend, model=args.model, base_url=args.base_url, provider=args.provider,
        api_key_env=args.api_key_env, max_concurrency=args.max_concurrency, request_timeout_s=args.request_timeout_s,
        max_retries=args.max_retries, retry_base_s=args.retry_base_s, partial_images=args.partial_images,
        max_input_pixels=args.max_input_pixels, max_images=args.max_images,
        max_requests_per_s=args.max_requests_per_s))


def main(argv=None) -> int:
    from editfleet_common.launch import die_with_parent_if_asked

    die_with_parent_if_asked()  # before anything slow: a launcher that dies now takes this service with it
    args = parse_args(argv)
    import sys

    if args.backend == "diffusers":
        problems = startup_problems(args)
        if problems:  # a usage error, as a taken port is: exit 2, nothing started
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr, flush=True)
            return 2

    guard = memory_guard(args) if args.backend == "diffusers" else None

    def load():
        if args.backend != "diffusers":
            return load_api_editor(args)
        # torch is imported here, in the loading thread, so the port answers health checks at once
        from .pipeline import EditPipeline

        with guard.during("loading"):
            pipeline = load_pipeline(EditPipeline)
        # refuses a --min-steps the pipeline cannot run (one error line naming it, exit 1)
        pipeline.set_step_range(args.min_steps, args.max_steps, args.default_steps)
        defaults = pipeline.defaults
        if args.default_guidance is not None:
            defaults.guidance_scale = args.default_guidance
        if args.default_negative_prompt is not None:
            defaults.negative_prompt = args.default_negative_prompt
        return pipeline

    def load_pipeline(EditPipeline):  # noqa: N803 - the class, imported on the loading thread
        return EditPipeline.load(
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
            compile_cache=args.compile_cache,
            seed=args.seed,
            loras=args.lora,
            scheduler=args.scheduler,
            max_images=args.max_images,
        )

    from editfleet_common.ports import PortUnavailable
    from editfleet_common.service import serve

    from .server import EditWorker, service_spec

    worker = EditWorker(args.max_queue, slots=args.max_concurrency if args.backend != "diffusers" else 1,
                        max_id_chars=args.max_id_chars)
    http = None
    if args.http_port is not None:  # bound before anything loads: a taken port is a one-line error, exit 2
        from .http_api import ImagesApiServer

        try:
            http = ImagesApiServer(worker, host=args.host, port=args.http_port,
                                   max_body_bytes=args.max_message_bytes, max_open=args.max_streams).start()
        except PortUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 2
    spec = service_spec(load, max_queue=args.max_queue, max_message_bytes=args.max_message_bytes, worker=worker,
                        memory_guard=guard)
    if http is not None:
        spec.on_bound = lambda _port: logging.getLogger("editor_service").info(
            "OpenAI Images API on http://%s:%d/v1 (POST /v1/images/edits)", args.host, http.port)
    code = serve(args, spec)
    if http is not None:
        http.stop()
    if guard is not None and guard.tripped:  # out of memory while loading or warming up: as the check's refusal
        return 2
    return 1 if worker.unusable else code


if __name__ == "__main__":
    exit_now(main())
