"""The editing phase: a dynamic queue feeding every editor, with retries and per-sample seeds.

Each editor has a worker thread that pulls the next sample as soon as its editor is free: no static
shards and no barrier, so a slow or restarted editor never holds the others up. A sample whose editor
dies or answers a transient status goes back to the queue (at most `max_attempts` tries in all);
a permanent failure (INVALID_ARGUMENT, FAILED_PRECONDITION: bad input, a setting that cannot work,
non-finite output at these settings) is recorded in edits.jsonl at once, never retried or hidden.
When the first K samples of a session (`stop_after_failures`) all fail for good with the same error,
the rest would too: nothing more is handed out and the run says so (`DispatchOutcome.stopped`).
A turn of a multi-turn chain (`Sample.input_from`) joins the queue as soon as the edit of the turn
before it is on disk, and fails, recorded, when that turn fails (orchestrator/chains.py).
With an API editor, every call goes into edits.jsonl as it settles, so that the run's request totals
are exact (orchestrator/api_usage.py): a call handed out again has a line of its own (status
"handed_back", no "id": it settles nothing) and a failure line says the requests of its own last call
(`api_requests`), both read from the editor's "after N attempt(s)" (None where that is not known).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from PIL import Image

from editfleet_common.api_attempts import requests_in
from editfleet_common.channels import ServiceError

from .api_usage import is_api_editor
from .benchmark import Sample
from .chains import ChainFailure, ChainInput, ChainPlan
from .config import EditorConfig
from .fleet.base import Endpoint, Fleet
from .identity import environment_warning, same_identity_everywhere
from .results import RunDir, sha256_hex

# Worth another try besides ServiceError.retryable (UNAVAILABLE, queue full, DEADLINE_EXCEEDED, ABORTED):
# a connection cut by a dying editor can surface as CANCELLED or UNKNOWN; INTERNAL is the editor's
# own trouble (a CUDA error breaks its context and it then fails every request at once): as a final
# failure, one sick editor would drain the queue into failures kept by every rerun. Retried, it
# counts towards that editor's failures in a row (restart), and a sample that fails everywhere
# ends as a non-final failure after max_attempts.
EXTRA_TRANSIENT = {"CANCELLED", "UNKNOWN", "INTERNAL"}
# An editor that fails this many samples in a row while still running is taken out of the pool.
MAX_CONSECUTIVE_FAILURES = 3
# What a service says when the request itself cannot work, wherever and whenever it is sent: bad input,
# a setting that cannot work, non-finite output at these settings. Never retried.
PERMANENT_CODES = frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION"})


def is_permanent(exc: BaseException) -> bool:
    """A failure that no retry can mend (PERMANENT_CODES); transient: UNAVAILABLE, DEADLINE_EXCEEDED,
    RESOURCE_EXHAUSTED (a full queue), ABORTED, EXTRA_TRANSIENT, a dead service, a bad result."""
    return isinstance(exc, ServiceError) and exc.code_name in PERMANENT_CODES


class SameFailureStop:
    """Watches the first `limit` samples settled in a session: when every one of them failed for good
    with the same error (numbers, the sample's id and its category aside: "300x300" and "512x512", or
    "category 'physical'" and "category 'cultural'", are the same complaint), `settle` returns why the
    run should stop, once. 0: never."""

    def __init__(self, limit: int, what: str = "samples"):
        self.limit = max(0, limit)
        self.what = what
        self.seen: list[str | None] = []
        self.first_error = ""
        self.lock = threading.Lock()

    @staticmethod
    def _kind(error: str, sample: Sample) -> str:
        for own, stands_for in ((sample.id, "<id>"), (sample.category, "<category>")):
            if own:
                error = error.replace(f"'{own}'", stands_for).replace(own, stands_for)
        return re.sub(r"\d+(\.\d+)?", "#", error)

    def settle(self, sample: Sample, permanent_error: str | None) -> str | None:
        """permanent_error: the sample's permanent failure ("CODE: message"), None for anything else."""
        with self.lock:
            if not self.limit or len(self.seen) >= self.limit:
                return None
            self.seen.append(None if permanent_error is None else self._kind(permanent_error, sample))
            if permanent_error is not None and len(self.seen) == 1:
                self.first_error = permanent_error
            if len(self.seen) < self.limit or self.seen[0] is None or len(set(self.seen)) != 1:
                return None
            return (f"the first {self.limit} {self.what} all failed with the same error, which the rest would "
                    f"hit too: {self.first_error}")


def sample_seed(base_seed: int, sample_id: str) -> int:
    """The seed of one sample: the first 8 bytes of sha256("<base>:<id>"), kept below 2**63.

    It depends only on the base seed and the sample id, never on which editor runs the sample or
    in which order, so results do not depend on the number of editors.
    """
    digest = hashlib.sha256(f"{base_seed}:{sample_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


# A sample's own "extras" that set the request's fields rather than pipeline call arguments
_REQUEST_FIELDS = {"width": "width", "height": "height", "num_inference_steps": "steps",
                   "guidance_scale": "guidance_scale", "negative_prompt": "negative_prompt"}


def edit_fields(sample: Sample, settings: EditorConfig) -> dict:
    """The EditorClient.edit keyword arguments for one sample: the run's settings, with the sample's own
    pipeline arguments (`Sample.edit_args`, native "extras") merged over them."""
    fields = {
        "sample_id": sample.id,
        "steps": settings.steps,
        "seed": sample_seed(settings.seed, sample.id),
        "negative_prompt": settings.negative_prompt,
        "guidance_scale": settings.guidance,
        "width": settings.width,
        "height": settings.height,
        "extras": dict(settings.extras),
    }
    for key, value in sample.edit_args.items():
        if key in _REQUEST_FIELDS:
            fields[_REQUEST_FIELDS[key]] = value
        else:
            fields["extras"][key] = value
    return fields


class EditFailed(Exception):
    """An editor answer that is unusable (wrong sample, bad image): tried again elsewhere."""


# (address) -> an editor_service.client.EditorClient (or anything with its edit/close)
ClientFactory = Callable[[str], object]


@dataclass
class Job:
    sample: Sample
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    input: ChainInput | None = None  # a chain's turn: the edit it edits, in place of its own first image


@dataclass
class DispatchOutcome:
    edited: int = 0
    failed: int = 0
    chain_failed: int = 0  # of the failed, turns not edited because a turn before them failed
    remaining: list[Sample] = field(default_factory=list)  # not done: every editor is gone
    editors_lost: list[str] = field(default_factory=list)
    restarts: int = 0
    stopped: str = ""  # why the run stopped handing out samples (SameFailureStop), "" when it did not
    not_started: list[Sample] = field(default_factory=list)  # left untouched by that stop


class Dispatcher:
    def __init__(
        self,
        fleet: Fleet,
        endpoints: list[Endpoint],
        samples: list[Sample],
        *,
        settings: EditorConfig,
        run_dir: RunDir,
        ui,
        client_factory: ClientFactory,
        identity: dict | None = None,
        stop_after: int = 0,
        every_sample: list[Sample] | None = None,
        finished: dict[str, dict] | None = None,
    ):
        """identity: the editors' GetInfo at the start; an editor restarted during the run must match it.
        stop_after: stop handing out samples when the first this many fail for good with the same error.
        every_sample, finished: for chains, the benchmark's samples and the kept edit or failure line of
        those not in `samples` (RunDir.edit_state), where a turn to edit takes its input from one."""
        self.fleet = fleet
        self.identity = identity
        self.endpoints = list(endpoints)
        self.settings = settings
        self.run_dir = run_dir
        self.ui = ui
        self.client_factory = client_factory
        self.chains = ChainPlan(samples, every_sample or samples, finished or {}, run_dir.edit_path)
        self.pending: deque[Job] = deque(Job(s, input=given) for s, given in self.chains.ready)
        self.in_flight = 0
        self.cond = threading.Condition()
        self.outcome = DispatchOutcome()
        self.fatal: BaseException | None = None
        self.stopping = False  # interrupted: workers leave quietly, nothing more is recorded
        self.live_workers = 0
        self.same_failure = SameFailureStop(stop_after)
        self.halted = ""  # set once by the same-failure stop: nothing more is handed out
        self.api = is_api_editor(identity)  # each call's requests recorded as it settles (module docstring)

    # -- the queue -----------------------------------------------------------------------------
    def _take(self) -> Job | None:
        with self.cond:
            while True:
                if self.fatal is not None or self.stopping or self.halted:
                    return None
                if self.pending:
                    self.in_flight += 1
                    return self.pending.popleft()
                if self.in_flight == 0:
                    return None  # all done
                self.cond.wait()  # a sample in flight elsewhere may come back

    def _settle(self, job: Job, requeue: bool) -> None:
        with self.cond:
            self.in_flight -= 1
            if requeue:
                self.pending.appendleft(job)  # first in line: it has waited longest
            self.cond.notify_all()

    # -- running -------------------------------------------------------------------------------
    def run(self) -> DispatchOutcome:
        for failure in self.chains.failed_now:  # turns whose input failed in an earlier session
            self._record_chain_failure(failure)
        threads = []
        self.live_workers = len(self.endpoints)
        for slot, endpoint in enumerate(self.endpoints):
            t = threading.Thread(target=self._worker, args=(slot, endpoint), name=f"editor-{slot}", daemon=True)
            t.start()
            threads.append(t)
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.5)
        except BaseException:  # Ctrl-C / SIGTERM: the editors are about to be stopped under the workers
            with self.cond:
                self.stopping = True
                self.cond.notify_all()
            raise
        if self.fatal is not None:
            raise self.fatal
        if self.halted:
            self.outcome.stopped = self.halted
            self.outcome.not_started = [job.sample for job in self.pending] + self.chains.left()
        else:
            self.outcome.remaining = [job.sample for job in self.pending] + self.chains.left()
        return self.outcome

    def _settled(self, sample: Sample, permanent_error: str | None) -> None:
        """A sample is done with for this session (edited, or failed for good or after its attempts)."""
        reason = self.same_failure.settle(sample, permanent_error)
        if reason:
            with self.cond:
                self.halted = reason
                self.cond.notify_all()
            self.ui.log(f"Stopping: the first {self.same_failure.limit} samples failed with the same error; "
                        "no more samples are handed out")

    # -- chains --------------------------------------------------------------------------------
    def _chain_edited(self, sample: Sample, line: dict) -> None:
        """The turns after `sample` go first in line (finishing a chain early keeps fewer half-done)."""
        with self.cond:
            for after, given in reversed(self.chains.edited(sample.id, line)):
                self.pending.appendleft(Job(after, input=given))
            self.cond.notify_all()

    def _chain_failed(self, sample: Sample, error: str, final: bool) -> None:
        with self.cond:
            failures = self.chains.failed(sample.id, error, final)
        for failure in failures:
            self._record_chain_failure(failure)

    def _record_chain_failure(self, failure: ChainFailure) -> None:
        record = failure.record()
        if self.api:  # never sent: its error quotes the failed turn's, whose requests are counted there
            record["api_requests"] = 0
        self.run_dir.record_edit_failure(failure.sample, record.pop("error"), final=record.pop("final"), **record)
        self.outcome.failed += 1
        self.outcome.chain_failed += 1
        self.ui.log(f"{failure.sample.id}: not edited, its chain's turn {failure.failed_turn!r} failed")

    def _worker(self, slot: int, endpoint: Endpoint) -> None:
        client = self.client_factory(endpoint.address)
        consecutive_failures = 0
        try:
            while True:
                job = self._take()
                if job is None:
                    return
                try:
                    status = self._edit_one(slot, endpoint, client, job)
                except BaseException as exc:  # a local failure (disk full, bug): stop the whole run
                    with self.cond:
                        self.fatal = self.fatal or exc
                    self._settle(job, requeue=True)
                    return
                if status == "stopped":
                    self._settle(job, requeue=True)
                    return
                self._settle(job, requeue=status == "retry")
                if status != "retry":
                    consecutive_failures = 0
                    continue
                consecutive_failures += 1
                # A pause before judging the editor: a process killed outright closes its sockets a
                # moment before it can be seen to have exited; a live one refusing work gets a breather.
                time.sleep(0.5)
                editor_gone = not self.fleet.editor_alive(endpoint)
                if editor_gone or consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                    reason = "exited" if editor_gone else f"failed {consecutive_failures} samples in a row"
                    client.close()
                    replacement = self._replace(slot, endpoint, reason)
                    if replacement is None:
                        return
                    endpoint, consecutive_failures = replacement, 0
                    client = self.client_factory(endpoint.address)
        finally:
            client.close()
            with self.cond:
                self.live_workers -= 1
                if self.live_workers == 0:
                    self.cond.notify_all()

    def _replace(self, slot: int, endpoint: Endpoint, reason: str) -> Endpoint | None:
        self.ui.log(f"[{endpoint.name}] editor {reason}; restarting it")
        try:
            replacement = self.fleet.restart_editor(endpoint)
        except Exception as exc:  # the fleet could not bring it back: go on with the others
            self.ui.log(f"[{endpoint.name}] restart failed: {exc}")
            replacement = None
        if replacement is not None and self.identity is not None:
            replacement = self._same_editor_as_before(replacement)
        if replacement is None:
            self.ui.log(f"[{endpoint.name}] taken out of the pool; the other editors go on")
            self.outcome.editors_lost.append(endpoint.name)
            with self.cond:
                # The last editor gone: nobody will take what is left.
                if self.live_workers == 1:
                    self.cond.notify_all()
            return None
        self.outcome.restarts += 1
        self.ui.log(f"[{replacement.name}] editor back at {replacement.address}")
        return replacement

    def _same_editor_as_before(self, replacement: Endpoint) -> Endpoint | None:
        """The restarted editor, if it runs the run's model the same way (a pod rescheduled onto other
        hardware is used, with a warning); None if it does not, or does not say."""
        try:
            with self.client_factory(replacement.address) as client:
                info = dataclasses.asdict(client.info())
            _, differs = same_identity_everywhere({"at the start": self.identity, "restarted": info}, "editor")
        except Exception as exc:  # another model, another way of running it, or no answer
            self.ui.log(f"[{replacement.name}] restarted editor not used: {exc}")
            return None
        if differs:
            self.ui.log(f"[{replacement.name}] warning: " + environment_warning(differs, "the restarted editor differs"))
        return replacement

    def _edit_one(self, slot: int, endpoint: Endpoint, client, job: Job) -> str:
        """'ok', 'failed' (recorded), 'retry' (back to the queue) or 'stopped' (interrupted)."""
        sample = job.sample
        job.attempts += 1
        total = self.settings.steps or 0
        self.ui.editor_begin(slot, endpoint.name, sample, total)
        started = time.monotonic()
        chained = {}
        result = None
        try:
            if job.input is not None:  # a chain's turn: the edit of the turn before, as it is on disk
                first = job.input.read()
                images = [first, *sample.more_sources()]
                chained = {"input_from": job.input.from_id, "input_sha256": sha256_hex(first)}
            else:
                images = sample.source_images()
            result = client.edit(
                images,
                sample.instruction,
                on_progress=lambda p: self.ui.editor_step(slot, p.step, p.total_steps),
                timeout=self.settings.timeout_s,
                **edit_fields(sample, self.settings),
            )
            if result.sample_id != sample.id:
                raise EditFailed(f"result for {result.sample_id!r}, asked for {sample.id!r}")
            _check_png(result.image_png)
        except (ServiceError, EditFailed) as exc:
            if self.stopping:  # the error is our own shutdown, not the sample's or the editor's fault
                return "stopped"
            message = str(exc)
            code = exc.code_name if isinstance(exc, ServiceError) else "BAD_RESULT"
            job.errors.append(f"{endpoint.name}: {message}")
            sent = self._requests_sent(message, code, result)  # {"api_requests": N} for an API editor's call, else {}
            # A dead editor's error says nothing about the sample: always worth another try.
            transient = (not isinstance(exc, ServiceError) or exc.retryable or exc.code_name in EXTRA_TRANSIENT
                         or not self.fleet.editor_alive(endpoint))
            if not transient:  # permanent (PERMANENT_CODES) or another final status: recorded, never retried
                self.run_dir.record_edit_failure(
                    sample, message, final=True, code=code, attempts=job.attempts, editor=endpoint.name, **chained,
                    **sent)
                self.outcome.failed += 1
                self.ui.editor_end(slot, endpoint.name, sample, ok=False, text=f"failed: {message}", done=True)
                self._chain_failed(sample, f"{code}: {message}" if code == "BAD_RESULT" else message, True)
                self._settled(sample, message if is_permanent(exc) else None)
                return "failed"
            if job.attempts >= self.settings.max_attempts:
                error = f"gave up after {job.attempts} attempts: " + " | ".join(job.errors)
                # Not final: the next run on this output dir tries it again.
                self.run_dir.record_edit_failure(sample, error, final=False, code=code, attempts=job.attempts, **chained,
                                                 **sent)  # the last call's: the others have handed-back lines
                self.outcome.failed += 1
                self.ui.editor_end(slot, endpoint.name, sample, ok=False, text=error, done=True)
                self._chain_failed(sample, error, False)
                self._settled(sample, None)
                return "failed"
            if self.api:  # its requests were sent (and may be billed) whatever comes of the sample
                self.run_dir.edits.append({"status": "handed_back", "sample_id": sample.id, "category": sample.category,
                                           "attempt": job.attempts, "code": code, "error": message,
                                           "editor": endpoint.name, **sent})
            self.ui.editor_end(
                slot, endpoint.name, sample, ok=False, done=False,
                text=f"{message}; back to the queue (attempt {job.attempts}/{self.settings.max_attempts})",
            )
            return "retry"
        timings = {k: round(v, 4) for k, v in result.timings.items()}
        line = self.run_dir.save_edit(
            sample,
            result.image_png,
            {
                "instruction": sample.instruction,
                "seed": result.seed,
                "width": result.width,
                "height": result.height,
                "steps": result.num_inference_steps,
                "editor": endpoint.name,
                "attempts": job.attempts,
                "model_hash": result.model.get("content_hash", ""),
                "call_arguments": dict(result.call_arguments),
                **({"images": [str(job.input.path), *map(str, sample.more_images)]} if job.input is not None else
                   {"images": [str(p) for p in sample.image_paths()]} if sample.image_paths() else {}),
                **chained,
                **({"sample_extras": sample.edit_args} if sample.edit_args else {}),
                "timings": {**timings, "wall_s": round(time.monotonic() - started, 4)},
            },
        )
        self.outcome.edited += 1
        self._chain_edited(sample, line)
        self.ui.editor_end(
            slot, endpoint.name, sample, ok=True, done=True,
            text=f"{result.width}x{result.height} in {time.monotonic() - started:.1f}s",
        )
        self._settled(sample, None)
        return "ok"

    def _requests_sent(self, message: str, code: str, result) -> dict:
        """A failed call's requests to the API editor's provider, as a line's `api_requests`: those its message
        names ("after N attempt(s)"; the editor says so of every call that reached the provider), or its
        result's (an image that came back unusable); 0 for a request the editor refused itself (bad input:
        PERMANENT_CODES without the note); None where nothing says (a dead editor, a deadline of ours: it may
        have sent some). {} for a local editor."""
        if not self.api:
            return {}
        if result is not None:
            try:
                return {"api_requests": int(json.loads(result.call_arguments.get("attempts", "null")))}
            except (TypeError, ValueError):
                return {"api_requests": None}
        sent, calls = requests_in(message)
        return {"api_requests": sent if calls else 0 if code in PERMANENT_CODES else None}


def _check_png(data: bytes) -> None:
    if not data:
        raise EditFailed("empty image in the result")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
    except Exception as exc:  # PIL raises many kinds for corrupt data
        raise EditFailed(f"result image does not decode ({type(exc).__name__}: {exc})") from None


