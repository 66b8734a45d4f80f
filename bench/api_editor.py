"""API editors (issue 29): throughput against a rate-limited provider, and the HTTP route's overhead.

throughput: a local provider of our own admits R requests/s (a token bucket; over it: 429 with
Retry-After) and answers each after L seconds with a small PNG; for each slot count N, the editor
service runs in API mode (--backend openai-images --max-concurrency N) and N client threads keep its
slots busy over gRPC (as the orchestrator's dispatcher does) for --n edits. Each row: slots, edits/s,
edits/s over R, the requests the provider refused (429: over its limit) and the p50/p95 edit latency.
The fewest slots that reach 0.9 R without a refused request is the answer (Little's law: about R x L).

http-overhead: one real editor (the tiny model unless --model) with --http-port; the same edit
(same seed, size, steps) alternately over gRPC and over POST /v1/images/edits, --pairs times; the
median wall time of each and the HTTP route's overhead in percent.

    python bench/api_editor.py throughput --rate 20 --latency 0.5 --slots 2,4,8,9,10,11,12 --n 150 --out $OUT/api_throughput.json
    python bench/api_editor.py http-overhead --pairs 10 --size 64 --steps 2 --out $OUT/http_overhead.json
    python bench/api_editor.py http-overhead --model Qwen/Qwen-Image-Edit --editor-args "--load-format dummy" \
        --device cuda --size 1024 --steps 20 --pairs 8 --out $OUT/http_overhead_gpu.json  # a GPU, full size
    python bench/api_editor.py throughput --rate 20 --latency 0.05 --slots 2 --n 6 --out $OUT/t.json  # dry run (editor)
"""

from __future__ import annotations

import argparse
import base64
import collections
import http.client
import io
import json
import shlex
import statistics
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from bench.common import git_commit, write_json  # noqa: E402
from editfleet_common.launch import REPO_ROOT, ServiceProcess, free_port, venv_python  # noqa: E402
from editor_service.client import EditorClient  # noqa: E402


class _Server(ThreadingHTTPServer):
    request_queue_size = 512  # the listen backlog (5 by default drops SYNs of a burst: 1-3 s retransmits)


class RateLimitedProvider:
    """POST /v1/images/edits: at most R admitted in any sliding second (more: 429 with Retry-After until
    the oldest admission leaves the window), each admitted one answered after L s."""

    def __init__(self, rate: float, latency: float, image_size: int = 16):
        self.rate, self.latency = rate, latency
        self.window: collections.deque[float] = collections.deque()
        self.lock = threading.Lock()
        self.admitted = self.refused = 0
        buf = io.BytesIO()
        Image.effect_noise((image_size, image_size), 40).convert("RGB").save(buf, format="PNG")  # a photo's PNG size
        self.png_b64 = base64.b64encode(buf.getvalue()).decode()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def admit(self) -> float | None:
        """None when admitted, else the seconds until a request would be."""
        with self.lock:
            now = time.monotonic()
            while self.window and now - self.window[0] >= 1.0:
                self.window.popleft()
            if len(self.window) < self.rate:
                self.window.append(now)
                self.admitted += 1
                return None
            self.refused += 1
            return 1.0 - (now - self.window[0])

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._json(200, {"object": "list", "data": [{"id": "bench-model", "object": "model"}]})

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                wait = provider.admit()
                if wait is not None:
                    return self._json(429, {"error": {"message": "rate limit", "code": "rate_limit_exceeded"}},
                                      {"retry-after-ms": f"{max(1, int(wait * 1000))}"})
                time.sleep(provider.latency)
                self._json(200, {"created": int(time.time()), "data": [{"b64_json": provider.png_b64}]})

        return Handler


def source_png(size: int) -> bytes:
    img = Image.effect_noise((size, size), 40).convert("RGB")  # compresses like a photo, not like a flat image
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def throughput(args) -> dict:
    rows = []
    source = source_png(64)
    for slots in [int(s) for s in args.slots.split(",")]:
        provider = RateLimitedProvider(args.rate, args.latency)
        threading.Thread(target=provider.server.serve_forever, daemon=True).start()
        port = free_port()
        proc = ServiceProcess(
            name=f"api-editor-{slots}", port=port,
            argv=[venv_python("editor"), "-m", "editor_service", "--backend", "openai-images", "--provider", "openai",
                  "--model", "bench-model", "--base-url", provider.url, "--api-key-env", "", "--port", str(port),
                  "--max-concurrency", str(slots), "--max-queue", str(slots), "--max-streams", str(slots + 4),
                  "--retry-base-s", "0.05", "--max-retries", "20",
                  *(["--max-requests-per-s", str(args.paced)] if args.paced else [])],
            log_path=Path(args.log_dir) / f"api-editor-{slots}.log").start()
        try:
            proc.wait_healthy(timeout=60)
            remaining = [args.n]
            latencies: list[float] = []
            lock = threading.Lock()

            ready = threading.Barrier(slots + 1)

            def worker():
                with EditorClient(proc.address) as client:
                    client.edit(source, "Make it green", seed=1, timeout=120)  # untimed: connections, first calls
                    ready.wait()
                    ready.wait()
                    while True:
                        with lock:
                            if remaining[0] <= 0:
                                return
                            remaining[0] -= 1
                        t0 = time.monotonic()
                        client.edit(source, "Make it green", seed=1, timeout=120)
                        with lock:
                            latencies.append(time.monotonic() - t0)

            threads = [threading.Thread(target=worker) for _ in range(slots)]
            for t in threads:
                t.start()
            ready.wait()
            time.sleep(1.0)  # the warm-up's admissions out of the provider's window
            provider.admitted = provider.refused = 0
            started = time.monotonic()
            ready.wait()
            for t in threads:
                t.join()
            wall = time.monotonic() - started
        finally:
            proc.stop(grace=5)
            provider.server.shutdown()
        rate = args.n / wall
        latencies.sort()
        row = {"slots": slots, "edits": args.n, "wall_s": round(wall, 2), "edits_per_s": round(rate, 2),
               "of_rate": round(rate / args.rate, 3), "refused_429": provider.refused,
               "latency_p50_s": round(latencies[len(latencies) // 2], 3),
               "latency_p95_s": round(latencies[int(len(latencies) * 0.95) - 1], 3)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    reaching = [r for r in rows if r["of_rate"] >= 0.9 and r["refused_429"] == 0]
    return {"rate": args.rate, "latency_s": args.latency, "paced_at": args.paced, "rows": rows,
            "fewest_slots_at_0.9R_without_429": min((r["slots"] for r in reaching), default=None),
            "little_law_slots": args.rate * args.latency}


def http_overhead(args) -> dict:
    """The same edit over gRPC and over the HTTP route, alternately. --api: the editor in API mode before an
    instant provider (latency --latency) that answers --size x --size noise PNGs: what is timed is the two
    routes and the core, without a model's own run time (its noise), with images of a real edit's size."""
    http_port, port = free_port(), free_port()
    model = args.model or str(REPO_ROOT / "models" / "tiny-qwen-image-edit")
    provider = None
    if args.api:
        provider = RateLimitedProvider(1e9, args.latency, image_size=args.size)
        threading.Thread(target=provider.server.serve_forever, daemon=True).start()
        argv = [venv_python("editor"), "-m", "editor_service", "--backend", "openai-images", "--provider", "editfleet",
                "--model", "bench-model", "--base-url", provider.url, "--api-key-env", "", "--port", str(port),
                "--http-port", str(http_port)]
    else:
        argv = [venv_python("editor"), "-m", "editor_service", "--model", model, "--device", args.device,
                "--port", str(port), "--http-port", str(http_port), "--threads", str(args.threads),
                *shlex.split(args.editor_args)]
    proc = ServiceProcess(name="editor", port=port, argv=argv, log_path=Path(args.log_dir) / "editor.log").start()
    source = source_png(args.size)
    times = {"grpc": [], "http": []}
    try:
        proc.wait_healthy(timeout=600)
        with EditorClient(proc.address) as client:
            steps = 0 if args.api else args.steps

            def grpc_edit():
                return client.edit(source, "Make it green", seed=3, steps=steps, width=args.size,
                                   height=args.size, timeout=600).image_png

            def http_edit():
                boundary = uuid.uuid4().hex
                fields = [("prompt", b"Make it green", None), ("size", f"{args.size}x{args.size}".encode(), None),
                          ("seed", b"3", None), ("image", source, "in.png")] + (
                          [("steps", str(steps).encode(), None)] if steps else [])
                body = b"".join(
                    f"--{boundary}\r\nContent-Disposition: form-data; name=\"{n}\"".encode()
                    + (f"; filename=\"{f}\"".encode() if f else b"") + b"\r\n\r\n" + v + b"\r\n"
                    for n, v, f in fields) + f"--{boundary}--\r\n".encode()
                conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=600)
                conn.request("POST", "/v1/images/edits", body=body,
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
                data = json.loads(conn.getresponse().read())
                conn.close()
                return base64.b64decode(data["data"][0]["b64_json"])

            assert grpc_edit() == http_edit()  # warm, and the same edit either way
            for i in range(args.pairs):
                order = (("grpc", grpc_edit), ("http", http_edit)) if i % 2 == 0 else (("http", http_edit), ("grpc", grpc_edit))
                for name, fn in order:
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
    finally:
        proc.stop(grace=10)
        if provider is not None:
            provider.server.shutdown()
    grpc_med, http_med = statistics.median(times["grpc"]), statistics.median(times["http"])
    paired = [h - g for g, h in zip(times["grpc"], times["http"])]
    return {"editor": "api (instant provider)" if args.api else model, "editor_args": args.editor_args, "size": args.size,
            "steps": None if args.api else args.steps, "pairs": args.pairs,
            "grpc_median_s": round(grpc_med, 4), "http_median_s": round(http_med, 4),
            "overhead_pct_of_medians": round(100 * (http_med - grpc_med) / grpc_med, 2),
            "paired_diff_median_s": round(statistics.median(paired), 4),
            "grpc_s": [round(t, 4) for t in times["grpc"]], "http_s": [round(t, 4) for t in times["http"]]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--rate", type=float, default=20.0, help="requests/s the provider admits")
    t.add_argument("--latency", type=float, default=0.5, help="seconds per admitted request")
    t.add_argument("--slots", default="2,4,8,9,10,11,12")
    t.add_argument("--n", type=int, default=150, help="edits per slot count")
    t.add_argument("--paced", type=float, default=0.0,
                   help="the editor's --max-requests-per-s (the provider's limit kept on our side); 0: none")
    h = sub.add_parser("http-overhead")
    h.add_argument("--model", default=None)
    h.add_argument("--device", default="cpu")
    h.add_argument("--threads", type=int, default=2)
    h.add_argument("--size", type=int, default=64)
    h.add_argument("--steps", type=int, default=2)
    h.add_argument("--pairs", type=int, default=10)
    h.add_argument("--editor-args", default="",
                   help="more editor flags, e.g. '--load-format dummy' for a full-size model without weights")
    h.add_argument("--api", action="store_true", help="the editor in API mode before an instant provider")
    h.add_argument("--latency", type=float, default=0.0, help="--api: the provider's seconds per request")
    for sp in (t, h):
        sp.add_argument("--log-dir", default=None)
        sp.add_argument("--out", default=None)
    args = p.parse_args()
    args.log_dir = args.log_dir or tempfile.mkdtemp(prefix="api-editor-bench-")
    result = throughput(args) if args.what == "throughput" else http_overhead(args)
    result.update(bench=f"api_editor {args.what}", commit=git_commit())
    print(json.dumps(result, indent=2))
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
