"""What the user sees: live per-editor bars (or plain lines without a terminal) while editing,
then the judge's lines in the seed's format and the summary tables.

An API editor (editor.backend openai-images / openai-chat-image) has request slots, not denoise steps:
`start_editing(..., api=True)` shows a line per slot with the sample in flight, the seconds since its
request went out, and the partial images received where the provider streams them (the editor reports
each as a step of partial_images + 1)."""

from __future__ import annotations

import shutil
import sys
import threading
import time

from tqdm import tqdm

from editfleet_common import statuses

from . import api_usage
from .benchmark import Sample

RULE = "=" * 70


def make_ui(mode: str = "auto", stream=None):
    stream = stream or sys.stdout
    if mode == "auto":
        # Bars need a terminal that reports its width; a 0-column pty would swallow them.
        mode = "bars" if sys.stderr.isatty() and shutil.get_terminal_size((0, 0)).columns > 0 else "plain"
    return BarsUI(stream) if mode == "bars" else PlainUI(stream)


class _Base:
    def __init__(self, stream):
        self.stream = stream
        self.lock = threading.RLock()
        self.total = 0
        self.finished = 0

    def print(self, text: str = "") -> None:
        with self.lock:
            print(text, file=self.stream, flush=True)

    log = print


class _Slots:
    """What each editing slot is doing, for the API editor's lines: the sample, when its request went out,
    the partial images received so far."""

    api = False

    def _slots_begin(self, slot: int, name: str, sample: Sample) -> None:
        self.in_flight[slot] = {"name": name, "sample": sample, "since": time.monotonic(), "partials": 0, "of": 0}

    def _slots_step(self, slot: int, step: int, total: int) -> dict | None:
        """A partial image (step < total: `total - 1` asked for); None where nothing new is to be shown."""
        busy = self.in_flight.get(slot)
        if busy is None or step >= total:
            return None
        busy["partials"], busy["of"] = step, total - 1
        return busy

    def slot_text(self, slot: int) -> str:
        """`phys-01 12.3s, partial images 1/3`, or `idle`."""
        busy = self.in_flight.get(slot)
        if busy is None:
            return "idle"
        text = f"{busy['sample'].id} {time.monotonic() - busy['since']:.1f}s"
        return text + (f", partial images {busy['partials']}/{busy['of']}" if busy["of"] else "")


class PlainUI(_Base, _Slots):
    """One line per event: for logs, CI and `kubectl logs`."""

    def start_editing(self, total: int, already_done: int, names: list[str], *, api: bool = False) -> None:
        self.total, self.finished = total, already_done
        self.started = time.monotonic()
        self.api, self.in_flight = api, {}
        what = f"{len(names)} request slot(s) of the API editor" if api else f"{len(names)} editor(s)"
        self.print(f"Editing {total - already_done} of {total} samples on {what}: {', '.join(names)}")

    def editor_begin(self, slot: int, name: str, sample: Sample, total_steps: int) -> None:
        if self.api:
            self._slots_begin(slot, name, sample)
        self.print(f"[{name}] {sample.category}/{sample.id}: {'request sent' if self.api else 'editing'}")

    def editor_step(self, slot: int, step: int, total: int) -> None:
        # one line per denoise step would drown the log; an API's few partial images each get one
        busy = self._slots_step(slot, step, total) if self.api else None
        if busy is not None:
            self.print(f"[{busy['name']}] {busy['sample'].category}/{busy['sample'].id}: partial image "
                       f"{busy['partials']}/{busy['of']} after {time.monotonic() - busy['since']:.1f}s")

    def editor_end(self, slot: int, name: str, sample: Sample, *, ok: bool, text: str, done: bool) -> None:
        with self.lock:
            if self.api:
                self.in_flight.pop(slot, None)
            if done:
                self.finished += 1
            progress = f" [{self.finished}/{self.total}]" if done else ""
            self.print(f"[{name}] {sample.category}/{sample.id}: {'done, ' if ok else ''}{text}{progress}")

    def finish_editing(self) -> None:
        pass


class BarsUI(_Base, _Slots):
    """A tqdm bar per editor (its denoise steps, from the Edit progress stream) and an overall bar; for an
    API editor a line per request slot (sample, seconds in flight, partial images), redrawn every second."""

    TICK_S = 1.0

    def __init__(self, stream):
        super().__init__(stream)
        self._ticking = threading.Event()

    def start_editing(self, total: int, already_done: int, names: list[str], *, api: bool = False) -> None:
        self.total, self.finished = total, already_done
        self.api, self.in_flight, self.names = api, {}, list(names)
        tqdm.set_lock(self.lock)
        if api:
            self.bars = [tqdm(total=None, desc=f"[{name}] request", position=i, leave=False, dynamic_ncols=True,
                              bar_format="{desc}{postfix}", postfix="idle") for i, name in enumerate(names)]
        else:
            self.bars = [
                tqdm(total=1, desc=f"[{name}] Denoising", unit="step", position=i, leave=False, dynamic_ncols=True)
                for i, name in enumerate(names)
            ]
        self.overall = tqdm(
            total=total, initial=already_done, desc="Editing images", unit="img", position=len(names),
            dynamic_ncols=True,
        )
        if api:  # the seconds in flight move without any event: redraw the slots' lines
            self._ticking.set()
            threading.Thread(target=self._tick, name="ui-slots", daemon=True).start()

    def _tick(self) -> None:
        while self._ticking.is_set():
            with self.lock:
                if not self._ticking.is_set():
                    return
                for slot, bar in enumerate(self.bars):
                    bar.set_postfix_str(self.slot_text(slot), refresh=True)
            time.sleep(self.TICK_S)

    def editor_begin(self, slot: int, name: str, sample: Sample, total_steps: int) -> None:
        with self.lock:
            bar = self.bars[slot]
            if self.api:
                self._slots_begin(slot, name, sample)
                bar.set_postfix_str(self.slot_text(slot), refresh=True)
                return
            bar.set_description(f"[{name}] Denoising", refresh=False)
            bar.reset(total=total_steps or 1)
            bar.set_postfix_str(sample.id, refresh=True)

    def editor_step(self, slot: int, step: int, total: int) -> None:
        with self.lock:
            bar = self.bars[slot]
            if self.api:
                if self._slots_step(slot, step, total) is not None:
                    bar.set_postfix_str(self.slot_text(slot), refresh=True)
                return
            if bar.total != total:
                bar.reset(total=total)
            bar.update(step - bar.n)

    def editor_end(self, slot: int, name: str, sample: Sample, *, ok: bool, text: str, done: bool) -> None:
        with self.lock:
            if self.api:
                self.in_flight.pop(slot, None)
                self.bars[slot].set_postfix_str("idle", refresh=True)
            if not ok:
                tqdm.write(f"[{name}] {sample.category}/{sample.id}: {text}", file=sys.stderr)
            if done:
                self.finished += 1
                self.overall.update(1)

    def log(self, text: str = "") -> None:
        with self.lock:
            if getattr(self, "overall", None) is not None:
                tqdm.write(text, file=sys.stderr)
            else:
                self.print(text)

    def finish_editing(self) -> None:
        self._ticking.clear()
        with self.lock:
            for bar in self.bars:
                bar.close()
            self.overall.close()
            self.overall = None


# -- the judge's lines, in the seed's format --------------------------------------------------
def short(text: str, width: int = 80) -> str:
    """One line of at most `width` characters, cut after a whole word (a single word longer than the
    line is cut inside it)."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    head = text[: width - 3]
    cut = head.rfind(" ")
    if cut > 0 and text[width - 3] != " ":
        head = head[:cut]
    return head.rstrip(" ,;:") + "..."


REASON_WIDTH = 240  # why a sample failed (INVALID, ERROR, REFUSED): long enough for the whole reason


JUDGE_TAG = "[Qwen3-VL Scoring]"   # the seed's name for the judging phase's lines
METRICS_TAG = "[Reference metrics]"  # judge.backend metrics: no judge model, the suite's metrics


def judge_tag(backend: str | None) -> str:
    return METRICS_TAG if backend == "metrics" else JUDGE_TAG


def metric_values(sub_scores: dict, labels: dict[str, str] | None = None) -> str:
    """`L1 0.0834  L2 0.0121  CLIP-I 0.9120`: each metric by its name (labels: question -> label)."""
    labels = labels or {}
    return "  ".join(f"{labels.get(name, name)} {value:.4f}" for name, value in sub_scores.items()
                     if value is not None and "." not in name)


def score_line(index: int, record: dict, failed_raw: str | None = None, metrics: dict[str, str] | None = None) -> str:
    """`  [Sample   0] Score: 8.50 | Response: ...  (category/id)`; failures say so, with the raw text:
    for PARSE_FAILED the reply that could not be read (`failed_raw`, where the caller could tell it
    from the replies that parsed; else the last reply), for the others the whole reason. A reference-
    metrics result (metrics: its protocol's question -> label; or a result with sub-scores and no reply
    text) shows its values instead: `  [Sample   0] L1 0.0834  L2 0.0121  CLIP-I 0.9120 ...  (category/id)`."""
    repeat = f", repeat {record['repeat'] + 1}" if "repeat" in record else ""
    where = f"({record['category']}/{record['id']}{repeat})"
    if record["status"] == statuses.OK:
        subs = record.get("sub_scores") or {}
        if subs and (metrics is not None or not (record.get("response") or "").strip()):
            return f"  [Sample {index:3d}] {metric_values(subs, metrics)}  {where}"
        return f"  [Sample {index:3d}] Score: {record['score']:.2f} | Response: {short(record.get('response', ''))}  {where}"
    expected = record.get("expected_score")
    extra = f" (expected {expected:.2f})" if expected is not None else ""
    raw = failed_raw if failed_raw is not None else (record.get("raw_responses") or [""])[-1]
    if record["status"] == statuses.PARSE_FAILED and raw:
        question = (record.get("error") or "").split(":", 1)[0].strip()
        named = f" ({question})" if question and len(record.get("raw_responses") or []) > 1 else ""
        detail = f"Raw{named}: {short(raw)}"
    elif record["status"] == "REFUSED":
        detail = f"Reason: {short(record.get('error') or '', REASON_WIDTH)}"
    else:
        detail = f"Error: {short(record.get('error') or raw, REASON_WIDTH)}"
    return f"  [Sample {index:3d}] Score: {record['status']}{extra} | {detail}  {where}"


def batch_line(batch_no: int, first: int, last: int, scores: list[float], label: str = "") -> str:
    """label: the score's name where it is not a judge's score ("L1": `avg L1=0.1599`)."""
    avg = f"{sum(scores) / len(scores):.{4 if label else 3}f}" if scores else "n/a"
    failed = (last - first + 1) - len(scores)
    tail = f" ({failed} failed)" if failed else ""
    return f"[Batch {batch_no}] Images {first}-{last} done, {f'avg {label}' if label else 'avg_score'}={avg}{tail}"


def _fmt(value, spec: str = ".3f") -> str:
    return format(value, spec) if value is not None else "n/a"


def summary_block(summary: dict, title: str = f"{JUDGE_TAG} Completed!") -> str:
    score = summary.get("score") or {}
    lines = [
        RULE,
        title,
        f"  Total images: {summary['samples']}",
        f"  Scored: {summary['scored']}   edit failures: {summary['edit_failures']}   "
        f"score failures: {summary['score_failures']}"
        + (f" (refused: {summary['refused']})" if summary.get("refused") else "")
        + (f"   pending: {summary['pending']}" if summary["pending"] else ""),
        *([f"  Score: {score['shown']}   ({score['better']} is better; the protocol's headline, "
           f"{score.get('protocol', '')})"] if score.get("better") == "lower" or score.get("label", "score") != "score"
          else []),
        f"  Average score: {_fmt(summary['micro_mean'])}   (micro: every sample pooled)",
        f"  Macro average: {_fmt(summary['macro_mean'])}   (mean of the category means)",
        f"  Min score: {_fmt(summary['min'])}",
        f"  Max score: {_fmt(summary['max'])}",
    ]
    if summary.get("expected_mean") is not None:
        lines.append(f"  Expected-score mean: {_fmt(summary['expected_mean'])}   (probability-weighted)")
    tokens = summary.get("judge_tokens") or {}
    if tokens.get("prompt") or tokens.get("completion"):
        lines.append(f"  Judge tokens: {tokens['prompt']} prompt + {tokens['completion']} completion   (as the API reported)")
    if summary.get("editor_api"):
        lines += api_usage.console_lines(summary["editor_api"])
    if summary.get("failures_as") == "zero":
        lines.append("  (failures count as 0.0 in the means)")
    lines.append(RULE)
    return "\n".join(lines)


def category_table(summary: dict) -> str:
    cats = summary["categories"]
    width = max([len("category")] + [_display_width(c) for c in cats])
    refusals = any(c.get("refused") for c in cats.values())  # a column only where a judge refused
    shown = (summary.get("score") or {}).get("shown", "")
    mean = f"mean {shown}" if shown and shown != "score \u2191" else "mean"
    header = (f"  {'category'.ljust(width)}  samples  scored  failed" + ("  refused" if refusals else "")
              + f"  {mean:>{max(6, len(mean))}}     min     max   E[score]")
    lines = [header, "  " + "-" * (len(header) - 2)]
    for name, c in cats.items():
        failed = c["edit_failures"] + c["score_failures"]
        pad = " " * (width - _display_width(name))
        lines.append(
            f"  {name}{pad}  {c['samples']:7d}  {c['scored']:6d}  {failed:6d}"
            + (f"  {c.get('refused', 0):7d}" if refusals else "")
            + f"  {_fmt(c['mean']):>{max(6, len(mean))}}  {_fmt(c['min']):>6}  {_fmt(c['max']):>6}  {_fmt(c['expected_mean']):>8}"
        )
    return "\n".join(lines)


def _display_width(text: str) -> int:
    """Columns in a terminal: CJK characters (物理) take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
