"""Service overhead: edits/s through the editor service over gRPC (loopback, one GPU) against the same
pipeline called in-process, same settings, same seeds.

In-process: `pipe(...)` called back to back. Service: `python -m editor_service` as a subprocess,
the torch-free client sending the same requests, with 1 and 2 requests in flight (with 2 the next
request waits in the service's queue, so decode/encode/transfer overlap the running edit).

    python bench/service_overhead.py --model models/tiny-qwen-image-edit --device cpu --steps 2 --size 64 --n 1 --log-dir $TMP  # dry run (editor)
    python bench/service_overhead.py --load-format dummy --device cuda:0 --steps 20 --size 1024 --n 4 --out $OUT/service.json
"""

from __future__ import annotations

import argparse
import gc
import io
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.common import card_name, git_commit, source_image, write_json  # noqa: E402
from editfleet_common.launch import ServiceProcess, free_port  # noqa: E402
from editor_service.client import EditorClient  # noqa: E402
from editor_service.pipeline import EditPipeline, EditRequest  # noqa: E402

PROMPT = "Change the sky to a sunset and make the car red."


def png_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def in_process(args, source: bytes, sync) -> dict:
    editor = EditPipeline.load(
        args.model, device=args.device, dtype=args.dtype, load_format=args.load_format, speed_mode=args.speed_mode
    )
    prepared = [editor.prepare(EditRequest(instruction=PROMPT, image=source, num_inference_steps=args.steps, seed=s))
                for s in range(args.n + 1)]
    generator = lambda seed: torch.Generator("cpu").manual_seed(seed)  # noqa: E731
    editor.pipe(**prepared[0].kwargs, generator=generator(0))  # warm-up at the measured size
    sync()
    t0 = time.perf_counter()
    for p in prepared[1:]:
        editor.pipe(**p.kwargs, generator=generator(p.seed))
    sync()
    elapsed = time.perf_counter() - t0
    identity = editor.identity
    del editor, prepared
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {"edits": args.n, "seconds": elapsed, "edits_per_s": args.n / elapsed, "model": identity.__dict__}


def through_service(args, source: bytes) -> dict:
    port = free_port()
    argv = [sys.executable, "-m", "editor_service", "--model", args.model, "--device", args.device,
            "--dtype", args.dtype, "--load-format", args.load_format, "--port", str(port),
            "--speed-mode", args.speed_mode, "--max-queue", "4"]
    log = Path(args.log_dir) / "editor_service.log"
    service = ServiceProcess("editor", argv, port, log_path=log).start()
    rows = {}
    try:
        t_up = time.perf_counter()
        service.wait_healthy(timeout=900)
        rows["startup_s"] = time.perf_counter() - t_up
        client = EditorClient(service.address)
        client.edit(source, PROMPT, steps=args.steps, seed=0)  # warm-up at the measured size
        for in_flight in (1, 2):
            seeds = list(range(1, args.n + 1))
            lock = threading.Lock()

            def worker():
                while True:
                    with lock:
                        if not seeds:
                            return
                        seed = seeds.pop(0)
                    client.edit(source, PROMPT, steps=args.steps, seed=seed)

            t0 = time.perf_counter()
            threads = [threading.Thread(target=worker) for _ in range(in_flight)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
            rows[f"in_flight_{in_flight}"] = {"edits": args.n, "seconds": elapsed, "edits_per_s": args.n / elapsed}
        client.close()
    finally:
        rows["exit_code"] = service.stop(grace=60)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="Qwen/Qwen-Image-Edit")
    p.add_argument("--load-format", default="auto", choices=["auto", "dummy"])
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--speed-mode", default="default")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--log-dir", default="/tmp/editfleet-bench")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    source = png_bytes(source_image(args.size))
    inproc = in_process(args, source, sync)
    print(f"[in-process] {inproc['edits_per_s']:.4f} edits/s", flush=True)
    service = through_service(args, source)
    for k in ("in_flight_1", "in_flight_2"):
        service[k]["ratio_vs_in_process"] = service[k]["edits_per_s"] / inproc["edits_per_s"]
        print(f"[service {k}] {service[k]['edits_per_s']:.4f} edits/s = {service[k]['ratio_vs_in_process']:.4f}x", flush=True)
    write_json(args.out, {
        "bench": "service_overhead", "card": card_name(), "date": time.strftime("%Y-%m-%d"), "git": git_commit(),
        "command": " ".join(sys.argv), "settings": vars(args), "in_process": inproc, "service": service,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
