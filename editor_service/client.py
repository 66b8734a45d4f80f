"""Client for the editor service (no torch: the orchestrator's environment imports this).

    from editor_service.client import EditorClient
    with EditorClient("127.0.0.1:50051") as editor:
        result = editor.edit(open("in.png", "rb").read(), "Make the sky pink", steps=20, seed=7,
                             on_progress=lambda p: print(p.step, p.total_steps))
        open("out.png", "wb").write(result.image_png)

Command line (progress bar on stderr):

    python -m editor_service.client --address 127.0.0.1:50051 --image in.png \\
        --instruction "Make the sky pink" --out out.png --steps 20 --seed 7
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import grpc
from editfleet.v1 import common_pb2, editor_pb2, editor_pb2_grpc

from editfleet_common.channels import ClientTls, ServiceClient, ServiceError
from editfleet_common.grpc_server import DEFAULT_MAX_MESSAGE_BYTES
from editfleet_common.identity import identity_from_proto

# The error of a call that ends with a gRPC status (code, message, retryable): one for both clients.
EditError = ServiceError


@dataclass(frozen=True)
class Progress:
    step: int  # 1-based: this many denoise steps have finished
    total_steps: int
    elapsed_s: float


@dataclass
class EditResult:
    sample_id: str
    image_png: bytes
    width: int
    height: int
    seed: int
    num_inference_steps: int
    timings: dict[str, float]  # queue_s, run_s, denoise_s, encode_s
    model: dict[str, str]  # ModelIdentity fields
    call_arguments: dict[str, str]  # JSON values, as the pipeline was called
    progress: list[Progress] = field(default_factory=list)

    def image(self):
        """The edit as a PIL image (Pillow imported on demand)."""
        import io

        from PIL import Image

        return Image.open(io.BytesIO(self.image_png))


@dataclass
class EditorInfo:
    model: dict[str, str]
    defaults: dict[str, Any]
    max_queue: int
    max_input_pixels: int
    max_message_bytes: int
    call_parameters: list[str]


def build_request(
    image: bytes,
    instruction: str,
    *,
    sample_id: str = "",
    negative_prompt: str | None = None,
    steps: int = 0,
    guidance_scale: float | None = None,
    seed: int | None = None,
    width: int = 0,
    height: int = 0,
    extras: dict[str, Any] | None = None,
) -> editor_pb2.EditRequest:
    """An EditRequest; `extras` values are JSON-encoded here (pass Python values)."""
    request = editor_pb2.EditRequest(
        sample_id=sample_id,
        source_image=image,
        instruction=instruction,
        num_inference_steps=steps,
        width=width,
        height=height,
        extras={k: json.dumps(v) for k, v in (extras or {}).items()},
    )
    if negative_prompt is not None:
        request.negative_prompt = negative_prompt
    if guidance_scale is not None:
        request.guidance_scale = guidance_scale
    if seed is not None:
        request.seed = seed
    return request


def _result_from_proto(msg: editor_pb2.EditResult, progress: list[Progress]) -> EditResult:
    t = msg.timings
    m = msg.model
    return EditResult(
        sample_id=msg.sample_id,
        image_png=msg.image_png,
        width=msg.width,
        height=msg.height,
        seed=msg.seed,
        num_inference_steps=msg.num_inference_steps,
        timings={"queue_s": t.queue_s, "run_s": t.run_s, "denoise_s": t.denoise_s, "encode_s": t.encode_s},
        model=identity_from_proto(m),
        call_arguments=dict(msg.call_arguments),
        progress=progress,
    )


class EditStream:
    """An Edit call in flight: iterate for Progress items then one EditResult; `cancel()` stops it."""

    def __init__(self, call):
        self._call = call

    def __iter__(self) -> Iterator[Progress | EditResult]:
        progress: list[Progress] = []
        try:
            for event in self._call:
                kind = event.WhichOneof("event")
                if kind == "progress":
                    p = event.progress
                    item = Progress(p.step, p.total_steps, p.elapsed_s)
                    progress.append(item)
                    yield item
                elif kind == "result":
                    yield _result_from_proto(event.result, progress)
                    return
        except grpc.RpcError as exc:
            raise EditError(exc.code(), exc.details() or "") from None
        raise EditError(grpc.StatusCode.INTERNAL, "stream ended without a result")

    def cancel(self) -> None:
        self._call.cancel()


class EditorClient(ServiceClient):
    def __init__(
        self,
        address: str,
        *,
        tls: ClientTls | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ):
        super().__init__(address, tls, max_message_bytes=max_message_bytes)
        self.stub = editor_pb2_grpc.EditorStub(self.channel)

    def stream(self, image: bytes, instruction: str, *, timeout: float | None = None, **fields) -> EditStream:
        """Start an edit; fields as in `build_request`."""
        return EditStream(self.stub.Edit(build_request(image, instruction, **fields), timeout=timeout))

    def edit(
        self,
        image: bytes,
        instruction: str,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        **fields,
    ) -> EditResult:
        """Run one edit to its result; raises EditError with the status code otherwise.

        `cancel`, when set from another thread, cancels the call (the server stops within a step).
        """
        stream = self.stream(image, instruction, timeout=timeout, **fields)
        watcher = None
        if cancel is not None:
            done = threading.Event()

            def watch():
                while not done.wait(0.05):
                    if cancel.is_set():
                        stream.cancel()
                        return

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
        try:
            for item in stream:
                if isinstance(item, Progress):
                    if on_progress is not None:
                        on_progress(item)
                else:
                    return item
        finally:
            if watcher is not None:
                done.set()
        raise EditError(grpc.StatusCode.INTERNAL, "stream ended without a result")  # unreachable

    def info(self, timeout: float | None = 10.0) -> EditorInfo:
        try:
            msg = self.stub.GetInfo(common_pb2.GetInfoRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            raise ServiceError(exc.code(), exc.details() or "") from None
        d = msg.defaults
        return EditorInfo(
            model=identity_from_proto(msg.model),
            defaults={
                "num_inference_steps": d.num_inference_steps,
                "guidance_scale": d.guidance_scale,
                "negative_prompt": d.negative_prompt,
                "min_steps": d.min_steps,
                "max_steps": d.max_steps,
            },
            max_queue=msg.max_queue,
            max_input_pixels=msg.max_input_pixels,
            max_message_bytes=msg.max_message_bytes,
            call_parameters=list(msg.call_parameters),
        )


# ------------------------------------------------------------------ command line


def _parse_extra(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--extra {text!r}: expected KEY=JSON")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value  # a bare word is taken as a string


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m editor_service.client", description="Edit one image.")
    p.add_argument("--address", required=True, help="HOST:PORT of an editor service")
    p.add_argument("--image", required=True, type=Path, help="source image file")
    p.add_argument("--instruction", required=True)
    p.add_argument("--out", required=True, type=Path, help="where to write the edited PNG")
    p.add_argument("--steps", type=int, default=0, help="denoise steps (0: the server's default)")
    p.add_argument("--seed", type=int, default=None, help="(default: drawn by the server and printed)")
    p.add_argument("--guidance", type=float, default=None)
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--width", type=int, default=0)
    p.add_argument("--height", type=int, default=0)
    p.add_argument("--extra", action="append", type=_parse_extra, default=[], metavar="KEY=JSON",
                   help="pipeline-specific call argument (repeatable)")
    p.add_argument("--timeout", type=float, default=None, help="seconds for the whole edit")
    p.add_argument("--wait", type=float, default=0, help="wait up to this many seconds for SERVING first")
    p.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    p.add_argument("--tls-ca", help="CA certificate (PEM): connect with TLS")
    p.add_argument("--tls-cert", help="client certificate for mutual TLS")
    p.add_argument("--tls-key", help="client key for mutual TLS")
    p.add_argument("--tls-server-name", help="expected certificate name when it differs from the address")
    args = p.parse_args(argv)

    try:
        image = args.image.read_bytes()
    except OSError as exc:
        print(f"error: --image {args.image}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    tls = ClientTls(args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name) if args.tls_ca else None
    for flag in ("tls_ca", "tls_cert", "tls_key"):  # read when the channel is made: check them first
        path = getattr(args, flag)
        if path and not Path(path).is_file():
            print(f"error: --{flag.replace('_', '-')} {path}: no such file", file=sys.stderr)
            return 2

    from tqdm import tqdm

    bar = None

    def on_progress(progress: Progress) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=progress.total_steps, desc="edit", unit="step", file=sys.stderr)
        bar.update(progress.step - bar.n)

    try:
        with EditorClient(args.address, tls=tls, max_message_bytes=args.max_message_bytes) as editor:
            if args.wait:
                editor.wait_serving(args.wait)
            result = editor.edit(
                image,
                args.instruction,
                steps=args.steps,
                seed=args.seed,
                guidance_scale=args.guidance,
                negative_prompt=args.negative_prompt,
                width=args.width,
                height=args.height,
                extras=dict(args.extra),
                on_progress=on_progress,
                timeout=args.timeout,
            )
    except EditError as exc:
        print(f"error: edit failed: {exc}", file=sys.stderr)
        return 1
    except (TimeoutError, RuntimeError) as exc:
        print(f"error: {args.address}: {exc}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    try:
        args.out.write_bytes(result.image_png)
    except OSError as exc:
        print(f"error: --out {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    t = result.timings
    print(
        f"wrote {args.out} ({result.width}x{result.height}, seed {result.seed}, {result.num_inference_steps} steps, "
        f"queue {t['queue_s']:.2f}s run {t['run_s']:.2f}s; {result.model['model_class']} {result.model['model']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
