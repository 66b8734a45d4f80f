"""The output directory: manifest, append-only JSONL stores, atomically written edits, summary.

    <out>/manifest.json       config, benchmark, models, protocol hash, packages, git, devices
    <out>/edits/<category>/<id>.png
    <out>/edits.jsonl         one line per edit attempt outcome (ok or failed), last line per id wins
    <out>/scores.jsonl        one line per judged sample, last line per id wins
    <out>/summary.json        per-category and overall statistics
    <out>/report.html
    <out>/logs/               service logs

Crash safety: an image is written to a temporary file, fsynced and renamed before its line is
appended; lines are appended with one write and fsynced. A crash can therefore leave at most a torn
last line (ignored on read and cut off before the next append) or an image without a line (redone).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from editfleet_common import statuses
from editfleet_common.redact import redact_json

from . import chains
from .benchmark import Sample, safe_path_component


class ResultsError(Exception):
    """A results file that cannot be trusted (named, with the line)."""


class JsonlStore:
    """Append-only JSON Lines, safe against being killed at any moment."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def read(self) -> list[dict]:
        """Every complete record. A last line without its newline is a write cut short by a crash:
        it is not a record (and the next append cuts it off). Any other bad line is an error."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        records = []
        for line_no, raw in enumerate(complete.split(b"\n")[:-1], start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError as exc:
                raise ResultsError(f"{self.path}:{line_no}: unreadable line ({exc})") from None
            if not isinstance(record, dict):
                raise ResultsError(f"{self.path}:{line_no}: expected a JSON object")
            records.append(record)
        return records

    def _repair_tail(self) -> None:
        """Cut a torn last line (a crash mid-write) so the next record starts on a line of its own."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            data = f.read()
            f.truncate(data.rfind(b"\n") + 1)
            f.flush()
            os.fsync(f.fileno())

    def append(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        with self._lock:
            self._repair_tail()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)


def latest_by_id(records: Iterable[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for record in records:
        if "id" in record:
            out[record["id"]] = record
    return out


def score_key(sample_id: str, repeat: int = 0) -> str:
    """A score line's key: the sample id, and for the repeats after the first (`score --repeats K`)
    "<id>/<repeat>" (ids never hold a '/', so keys cannot collide). Also its sample_id on the wire."""
    return sample_id if not repeat else f"{sample_id}/{repeat}"


def latest_scores(records: Iterable[dict]) -> dict[str, dict]:
    """The last line per (sample, repeat), by score_key; lines without "repeat" are repeat 0."""
    out: dict[str, dict] = {}
    for record in records:
        if "id" in record:
            out[score_key(record["id"], record.get("repeat", 0))] = record
    return out


def combine_repeats(lines: list[dict]) -> dict:
    """One record for a sample's score lines (one per repeat). A single line without a repeat is
    returned as it is. Otherwise the record is the first OK repeat's line with `score`,
    `expected_score` and `sub_scores` replaced by their means over the OK repeats, plus
    `repeat_scores` (each repeat's score, None where it failed), `repeat_statuses` and `score_sd`
    (sample standard deviation over the OK repeats). With no OK repeat it is the first repeat's
    failure line (with the same lists)."""
    lines = sorted(lines, key=lambda r: r.get("repeat", 0))
    if len(lines) == 1 and "repeat" not in lines[0]:
        return lines[0]
    ok = [r for r in lines if r.get("status") == SCORE_OK and r.get("score") is not None]
    out = dict(ok[0] if ok else lines[0])
    out["repeat_scores"] = [float(r["score"]) if r in ok else None for r in lines]
    out["repeat_statuses"] = [r.get("status") for r in lines]
    if ok:
        values = [float(r["score"]) for r in ok]
        out["score"] = _mean(values)
        out["score_sd"] = (math.sqrt(math.fsum((v - out["score"]) ** 2 for v in values) / (len(values) - 1))
                           if len(values) > 1 else None)
        out["expected_score"] = _mean([float(r["expected_score"]) for r in ok if r.get("expected_score") is not None])
        names = dict.fromkeys(k for r in ok for k in (r.get("sub_scores") or {}))
        out["sub_scores"] = {k: _mean([float(r["sub_scores"][k]) for r in ok if k in (r.get("sub_scores") or {})])
                             for k in names}
    return out


def made_for(record: dict, sample: Sample) -> bool:
    """False when an edits.jsonl line was made for another instruction of this id (the benchmark
    was changed between sessions): its image shows the old instruction, so the sample is redone."""
    return record.get("instruction", sample.instruction) == sample.instruction


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_json_atomic(path: Path, obj) -> None:
    write_atomic(path, (json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False) + "\n").encode("utf-8"))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Score statuses as written to scores.jsonl: editfleet_common.statuses (a judge ERROR may be transient
# and is retried on the next run; the others are final).
SCORE_OK = statuses.OK
SCORE_REFUSED = statuses.REFUSED  # the judge (an API model or its content filter) refused: a score failure, final
FINAL_SCORE_STATUSES = statuses.FINAL


class RunDir:
    def __init__(self, path: str | Path, *, edits_from: Path | None = None):
        self.path = Path(path)
        # A re-judge directory reads the edits of the run it re-judges.
        self.edits_root = Path(edits_from) if edits_from else self.path
        self.edits = JsonlStore(self.edits_root / "edits.jsonl")
        self.scores = JsonlStore(self.path / "scores.jsonl")
        self.manifest_path = self.path / "manifest.json"
        self.summary_path = self.path / "summary.json"
        self.report_path = self.path / "report.html"
        self.logs = self.path / "logs"

    def create(self) -> "RunDir":
        self.path.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        return self

    # -- edits ---------------------------------------------------------------------------------
    def edit_relpath(self, sample: Sample) -> str:
        return f"edits/{safe_path_component(sample.category)}/{sample.id}.png"

    def edit_path(self, sample: Sample) -> Path:
        return self.edits_root / self.edit_relpath(sample)

    def save_edit(self, sample: Sample, png: bytes, record: dict) -> dict:
        """Write the image atomically, then append its line; returns the line written."""
        write_atomic(self.edit_path(sample), png)
        line = {
            **record,
            "id": sample.id,
            "category": sample.category,
            "status": "ok",
            "path": self.edit_relpath(sample),
            "sha256": sha256_hex(png),
        }
        self.edits.append(line)
        return line

    def record_edit_failure(self, sample: Sample, error: str, *, final: bool, **extra) -> dict:
        line = {**extra, "id": sample.id, "category": sample.category, "instruction": sample.instruction,
                "status": "failed", "error": error, "final": final}
        self.edits.append(line)
        return line

    def edit_state(self, samples: list[Sample], *, retry_failed: bool = False) -> tuple[dict, dict]:
        """(done, failed): the valid edit line per finished sample, and final failures to keep.

        An edit counts as done only when its image exists and has the recorded sha256, and a line
        (edit or failure) counts only when it was made for the sample's current instruction (and, for a
        chain's turn, from the current edit of the turn before: chains.consistent).
        """
        latest = latest_by_id(self.edits.read())
        done, failed = {}, {}
        for sample in samples:
            record = latest.get(sample.id)
            if record is None or not made_for(record, sample):
                continue
            if record.get("status") == "ok":
                path = self.edit_path(sample)
                if path.is_file() and sha256_hex(path.read_bytes()) == record.get("sha256"):
                    done[sample.id] = record
            elif record.get("final") and not retry_failed:
                failed[sample.id] = record
        chains.consistent(samples, done, failed)  # a chain's turn made from another input than its input's edit: redone
        return done, failed

    # -- scores --------------------------------------------------------------------------------
    def score_state(self, done_edits: dict, *, retry_failed: bool = False, repeats: int = 1) -> dict:
        """The score line per score_key (sample, repeat) that need not be judged again: final, and
        of the current edit. With repeats=1 the keys are the sample ids."""
        latest = latest_scores(self.scores.read())
        keep = {}
        for sample_id, edit in done_edits.items():
            for repeat in range(repeats):
                key = score_key(sample_id, repeat)
                record = latest.get(key)
                if record is None or record.get("edit_sha256") != edit.get("sha256"):
                    continue
                status = record.get("status")
                if status == SCORE_OK or (status in FINAL_SCORE_STATUSES and not retry_failed):
                    keep[key] = record
        return keep

    def current_scores(self, done_edits: dict) -> dict:
        """One record per sample whose current edit was judged: its line, or its repeats combined
        (combine_repeats)."""
        by_sample: dict[str, list[dict]] = {}
        for record in latest_scores(self.scores.read()).values():
            edit = done_edits.get(record["id"])
            if edit is not None and record.get("edit_sha256") == edit.get("sha256"):
                by_sample.setdefault(record["id"], []).append(record)
        return {sample_id: combine_repeats(lines) for sample_id, lines in by_sample.items()}

    # -- manifest ------------------------------------------------------------------------------
    def read_manifest(self) -> dict | None:
        if not self.manifest_path.exists():
            return None
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ResultsError(f"{self.manifest_path}: unreadable ({exc})") from None

    def write_manifest(self, manifest: dict) -> None:
        # the one way a manifest reaches disk: every URL in it redacted (editfleet_common/redact.py)
        write_json_atomic(self.manifest_path, redact_json(manifest))


# -- summary -----------------------------------------------------------------------------------
@dataclass
class _Stats:
    samples: int = 0
    edited: int = 0
    edit_failures: int = 0
    scored: int = 0
    score_failures: int = 0
    refused: int = 0                # of the score failures, refusals (REFUSED)
    pending: int = 0

    def as_dict(self, values: list[float], expected: list[float], subs: dict[str, list[float]]) -> dict:
        return {
            "samples": self.samples,
            "edited": self.edited,
            "edit_failures": self.edit_failures,
            "scored": self.scored,
            "score_failures": self.score_failures,
            "refused": self.refused,
            "pending": self.pending,
            "mean": _mean(values),
            "min": min(values) if values else None,
            "max": max(values) if values else None,
            "expected_mean": _mean(expected),
            # mean of each sub-score (VIEScore's SC, PQ, ...) over the OK scores that have it
            "sub_score_means": {name: _mean(v) for name, v in subs.items()},
        }


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def sample_value(edit: dict | None, score: dict | None, failures_as: str = "exclude") -> float | None:
    """What one sample adds to its category's mean, by the rule of `summarize`: its OK score;
    a failed edit or a score that is not OK adds 0.0 with failures_as="zero", nothing otherwise;
    a sample not finished yet adds nothing."""
    zero = 0.0 if failures_as == "zero" else None
    if edit is not None and edit.get("status") == "failed":
        return zero
    if score is None:
        return None
    if score.get("status") == SCORE_OK and score.get("score") is not None:
        return float(score["score"])
    return zero


def summarize(samples: list[Sample], edits: dict, scores: dict, *, failures_as: str = "exclude",
              headline: str = "micro_mean") -> dict:
    """Statistics over the latest edit and score line per sample.

    A sample is an edit failure (failed edit line), a score failure (score line not OK), scored (OK),
    or pending (neither: the run has not finished it); `refused` counts the score failures that were
    refusals (REFUSED: an API judge or its content filter said no). Means are over OK scores; with
    failures_as="zero", edit and score failures count as 0.0 instead of being left out.
    `macro_mean` is the mean of the category means; `micro_mean` pools every sample; `headline`
    names the one the benchmark's own report gives (GEdit-Bench: macro, the seed: micro).
    """
    if failures_as not in ("exclude", "zero"):
        raise ValueError(f"failures_as must be 'exclude' or 'zero', got {failures_as!r}")
    if headline not in ("micro_mean", "macro_mean"):
        raise ValueError(f"headline must be 'micro_mean' or 'macro_mean', got {headline!r}")
    categories: dict[str, tuple[_Stats, list[float], list[float], dict[str, list[float]]]] = {}
    for sample in samples:
        stats, values, expected, subs = categories.setdefault(sample.category, (_Stats(), [], [], {}))
        stats.samples += 1
        edit = edits.get(sample.id)
        score = scores.get(sample.id)
        if edit is not None and edit.get("status") == "ok":
            stats.edited += 1
        if edit is not None and edit.get("status") == "failed":
            stats.edit_failures += 1
            if failures_as == "zero":
                values.append(0.0)
        elif score is None:
            stats.pending += 1
        elif score.get("status") == SCORE_OK and score.get("score") is not None:
            stats.scored += 1
            values.append(float(score["score"]))
            for name, value in (score.get("sub_scores") or {}).items():
                if value is not None:
                    subs.setdefault(name, []).append(float(value))
        else:
            stats.score_failures += 1
            stats.refused += score.get("status") == SCORE_REFUSED
            if failures_as == "zero":
                values.append(0.0)
        if score is not None and score.get("expected_score") is not None:
            expected.append(float(score["expected_score"]))

    per_category = {name: s.as_dict(v, e, sub) for name, (s, v, e, sub) in categories.items()}
    all_values = [v for _, values, _, _ in categories.values() for v in values]
    all_expected = [v for _, _, expected, _ in categories.values() for v in expected]
    all_subs: dict[str, list[float]] = {}
    for *_, subs in categories.values():
        for name, v in subs.items():
            all_subs.setdefault(name, []).extend(v)
    category_means = [c["mean"] for c in per_category.values() if c["mean"] is not None]
    totals = _Stats()
    for s, *_ in categories.values():
        for field in ("samples", "edited", "edit_failures", "scored", "score_failures", "refused", "pending"):
            setattr(totals, field, getattr(totals, field) + getattr(s, field))
    overall = totals.as_dict(all_values, all_expected, all_subs)
    return {
        "failures_as": failures_as,
        "headline": headline,
        **overall,
        "micro_mean": overall["mean"],
        "macro_mean": _mean(category_means),
        "complete": totals.pending == 0,
        "judge_tokens": judge_tokens(scores),
        "categories": per_category,
    }


def judge_tokens(scores: dict) -> dict:
    """Tokens an API judge reported for these score lines (0 for a local judge)."""
    return {"prompt": sum(int(r.get("prompt_tokens") or 0) for r in scores.values()),
            "completion": sum(int(r.get("completion_tokens") or 0) for r in scores.values())}
