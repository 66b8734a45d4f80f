"""`orchestrator compare RUN_DIR... --output DIR`: several runs of one benchmark and judge protocol
side by side, with the uncertainty of every number.

For each category and overall (micro and macro; the suite's headline first), each run's mean with
a 95% percentile-bootstrap interval over samples, the paired difference from a baseline run (over
the samples both have a value for) with its interval, scored/failed counts and ranks. Runs whose
edits are the same images (re-judgements of one run) are judges of the same edits: their
agreement is the rank correlation (Spearman, Kendall tau-b) of their scores and the per-sample
spread. A run judged with `score --repeats K` also shows its repeats' spread. What the runs were run
with (settings_table: editor, seed, steps, guidance, size, judge, protocol, ... from each manifest)
says how they differ; runs are labelled by the editor their services reported, then by what differs.

Ranks follow the direction the judge protocol declares (score_direction.py): a run's score is its
protocol's headline, higher taken as better unless the protocol says `better: lower` (MagicBrush's L1:
the lowest mean ranks first). A suite whose numbers are means over separate sample sets (its numbers
module's `scopes`: MagicBrush's single-turn all-turn and multi-turn final-turn settings, Emu Edit's
splits) is also compared as its numbers are: per scope and per metric (each sub-score, with its own
direction), never pooled; the pooled overall rows are still computed (compare.json `overall`) but the
terminal and the page lead with the scopes and say the pool is not one of the suite's numbers.

The data lives here; compare_page.py renders it (compare.html); compare.json and compare.csv hold
the same numbers.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from editfleet_common import statuses

from suites.shared.reference_metrics import values as metric_values

from . import score_direction, stats
from .benchmark import BenchmarkError, Sample, headline as suite_headline, suite_of
from .html_parts import run_settings
from .results import RunDir, ResultsError, sample_value, summarize, write_atomic, write_json_atomic


class CompareError(Exception):
    """Runs that cannot be compared (named), or a bad argument."""


@dataclass
class LoadedRun:
    label: str
    path: Path
    manifest: dict
    run_dir: RunDir
    samples: list[Sample]
    edits: dict
    scores: dict
    summary: dict
    failures_as: str
    values: dict[str, float | None] = field(default_factory=dict)  # per sample, as the summary's means count it
    directions: score_direction.Directions = field(default_factory=score_direction.Directions)

    @property
    def editor(self) -> str:
        """The editor model its services reported (the manifest's editor block), else the config's."""
        reported = ((self.manifest.get("editor") or {}).get("model") or {}).get("model")
        return reported or (self.manifest.get("config") or {}).get("editor", {}).get("model") or ""

    @property
    def judge(self) -> str:
        """The judge model its services reported (the manifest's judge block), else the config's."""
        reported = ((self.manifest.get("judge") or {}).get("model") or {}).get("model")
        return reported or (self.manifest.get("config") or {}).get("judge", {}).get("model") or ""

    @property
    def settings(self) -> dict[str, str]:
        """What the run was run with, as text (html_parts.run_settings), and how its means count failures."""
        rejudge_of = self.manifest.get("rejudge_of")
        return {**run_settings(self.manifest), "failures in the means": self.failures_as,
                "edits from": f"{rejudge_of} (re-judged here)" if rejudge_of else "this run"}

    @property
    def protocol(self) -> dict:
        return ((self.manifest.get("judge") or {}).get("protocol") or {})

    def describe(self) -> dict:
        return {"label": self.label, "path": str(self.path), "editor": self.editor,
                "editor_hash": ((self.manifest.get("editor") or {}).get("model") or {}).get("content_hash"),
                "judge": self.judge,
                "judge_hash": (((self.manifest.get("judge") or {}).get("model")) or {}).get("content_hash"),
                "protocol": self.protocol.get("name"), "protocol_sha256": self.protocol.get("sha256"),
                "benchmark": (self.manifest.get("benchmark") or {}).get("path"),
                "benchmark_sha256": (self.manifest.get("benchmark") or {}).get("sha256"),
                "rejudge_of": self.manifest.get("rejudge_of"), "failures_as": self.failures_as,
                "git": (self.manifest.get("git") or {}).get("commit")}


def load_run(path: Path) -> LoadedRun:
    from .run import RunError, config_from_run_dir, current_results, load_samples, samples_from_records

    path = Path(path)
    if not path.is_dir():
        raise CompareError(f"{path}: not a folder (give the output dirs of `orchestrator run` or `score`)")
    try:
        config, manifest = config_from_run_dir(path)
    except RunError as exc:
        raise CompareError(str(exc)) from None
    edits_from = Path(manifest["rejudge_of"]) if manifest.get("rejudge_of") else None
    run_dir = RunDir(path, edits_from=edits_from)
    try:
        samples = load_samples(config).samples
    except (BenchmarkError, RunError):  # the benchmark moved: compare what the run recorded
        samples = samples_from_records(run_dir)
    edits, scores = current_results(run_dir, samples)
    failures_as = config.judge.failures
    summary = summarize(samples, edits, scores, failures_as=failures_as,
                        headline=suite_headline((manifest.get("benchmark") or {}).get("format")))
    run = LoadedRun(label="", path=path, manifest=manifest, run_dir=run_dir, samples=samples, edits=edits,
                    scores=scores, summary=summary, failures_as=failures_as,
                    directions=score_direction.of_run(config, manifest))
    run.values = {s.id: sample_value(edits.get(s.id), scores.get(s.id), failures_as) for s in samples}
    return run


# -- what must match ------------------------------------------------------------------------------
def differences(runs: list[LoadedRun]) -> list[str]:
    """Why these runs are not one benchmark under one protocol: one line per difference, naming
    the runs (empty: comparable)."""
    base, out = runs[0], []
    checks = (
        ("benchmark file (sha256)", lambda r: (r.manifest.get("benchmark") or {}).get("sha256")),
        ("benchmark format", lambda r: (r.manifest.get("benchmark") or {}).get("format")),
        ("judge protocol", lambda r: r.protocol.get("name")),
        ("judge protocol text (sha256)", lambda r: r.protocol.get("sha256")),
        ("failures in the means (judge.failures)", lambda r: r.failures_as),
    )
    for what, get in checks:
        for run in runs[1:]:
            if get(run) != get(base):
                out.append(f"{what}: {base.label} has {_recorded(get(base))}, {run.label} has {_recorded(get(run))}")
    base_ids = {s.id for s in base.samples}
    for run in runs[1:]:
        ids = {s.id for s in run.samples}
        if ids != base_ids:
            only_base, only_run = sorted(base_ids - ids), sorted(ids - base_ids)
            out.append(f"samples: {len(only_base)} only in {base.label}{_examples(only_base)}, "
                       f"{len(only_run)} only in {run.label}{_examples(only_run)}")
    return out


# settings that say how the runs differ, in this order (then any other recorded setting)
SETTING_ORDER = ("editor", "editor hash", "seed", "steps", "guidance", "negative prompt", "size", "dtype", "load format",
                 "speed mode", "threads", "LoRAs", "scheduler", "extras", "edits from", "judge", "judge hash", "protocol",
                 "protocol text", "judgements per edit", "failures in the means")


def settings_table(runs: list[LoadedRun]) -> dict:
    """Every recorded setting of every run: {"differ": [settings whose text differs between the runs],
    "same": {setting: text shared by every run}, "rows": [{"setting", "differs", "values": {label: text}}]}.
    A run without a setting that others record reads "not recorded"."""
    texts = {run.label: run.settings for run in runs}
    names = [n for n in SETTING_ORDER if any(n in t for t in texts.values())]
    names += [n for t in texts.values() for n in t if n not in names]
    rows = []
    for name in names:
        values = {label: t.get(name, "not recorded") for label, t in texts.items()}
        rows.append({"setting": name, "differs": len(set(values.values())) > 1, "values": values})
    return {"differ": [r["setting"] for r in rows if r["differs"]],
            "same": {r["setting"]: next(iter(r["values"].values())) for r in rows if not r["differs"] and r["values"]},
            "rows": rows}


def _recorded(value) -> str:
    return "none recorded" if value is None else repr(value)


def _examples(ids: list[str]) -> str:
    return f" (e.g. {', '.join(ids[:3])})" if ids else ""


def assign_labels(runs: list[LoadedRun], labels: list[str]) -> None:
    """Given labels, else the editor model's name; where two runs would share one, the judge's name
    is added, then the folder's."""
    if labels:
        if len(labels) != len(runs):
            raise CompareError(f"--label given {len(labels)} time(s) for {len(runs)} run(s): give one per run or none")
        if len(set(labels)) != len(labels):
            raise CompareError("--label: labels must differ")
        for run, label in zip(runs, labels):
            run.label = label
        return
    def edit_settings(run: LoadedRun, group: list[LoadedRun]) -> str:
        """The edit settings in which `run` differs from the others of its group: "seed 1, steps 20"."""
        keys = [k for k in SETTING_ORDER[1:SETTING_ORDER.index("edits from")]
                if len({g.settings.get(k) for g in group}) > 1 and k in run.settings]
        shown = ", ".join(f"{k} {run.settings[k].split(' (')[0]}" for k in keys if k != "editor hash")
        return f"{Path(run.editor).name} · {shown}" if shown else f"{Path(run.editor).name} · {run.path.name}"

    candidates = [
        lambda r, group: Path(r.editor).name or r.path.name,
        lambda r, group: f"{Path(r.editor).name} · {Path(r.judge).name or 'judge'} {r.protocol.get('name') or ''}".strip(),
        edit_settings,
        lambda r, group: f"{Path(r.editor).name} · {r.path.name}",
    ]
    chosen = [candidates[0](r, runs) for r in runs]
    for better in candidates[1:]:
        clashing = {c for c in chosen if chosen.count(c) > 1}
        chosen = [better(r, [o for o, oc in zip(runs, chosen) if oc == c]) if c in clashing else c
                  for r, c in zip(runs, chosen)]
    seen: dict[str, int] = {}
    for run, label in zip(runs, chosen):
        seen[label] = seen.get(label, 0) + 1
        run.label = label if chosen.count(label) == 1 else f"{label} #{seen[label]}"


def pick_baseline(runs: list[LoadedRun], baseline: str | None) -> LoadedRun:
    if baseline is None:
        return runs[0]
    for run in runs:
        if baseline == run.label or Path(baseline).resolve() == run.path.resolve():
            return run
    if baseline.isdigit() and 1 <= int(baseline) <= len(runs):
        return runs[int(baseline) - 1]
    raise CompareError(f"--baseline {baseline!r}: no such run (give a label, a RUN_DIR or a position 1..{len(runs)}; "
                       f"labels: {', '.join(r.label for r in runs)})")


# -- numbers ------------------------------------------------------------------------------------
def _category_values(run: LoadedRun) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for sample in run.samples:
        value = run.values.get(sample.id)
        out.setdefault(sample.category, {})
        if value is not None:
            out[sample.category][sample.id] = value
    return out


def same_edits(a: LoadedRun, b: LoadedRun) -> bool:
    """Both judged the very same images: every sample edited in either has the same image sha256
    in both (re-judgements of one run, or byte-identical runs)."""
    ids = {i for i, r in a.edits.items() if r.get("status") == "ok"} | {i for i, r in b.edits.items() if r.get("status") == "ok"}
    return bool(ids) and all((a.edits.get(i) or {}).get("sha256") == (b.edits.get(i) or {}).get("sha256") for i in ids)


def edit_groups(runs: list[LoadedRun]) -> list[list[LoadedRun]]:
    """Runs that judged the very same edits, in groups of two or more (in the order given)."""
    groups: list[list[LoadedRun]] = []
    for run in runs:
        for group in groups:
            if same_edits(group[0], run):
                group.append(run)
                break
        else:
            groups.append([run])
    return [g for g in groups if len(g) > 1]


def _ok_scores(run: LoadedRun) -> dict[str, float]:
    return {i: float(s["score"]) for i, s in run.scores.items() if s.get("status") == statuses.OK and s.get("score") is not None}


def agreement(a: dict[str, float], b: dict[str, float], ids: list[str]) -> dict:
    common = [i for i in ids if i in a and i in b]
    x, y = [a[i] for i in common], [b[i] for i in common]
    diffs = [abs(p - q) for p, q in zip(x, y)]
    return {"n": len(common), "spearman": stats.spearman(x, y), "kendall": stats.kendall_tau_b(x, y),
            "mean_abs_diff": math.fsum(diffs) / len(diffs) if diffs else None,
            "max_abs_diff": max(diffs) if diffs else None}


def build(runs: list[LoadedRun], baseline: LoadedRun, *, resamples: int = stats.RESAMPLES, seed: int = stats.SEED,
          level: float = stats.LEVEL, differ: list[str] | None = None) -> dict:
    boot = dict(seed=seed, resamples=resamples, level=level)
    values = {r.label: _category_values(r) for r in runs}
    categories = list(dict.fromkeys(s.category for r in [baseline, *runs] for s in r.samples))
    headline = baseline.summary.get("headline", "micro_mean")
    directions = baseline.directions
    higher = directions.score.higher
    out: dict = {
        "editfleet_compare": 1,
        "baseline": baseline.label,
        "headline": headline,
        "score": directions.describe(),  # what a run's score is and which way it is better (ranks follow it)
        "failures_as": baseline.failures_as,
        "bootstrap": {**boot, "method": "percentile bootstrap over samples (macro: stratified by category)"},
        "differences_allowed": differ or [],
        "runs": [{**r.describe(), "baseline": r is baseline} for r in runs],
        "settings": settings_table(runs),
        "categories": {},
        "overall": {},
    }

    def paired(run: LoadedRun, cats: list[str]) -> dict[str, list[float]]:
        diffs = {}
        for c in cats:
            mine, theirs = values[run.label].get(c, {}), values[baseline.label].get(c, {})
            diffs[c] = [mine[i] - theirs[i] for i in mine if i in theirs]
        return diffs

    for c in categories:
        rows = {}
        for run in runs:
            counts = run.summary["categories"].get(c) or {}
            ci = stats.bootstrap_mean({c: list(values[run.label].get(c, {}).values())}, key=f"{run.label}/{c}", **boot)
            row = {"samples": counts.get("samples", 0), "scored": counts.get("scored", 0),
                   "failed": counts.get("edit_failures", 0) + counts.get("score_failures", 0),
                   "pending": counts.get("pending", 0), **ci}
            if run is not baseline:
                row["diff"] = stats.bootstrap_mean(paired(run, [c]), key=f"diff/{run.label}/{c}", **boot)
            rows[run.label] = row
        for label, rank in stats.competition_ranks({k: v["mean"] for k, v in rows.items()},
                                                   higher_is_better=higher).items():
            rows[label]["rank"] = rank
        out["categories"][c] = rows

    for scope, macro in (("micro_mean", False), ("macro_mean", True)):
        rows = {}
        for run in runs:
            groups = {c: list(values[run.label].get(c, {}).values()) for c in categories}
            s = run.summary
            row = {"samples": s["samples"], "scored": s["scored"], "failed": s["edit_failures"] + s["score_failures"],
                   "pending": s["pending"], **stats.bootstrap_mean(groups, macro=macro, key=f"{run.label}/{scope}", **boot)}
            if run is not baseline:
                row["diff"] = stats.bootstrap_mean(paired(run, categories), macro=macro, key=f"diff/{run.label}/{scope}", **boot)
            rows[run.label] = row
        for label, rank in stats.competition_ranks({k: v["mean"] for k, v in rows.items()},
                                                   higher_is_better=higher).items():
            rows[label]["rank"] = rank
        out["overall"][scope] = rows
    out["scopes"] = scope_tables(runs, baseline, boot)

    # Judges of the same edits: each group's runs against its first (the baseline's group first).
    groups = edit_groups([baseline, *[r for r in runs if r is not baseline]])
    out["judge_agreement"] = []
    for head, *others in groups:
        ids = [s.id for s in head.samples]
        head_scores = _ok_scores(head)
        for run in others:
            mine = _ok_scores(run)
            out["judge_agreement"].append({
                "judge": run.label, "against": head.label, **agreement(mine, head_scores, ids),
                "categories": {c: agreement(mine, head_scores, [s.id for s in head.samples if s.category == c])
                               for c in categories}})
    out["same_edits"] = [[r.label for r in group] for group in groups]
    judges = groups[0] if groups else []

    out["repeats"] = {}
    for run in runs:
        repeated = {i: s["repeat_scores"] for i, s in run.scores.items() if len(s.get("repeat_scores") or []) > 1}
        if not repeated:
            continue
        sds = [s["score_sd"] for s in run.scores.values() if s.get("score_sd") is not None]
        first = {i: r[0] for i, r in repeated.items() if r[0] is not None}
        second = {i: r[1] for i, r in repeated.items() if r[1] is not None}
        out["repeats"][run.label] = {
            "samples": len(repeated), "repeats": max(len(r) for r in repeated.values()),
            "mean_sd": math.fsum(sds) / len(sds) if sds else None, "max_sd": max(sds) if sds else None,
            "first_vs_second": agreement(first, second, sorted(repeated)),
        }

    out["samples"] = _sample_rows(runs, baseline, judges)
    return out


def scope_tables(runs: list[LoadedRun], baseline: LoadedRun, boot: dict) -> dict:
    """Per scope of the suite's numbers (its numbers module's `scopes`; {} for a suite without), per
    metric (each sub-score the protocol's questions give, in their order): each run's mean over the
    scope's samples with its interval, the paired difference from the baseline, and ranks by that
    metric's own direction. A sample's values are its score line's, as the suite's numbers read them
    (suites/shared/reference_metrics.values); failures are left out and counted."""
    suite = suite_of((baseline.manifest.get("benchmark") or {}).get("format"))
    scopes = getattr(suite.numbers, "scopes", None) if suite is not None and suite.numbers is not None else None
    if scopes is None or not baseline.directions.metrics:
        return {}
    per_run = {r.label: scopes(r.samples) for r in runs}
    out: dict = {}
    for name, samples in scopes(baseline.samples).items():
        metrics: dict = {}
        for metric, direction in baseline.directions.metrics.items():
            found = {r.label: {s.id: v[metric] for s in per_run[r.label].get(name, [])
                               if metric in (v := metric_values(r.scores.get(s.id)))} for r in runs}
            if not any(found.values()):
                continue  # a metric this scope's samples are not asked (MagicBrush without captions: no CLIP-T)
            rows = {}
            for run in runs:
                mine, in_scope = found[run.label], per_run[run.label].get(name, [])
                row = {"samples": len(in_scope), "scored": len(mine), "failed": _failed(run, in_scope),
                       **stats.bootstrap_mean({name: list(mine.values())}, key=f"{run.label}/{name}/{metric}", **boot)}
                if run is not baseline:
                    theirs = found[baseline.label]
                    row["diff"] = stats.bootstrap_mean({name: [v - theirs[i] for i, v in mine.items() if i in theirs]},
                                                       key=f"diff/{run.label}/{name}/{metric}", **boot)
                rows[run.label] = row
            for label, rank in stats.competition_ranks({k: v["mean"] for k, v in rows.items()},
                                                       higher_is_better=direction.higher).items():
                rows[label]["rank"] = rank
            metrics[metric] = {**direction.as_dict(), "rows": rows}
        out[name] = {"samples": len(samples), "metrics": metrics}
    return out


def _failed(run: LoadedRun, samples: list[Sample]) -> int:
    """The scope's samples whose edit or score failed (no value, or a score line that is not OK)."""
    n = 0
    for sample in samples:
        edit, score = run.edits.get(sample.id) or {}, run.scores.get(sample.id) or {}
        n += edit.get("status") == "failed" or (bool(score) and score.get("status") != statuses.OK)
    return n


def _sample_rows(runs: list[LoadedRun], baseline: LoadedRun, judges: list[LoadedRun]) -> list[dict]:
    order = list(dict.fromkeys(s.id for r in [baseline, *runs] for s in r.samples))
    by_id = {s.id: s for r in reversed([baseline, *runs]) for s in r.samples}
    rows = []
    for sample_id in order:
        sample = by_id[sample_id]
        cells = {}
        for run in runs:
            edit, score = run.edits.get(sample_id) or {}, run.scores.get(sample_id) or {}
            cells[run.label] = {
                "edit_status": edit.get("status"), "edit_sha256": edit.get("sha256"), "edit_error": edit.get("error"),
                "status": score.get("status"), "score": score.get("score"), "value": run.values.get(sample_id),
                "sub_scores": score.get("sub_scores") or {}, "repeat_scores": score.get("repeat_scores"),
                "response": score.get("response") or "", "error": score.get("error") or "",
            }
        judged = [cells[r.label]["score"] for r in judges if cells[r.label]["status"] == statuses.OK]
        rows.append({"id": sample_id, "category": sample.category, "instruction": sample.instruction,
                     "spread": (max(judged) - min(judged)) if len(judged) > 1 else None, "runs": cells})
    return rows


# -- files --------------------------------------------------------------------------------------
CSV_FIELDS = ("scope", "category", "label", "baseline", "samples", "scored", "failed", "pending", "mean", "ci_lo",
              "ci_hi", "n", "diff", "diff_lo", "diff_hi", "n_paired", "rank")


CSV_EXTRA = ("metric", "better")  # which number a row is (the score, or a scope's metric) and its direction


def to_csv(data: dict) -> str:
    """One row per run per table: categories, overall (micro, macro), then each scope's metrics
    (scope "scope:<name>", category empty, metric its name)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow((*CSV_FIELDS, *CSV_EXTRA))
    score = data.get("score") or {}
    tables = [("category", c, rows, score.get("label", "score"), score.get("better", "higher"))
              for c, rows in data["categories"].items()]
    tables += [(scope, "", rows, score.get("label", "score"), score.get("better", "higher"))
               for scope, rows in data["overall"].items()]
    tables += [(f"scope:{name}", "", m["rows"], metric, m["better"])
               for name, table in (data.get("scopes") or {}).items() for metric, m in table["metrics"].items()]
    for scope, category, rows, metric, better in tables:
        for label, r in rows.items():
            d = r.get("diff") or {}
            writer.writerow([scope, category, label, label == data["baseline"], r["samples"], r["scored"], r["failed"],
                             r.get("pending", ""), r["mean"], r["lo"], r["hi"], r["n"], d.get("mean"), d.get("lo"),
                             d.get("hi"), d.get("n"), r["rank"], metric, better])
    return buf.getvalue()


def compare(paths: list[Path], output: Path, *, baseline: str | None = None, labels: list[str] = (),
            allow_different: bool = False, resamples: int = stats.RESAMPLES, seed: int = stats.SEED,
            warn=print) -> dict:
    if not paths:
        raise CompareError("give at least one RUN_DIR")
    resolved = [Path(p).resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise CompareError("a RUN_DIR is given twice")
    try:
        runs = [load_run(Path(p)) for p in paths]
    except ResultsError as exc:
        raise CompareError(str(exc)) from None
    assign_labels(runs, list(labels))
    base = pick_baseline(runs, baseline)
    differ = differences([base, *[r for r in runs if r is not base]])
    if differ and not allow_different:
        raise CompareError("these runs are not one benchmark under one judge protocol:\n  " + "\n  ".join(differ)
                           + "\n(--allow-different compares them anyway; differences are then listed in the page)")
    for line in differ:
        warn(f"warning: {line}")
    if base.failures_as == "zero" and not base.directions.score.higher:
        warn(f"warning: failures count as 0 (judge.failures zero) and {base.directions.score.shown} is better lower: "
             "a failure counts as the best value in the means and ranks (the suite's own numbers leave failures out)")
    if not base.directions.found:
        warn(f"warning: judge protocol {base.directions.protocol or '(none recorded)'!r} has no file here: its scores "
             "are ranked with higher taken as better")
    data = build(runs, base, resamples=resamples, seed=seed, differ=differ)
    from .compare_page import render

    output.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output / "compare.json", data)
    write_atomic(output / "compare.csv", to_csv(data).encode("utf-8"))
    write_atomic(output / "compare.html", render(data, runs, output).encode("utf-8"))
    return data


def overall_table(data: dict) -> str:
    """The terminal's view: the headline per run with its interval and the difference from the baseline
    (the score's name and direction above it); for a suite with scopes, each scope's metrics instead
    (scope_table), the pool across them being none of its numbers."""
    if data.get("scopes"):
        return "\n".join([*(scope_table(name, table, data["baseline"]) for name, table in data["scopes"].items()),
                          "  (every sample pooled across these is none of the suite's numbers: compare.json `overall` "
                          "and compare.html keep it, with the per-category ranks)"])
    from .ui import _display_width

    rows = data["overall"][data["headline"]]
    width = max([5] + [_display_width(label) for label in rows])
    scope = "macro" if data["headline"] == "macro_mean" else "micro"
    score = data.get("score") or {}
    lines = [f"  score: {score.get('shown', 'score ' + chr(0x2191))} ({score.get('better', 'higher')} is better; "
             "ranks follow it)",
             f"  {'run'.ljust(width)}  rank  {scope + ' mean':>10}  {'95% CI':>17}  {'vs baseline':>12}  {'95% CI':>17}  scored  failed"]
    for label, r in sorted(rows.items(), key=lambda kv: (kv[1]["rank"] is None, kv[1]["rank"] or 0)):
        ci = f"[{_f(r['lo'])}, {_f(r['hi'])}]"
        d = r.get("diff")
        diff = "baseline" if d is None else _f(d["mean"], "+.3f")
        dci = "" if d is None else f"[{_f(d['lo'], '+.3f')}, {_f(d['hi'], '+.3f')}]"
        pad = " " * (width - _display_width(label))
        lines.append(f"  {label}{pad}  {r['rank'] or '-':>4}  {_f(r['mean']):>10}  {ci:>17}  {diff:>12}  {dci:>17}  "
                     f"{r['scored']:6d}  {r['failed']:6d}")
    return "\n".join(lines)


def scope_table(name: str, table: dict, baseline: str) -> str:
    """One scope of the suite's numbers in the terminal: a row per run, per metric its mean and rank
    ("0.0834 #1"), the metric's name with its direction in the head."""
    from .ui import _display_width

    metrics = table["metrics"]
    labels = list(dict.fromkeys(label for m in metrics.values() for label in m["rows"]))
    width = max([5] + [_display_width(label) for label in labels])
    lines = [f"  {name} ({table['samples']} samples; ranks per metric, by its direction):",
             f"  {'run'.ljust(width)}" + "".join(f"  {m['shown']:>12}" for m in metrics.values()) + "  scored"]
    for label in labels:
        cells = []
        for m in metrics.values():
            r = m["rows"][label]
            cells.append(f"  {_f(r['mean'], '.4f') + ' #' + str(r['rank'] or '-'):>12}")
        scored = max(m["rows"][label]["scored"] for m in metrics.values())
        pad = " " * (width - _display_width(label))
        lines.append(f"  {label}{pad}" + "".join(cells) + f"  {scored:6d}" + ("  (baseline)" if label == baseline else ""))
    return "\n".join(lines)


def _f(value, spec=".3f") -> str:
    return format(value, spec) if value is not None else "n/a"
