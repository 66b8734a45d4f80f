"""What bounds the scorer's work per request and tells the truth about it (issue 28), and the flags
that set it.

Every request is bounded before work starts (samples.admit, then the server):
  --max-text-chars 16384      the instruction and each variable's value, in characters
  --max-id-chars 512          sample_id, protocol, category and each variable's name
  --max-variables 64          entries of ScoreRequest.variables
  --max-images-per-role 8     input images (source_image + more_source_images); reference_images
  --max-input-pixels 40M      each image sent, from its header (the common flag)
  --max-total-pixels 100M     the images the sample's questions show, summed, from their headers
  --max-prompt-tokens 32768   a local judge: each rendered prompt (chat template, text, image tokens),
                              the re-ask's included; an API judge has no tokenizer here
Over any of them: INVALID_ARGUMENT (in a stream, an INVALID result) naming the field and the flag,
before an image is decoded or a prompt reaches the judge. Nothing is truncated: the judge sees what
the suite says or nothing.

Only the images a question will show are decoded (the others are checked from their headers), and
decoded images are counted against a memory budget (--decoded-budget-mb 2048, at 4 bytes a pixel, as
PIL holds RGB) from before their decoding until their sample's result is out or its call ends: a
unary call that finds it taken gets RESOURCE_EXHAUSTED, a stream waits for room (back-pressure); a
request larger than the whole budget runs alone.

Health (HealthWatch): NOT_SERVING while the judge's worker has made no progress for --stuck-after-s
(600) with a batch running, or for good once the worker has died; SERVING again when it recovers.
Idle ScoreStreams (no request read and no result owed for --stream-idle-timeout-s, 300) are closed
by the server (status OK: nothing was owed), so that open streams cannot hold every slot for ever.
"""

from __future__ import annotations

import argparse
import logging
import threading
from typing import Callable

from editfleet_common.errors import Cancelled, Overloaded

from .samples import Limits

log = logging.getLogger(__name__)

MB = 1024 * 1024
DEFAULTS = Limits()
DEFAULT_MAX_PROMPT_TOKENS = 32_768
DEFAULT_DECODED_BUDGET_MB = 2048
DEFAULT_STREAM_IDLE_TIMEOUT_S = 300.0
DEFAULT_STUCK_AFTER_S = 600.0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: need >= 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text}: need seconds >= 0 (0: off)")
    return value


def add_flags(parser) -> None:
    """The bounds' flags (argparse parser or group), their defaults said in their help."""
    parser = _WithDefaults(parser)
    parser.add_argument("--max-text-chars", type=_positive_int, default=DEFAULTS.max_text_chars,
                        help="longest instruction and variable value, in characters; longer: INVALID_ARGUMENT "
                             "(never truncated)")
    parser.add_argument("--max-id-chars", type=_positive_int, default=DEFAULTS.max_id_chars,
                        help="longest sample_id, protocol, category and variable name, in characters")
    parser.add_argument("--max-variables", type=_positive_int, default=DEFAULTS.max_variables,
                        help="most entries in a request's variables")
    parser.add_argument("--max-images-per-role", type=_positive_int, default=DEFAULTS.max_images_per_role,
                        help="most input images (source_image + more_source_images) and most reference_images "
                             "a request may carry")
    parser.add_argument("--max-total-pixels", type=_positive_int, default=DEFAULTS.max_total_pixels,
                        help="pixels of the images a sample's questions show, summed (from their headers, before "
                             "decoding); each image is bounded by --max-input-pixels")
    parser.add_argument("--max-prompt-tokens", type=_positive_int, default=DEFAULT_MAX_PROMPT_TOKENS,
                        help="local judge: longest prompt in tokens (chat template, text and image tokens; the "
                             "re-ask's too), counted before the sample is queued; longer: INVALID_ARGUMENT")
    parser.add_argument("--decoded-budget-mb", type=_positive_int, default=DEFAULT_DECODED_BUDGET_MB,
                        help="decoded images held at once (4 bytes a pixel), from decoding until their result "
                             "is out: a unary call beyond it gets RESOURCE_EXHAUSTED, a stream waits")
    parser.add_argument("--stream-idle-timeout-s", type=_seconds, default=DEFAULT_STREAM_IDLE_TIMEOUT_S,
                        help="close a ScoreStream (status OK) that has sent no request and is owed no result for "
                             "this long (0: never)")
    parser.add_argument("--stuck-after-s", type=_seconds, default=DEFAULT_STUCK_AFTER_S,
                        help="health NOT_SERVING while a batch has run this long with no batch finishing (0: "
                             "never); SERVING again once it finishes")


class _WithDefaults:
    """add_argument with "(default: X)" after the help."""

    def __init__(self, parser):
        self.parser = parser

    def add_argument(self, *names, **kwargs):
        kwargs["help"] = f"{kwargs['help']} (default: %(default)s)"
        return self.parser.add_argument(*names, **kwargs)


def limits_from(args) -> Limits:
    return Limits(
        max_text_chars=getattr(args, "max_text_chars", DEFAULTS.max_text_chars),
        max_id_chars=getattr(args, "max_id_chars", DEFAULTS.max_id_chars),
        max_variables=getattr(args, "max_variables", DEFAULTS.max_variables),
        max_images_per_role=getattr(args, "max_images_per_role", DEFAULTS.max_images_per_role),
        max_image_pixels=getattr(args, "max_input_pixels", DEFAULTS.max_image_pixels),
        max_total_pixels=getattr(args, "max_total_pixels", DEFAULTS.max_total_pixels),
    )


class MemoryBudget:
    """Bytes of decoded images held at once, taken before decoding and given back once (Hold.release).
    A request larger than the whole budget takes all of it: it waits until nothing else is held and
    then runs alone. Each time it drains (nothing held) after at least `trim_after_bytes` came back,
    the C heap's free pages go back to the system (malloc_trim): image buffers freed by several
    threads otherwise stay in glibc's arenas, and the process's RSS with them."""

    def __init__(self, capacity_bytes: int, *, trim_after_bytes: int = 64 * MB):
        self.capacity = max(1, int(capacity_bytes))
        self.used = 0
        self._room = threading.Condition()
        self.trim_after_bytes = trim_after_bytes
        self._returned = 0  # bytes given back since the last trim

    def acquire(self, nbytes: int, *, wait: Callable[[], bool] | None = None) -> "Hold":
        """wait None: Overloaded at once when there is no room (a unary call); else wait while wait()
        is True (a stream, until it ends: then Cancelled)."""
        need = min(max(0, int(nbytes)), self.capacity)
        with self._room:
            while self.used + need > self.capacity:
                if wait is None:
                    raise Overloaded(
                        f"decoded images in flight: {self.used / MB:.0f} of {self.capacity / MB:.0f} MB taken "
                        f"(--decoded-budget-mb) and this request needs {need / MB:.0f} MB; retry later")
                if not wait():
                    raise Cancelled("the call ended while waiting for room to decode its images")
                self._room.wait(0.2)
            self.used += need
        return Hold(self, need)

    def _give_back(self, nbytes: int) -> None:
        with self._room:
            self.used -= nbytes
            self._returned += nbytes
            trim = self.used == 0 and self._returned >= self.trim_after_bytes
            if trim:
                self._returned = 0
            self._room.notify_all()
        if trim:
            trim_heap()


class Hold:
    def __init__(self, budget: MemoryBudget, nbytes: int):
        self.budget, self.nbytes = budget, nbytes
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            if not self._held:
                return
            self._held = False
        self.budget._give_back(self.nbytes)


class HealthWatch:
    """A thread that turns health NOT_SERVING while `problem()` names one (a stuck or dead worker)
    and SERVING again once it is gone; never after the host began stopping (its health is then
    NOT_SERVING for good). `on_change(problem or None)` learns each change."""

    def __init__(self, host, problem: Callable[[], str | None], *, interval_s: float = 0.5,
                 on_change: Callable[[str | None], None] = lambda problem: None):
        self.host = host
        self.problem = problem
        self.interval_s = interval_s
        self.on_change = on_change
        self.current: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="health-watch", daemon=True)

    def start(self) -> "HealthWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            if getattr(self.host, "stopping", False):
                return
            try:
                problem = self.problem()
            except Exception:  # noqa: BLE001 - the watch itself must not die
                log.exception("health watch")
                continue
            was_serving = self.current is None
            self.current = problem
            if (problem is None) == was_serving or getattr(self.host, "stopping", False):
                continue  # no change (still unhealthy: the reason worded anew), or stopping
            if problem:
                log.error("health NOT_SERVING: %s", problem)
            else:
                log.warning("health SERVING again: the judge is making progress")
            self.host.set_serving(problem is None)
            self.on_change(problem)


def _malloc_trim():
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_TRIM = _malloc_trim()


def trim_heap() -> None:
    """Give the C heap's free memory back to the system (glibc; elsewhere nothing)."""
    if _TRIM is not None:
        _TRIM(0)


def stall_problem(batcher, stuck_after_s: float) -> str | None:
    """What the batcher's state says is wrong with the judge, or None."""
    if batcher.dead:
        return "the judge's batch worker has ended: no sample can be judged (restart the scorer)"
    if stuck_after_s > 0:
        stalled = batcher.stalled_for()
        if stalled > stuck_after_s:
            return (f"a batch has run for {stalled:.0f}s with no batch finishing (--stuck-after-s "
                    f"{stuck_after_s:g}): the judge is stuck")
    return None
