"""The service frame both services run in: their common flags and one lifecycle.

    parser = argparse.ArgumentParser(parents=[common_parser(port=50051, threads=2)], ...)
    ... the service's own flags ...
    args = parse_service_args(parser, argv)          # + the common checks (TLS files, limits)
    return serve(args, ServiceSpec(name=..., register=..., load=..., ...))

Lifecycle (`serve`): the gRPC port answers at once with health NOT_SERVING (calls get UNAVAILABLE
from the servicer); the model loads on a background thread (`spec.load`), then warms up
(`spec.warm_up`), is handed to the servicer (`spec.attach`) and health turns SERVING. SIGTERM or
SIGINT: health NOT_SERVING for good, new calls refused, `spec.drain(grace)` lets accepted work
finish, running calls get what is left of --grace, exit 0. A load or warm-up that fails prints one
`error: ...` line and exits 1; a signal before SERVING exits 0 at once (nothing was accepted).
Both ports (--port, --metrics-port) are bound first, before the load, and by this process alone (no
SO_REUSEPORT, ports.py): one that is taken prints one `error: port N on HOST is already in use ...;
choose another with --port` line and exits 2, as a usage error does.
Every phase's seconds are logged ("phase load: 12.3s").

Common flags (same names, defaults from the same environment variables in both services):
--model --revision --device ($EDITFLEET_DEVICE) --dtype --load-format --trust-remote-code --seed
--host --port --max-queue --max-streams --max-message-bytes --max-input-pixels --grace
--threads ($EDITFLEET_THREADS) --tls-cert --tls-key --tls-client-ca --log-level
($EDITFLEET_LOG_LEVEL) --metrics-port ($EDITFLEET_METRICS_PORT; 0 = off).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .errors import EditfleetError

from . import settings
from .grpc_server import DEFAULT_MAX_MESSAGE_BYTES, ServiceHost, TlsConfig
from .ports import PortUnavailable
from .images import DEFAULT_MAX_PIXELS

log = logging.getLogger(__name__)

class StartFailed(Exception):
    """A start that cannot go on, with the one line said to the user (exit 1)."""


class Stopped(Exception):
    """The service was stopped before it served (raised by a load that waits on something)."""


def at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: need >= 1")
    return value


def env_default(name: str, default: str) -> str:
    return os.environ.get(name, default)


def common_parser(*, port: int, threads: int, max_queue: int, max_streams: int,
                  max_input_pixels: int = DEFAULT_MAX_PIXELS,
                  model_help: str = "HF model id or local directory",
                  load_format_help: str = "dummy: the real architecture with random weights (performance work only)",
                  grace_help: str = "seconds to finish accepted work on SIGTERM") -> argparse.ArgumentParser:
    """The flags both services take (argparse parent: add_help=False); defaults are the service's."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("model and device (both services)")
    settings.MODEL.add_to(g, required=True, help=model_help)
    g.add_argument("--revision", default=None, help="hub revision (branch, tag or commit) to load")
    g.add_argument("--device", default=env_default("EDITFLEET_DEVICE", "cpu"),
                   help="cpu, cuda, cuda:N (default: $EDITFLEET_DEVICE or cpu)")
    settings.DTYPE.add_to(g)
    settings.LOAD_FORMAT.add_to(g, help=load_format_help)
    g.add_argument("--trust-remote-code", action="store_true",
                   help="allow the model folder's own Python code to run (auto_map, custom pipelines); off by "
                        "default: a model is data, and pickled weights are refused by torch.load(weights_only=True)")
    g.add_argument("--seed", type=int, default=0, help="seed for --load-format dummy weights")
    settings.THREADS.add_to(g, default=int(env_default("EDITFLEET_THREADS", str(threads))),
                            help=f"{settings.THREADS.help} (default: $EDITFLEET_THREADS or {threads})")
    g = p.add_argument_group("serving (both services)")
    g.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in containers)")
    g.add_argument("--port", type=int, default=port)
    g.add_argument("--max-queue", type=int, default=max_queue, help="work that may wait before RESOURCE_EXHAUSTED")
    g.add_argument("--max-streams", type=at_least_one, default=max_streams,
                   help="long calls open at once (waiting, running or still sending results); more get "
                        "RESOURCE_EXHAUSTED, so that health checks always find a free handler thread")
    g.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    g.add_argument("--max-input-pixels", "--max-image-pixels", dest="max_input_pixels", type=int,
                   default=max_input_pixels, help="bound on the pixels of an image sent (decompression bombs)")
    g.add_argument("--grace", type=float, default=30.0, help=grace_help)
    g.add_argument("--tls-cert", help="server certificate (PEM); enables TLS with --tls-key")
    g.add_argument("--tls-key", help="server private key (PEM)")
    g.add_argument("--tls-client-ca", help="CA for client certificates: requires mutual TLS")
    g.add_argument("--log-level", default=env_default("EDITFLEET_LOG_LEVEL", "INFO"),
                   help="default: $EDITFLEET_LOG_LEVEL or INFO")
    g.add_argument("--metrics-port", type=int, default=int(env_default("EDITFLEET_METRICS_PORT", "0")),
                   help="serve Prometheus metrics over HTTP on this port (/metrics); 0: off "
                        "(default: $EDITFLEET_METRICS_PORT or 0)")
    return p


def parse_service_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse, then the checks every service makes of the common flags (a usage error, exit 2)."""
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        parser.error("--tls-client-ca needs --tls-cert and --tls-key")
    for flag in ("tls_cert", "tls_key", "tls_client_ca"):
        path = getattr(args, flag)
        if path and not os.path.isfile(path):
            parser.error(f"--{flag.replace('_', '-')}: no such file: {path}")
    if args.max_queue < 0 or args.threads < 1 or args.max_input_pixels < 1 or args.max_message_bytes < 1024:
        parser.error("--max-queue >= 0, --threads >= 1, --max-input-pixels >= 1, --max-message-bytes >= 1024")
    if args.max_streams < 1:
        parser.error(f"--max-streams {args.max_streams}: need >= 1")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: need a port (0: any free one)")
    if not 0 <= args.metrics_port <= 65535:
        parser.error(f"--metrics-port {args.metrics_port}: need 0 (off) or a port")
    if args.metrics_port and args.metrics_port == args.port:
        parser.error(f"--metrics-port {args.metrics_port}: the gRPC port (--port); give metrics a port of their own")
    return args


@dataclass
class ServiceSpec:
    """What a service brings to the frame."""

    name: str                                  # full gRPC service name (health reports it too)
    servicer: Any                              # the gRPC adapter
    register: Callable[[Any, Any], None]       # add_XServicer_to_server
    load: Callable[["Lifecycle"], Any]         # background thread; the model (raise StartFailed/Stopped)
    attach: Callable[[Any], None]              # hand the loaded, warmed-up model to the servicer
    warm_up: Callable[[Any], None] = lambda model: None
    drain: Callable[[float], None] = lambda grace_s: None  # on SIGTERM, health NOT_SERVING: finish accepted work
    after_stop: Callable[[], None] = lambda: None          # once the server has stopped
    long_running_methods: Sequence[str] = ()
    label: str = "model"                       # "error: cannot load <label> ..."
    log_format: str = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    on_bound: Callable[[int], None] | None = None
    metrics: Any = None                        # a metrics.ServiceMetrics to serve on --metrics-port
    serving_message: Callable[["Lifecycle"], str] = lambda lifecycle: "SERVING"


@dataclass
class Lifecycle:
    """What a load may use: the host (health), the phases' clock, whether a stop came."""

    host: ServiceHost
    started: float
    phases: dict[str, float] = field(default_factory=dict)
    go_at: float | None = None  # a staged start's go signal, when it came (monotonic)
    waited_s: float = 0.0       # of the load's time, what it spent waiting (for the go signal), not loading
    _mark: float = 0.0

    def __post_init__(self) -> None:
        self._mark = self.started

    def phase(self, name: str, since: float | None = None) -> float:
        """Log the seconds since the last phase (or `since`) as phase `name`; now."""
        now = time.monotonic()
        self.phases[name] = now - (self._mark if since is None else since)
        self._mark = now
        log.info("phase %s: %.2fs", name, self.phases[name])
        return now

    @property
    def last_mark(self) -> float:
        """When the last phase ended."""
        return self._mark

    @property
    def stopped(self) -> bool:
        return self.host.stopping


def setup_logging(args: argparse.Namespace, log_format: str) -> None:
    """Every log line through redact.SafeFormatter: secrets (a URL's credentials, a registered API
    key) redacted, the message escaped to one line (a sample id cannot forge a line) and cut."""
    from .redact import SafeFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter(log_format))
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])


def serve(args: argparse.Namespace, spec: ServiceSpec, *, started: float | None = None) -> int:
    """Run the service until SIGTERM/SIGINT (see the module docstring); the process's exit code."""
    setup_logging(args, spec.log_format)
    tls = TlsConfig(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    try:  # both ports bound before anything is served or loaded: a taken one is a one-line error, exit 2
        host = ServiceHost(service_names=[spec.name], host=args.host, port=args.port,
                           max_message_bytes=args.max_message_bytes, long_running_methods=spec.long_running_methods,
                           max_streams=args.max_streams, grace_s=args.grace, tls=tls)
        if spec.metrics is not None and args.metrics_port:
            try:
                spec.metrics.serve(args.metrics_port, args.host)
            except PortUnavailable:
                host.server.stop(None)  # bound, never started: let the gRPC port go
                raise
    except PortUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    host.add(spec.register, spec.servicer)
    lifecycle = Lifecycle(host, started if started is not None else time.monotonic())
    serving = threading.Event()
    failure: list[str] = []

    def on_stop() -> None:
        if serving.is_set():
            spec.drain(args.grace)

    host.install_signal_handlers(on_stop=on_stop)
    host.start()
    log.info("listening on %s:%d (NOT_SERVING while loading %s)", args.host, host.port, args.model)
    if spec.metrics is not None and args.metrics_port:
        log.info("metrics on http://%s:%d/metrics", args.host, args.metrics_port)
    if spec.on_bound is not None:
        spec.on_bound(host.port)
    lifecycle.phase("imports+server")

    def fail(message: str) -> None:
        print(f"error: {message}", file=sys.stderr, flush=True)
        failure.append(message)
        threading.Thread(target=host.stop, daemon=True).start()

    def load_and_warm_up() -> None:
        try:
            t0 = time.monotonic()
            model = spec.load(lifecycle)
            if not any(name.startswith("load") for name in lifecycle.phases):
                lifecycle.phase("load")
            if spec.metrics is not None:
                spec.metrics.model_loaded(time.monotonic() - t0 - lifecycle.waited_s, model)
        except Stopped:
            log.info("stopped before serving")
            return
        except StartFailed as exc:
            log.error("%s", exc)
            return fail(str(exc))
        except BaseException as exc:  # noqa: BLE001 - a clear one-line reason, then exit non-zero
            if isinstance(exc, EditfleetError):
                log.error("cannot load the %s: %s", spec.label, exc)  # a bad LoRA or setting: said in one line
            else:
                log.exception("cannot load the %s", spec.label)
            return fail(f"cannot load {spec.label} {args.model!r}: {type(exc).__name__}: {exc}")
        if host.stopping:
            return
        try:
            spec.warm_up(model)
        except StartFailed as exc:
            return fail(str(exc))
        except BaseException as exc:  # noqa: BLE001
            log.exception("warm-up failed")
            return fail(f"warm-up failed: {type(exc).__name__}: {exc}")
        lifecycle.phase("warm-up")
        spec.attach(model)
        serving.set()
        host.set_serving(True)
        log.info("%s", spec.serving_message(lifecycle))
        now = time.monotonic()
        log.info("phases: %s; process start -> SERVING %.2fs%s",
                 ", ".join(f"{k} {v:.2f}s" for k, v in lifecycle.phases.items()), now - lifecycle.started,
                 f"; go signal -> SERVING {now - lifecycle.go_at:.2f}s" if lifecycle.go_at is not None else "")

    threading.Thread(target=load_and_warm_up, name="model-load", daemon=True).start()
    host.wait()
    if serving.is_set():
        spec.after_stop()
    log.info("stopped")
    return 1 if failure else 0
