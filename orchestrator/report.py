"""report.html: one self-contained page (thumbnails inline, charts inline SVG) with the
per-category table, the sub-score means, a score histogram per category and a grid of
source | edit | instruction | score | response for every sample. Each edit thumbnail links to the
full-size PNG by its path relative to the report."""

from __future__ import annotations

import json
import os

from editfleet_common import statuses
from suites.shared.protocol import ARROWS
from . import api_usage, suite_headline
from .benchmark import Sample
from .charts import histogram, nice_max
from .html_parts import CSS, e, num as _num, reply_block, run_settings, thumb as _thumb, url_path as _url_path
from .results import RunDir, write_atomic


def _source_cell(sample: Sample) -> str:
    """Every input image's thumbnail, in order (numbered when there are several)."""
    try:
        images = sample.source_images() if (sample.image_path or sample.image_bytes) else [None]
    except Exception:  # the benchmark moved since the run: the report still renders
        images = [None] * sample.input_count()
    if len(images) == 1:
        return _thumb(images[0])
    return "".join(f"<span class='muted'>{i}</span>{_thumb(data)}" for i, data in enumerate(images, 1))


def _git_state(git: dict) -> str:
    """The commit, and when the checkout differed from it, which paths did (as many as the manifest
    kept). Manifests written before the count and paths were recorded say only "dirty"."""
    text = e(git.get("commit") or "unknown commit")
    dirty = git.get("dirty")
    if dirty is None and "dirty" in git:
        return text + " (dirty: unknown, git status failed)"
    if not dirty:
        return text
    count = git.get("dirty_count")
    if count is None:
        return text + " (dirty)"
    # git status --porcelain lines: two status letters and a space, then the path ("old -> new" for renames)
    paths = [line[3:] if line[2:3] == " " else line for line in git.get("dirty_paths") or []]
    listed = [e(p) for p in paths]
    if paths and count > len(paths):
        listed.append(f"and {count - len(paths)} more")
    return text + f" (dirty: {count} changed path{'s' if count != 1 else ''}" + (" — " + ", ".join(listed) if listed else "") + ")"


EDIT_SETTINGS_SHOWN = (("steps", "steps"), ("guidance", "guidance"), ("negative prompt", "negative prompt"),
                      ("seed", "base seed"), ("size", "size"), ("dtype", "dtype"), ("speed mode", "speed mode"),
                      ("LoRAs", "LoRAs"), ("scheduler", "scheduler"), ("extras", "extras"))


def _edit_settings_text(settings: dict) -> str:
    """steps 30, guidance 4, negative prompt none, base seed 0, size 512x512, ... (what was recorded)."""
    return ", ".join(f"{name} {e(settings[key])}" for key, name in EDIT_SETTINGS_SHOWN if key in settings)


def _api_judge(api: dict | None, tokens: dict) -> str:
    """An API judge's endpoint, the model names the server answered with, fingerprints and tokens."""
    if not api:
        return ""
    served = ", ".join(api.get("served_models") or []) or "not reported"
    prints = ", ".join(api.get("system_fingerprints") or []) or "none"
    return (f"<br>API endpoint {e(api.get('endpoint_host', ''))}; model served as {e(served)}; "
            f"system_fingerprint {e(prints)}<br>tokens: {e(tokens.get('prompt', 0))} prompt + "
            f"{e(tokens.get('completion', 0))} completion")


def _api_editor(api: dict | None) -> str:
    """An API editor's row: the provider, the model as asked for and as answered, the run totals (requests,
    retries, refusals, usage, cost as reported) and whether "same seed, same edit" applies."""
    if not api:
        return ""
    return ("<tr><th>editor API</th><td>" + "<br>".join(e(line.strip()) for line in api_usage.console_lines(api))
            + "</td></tr>")


def _shown(summary: dict, sub_score: str | None = None) -> str:
    """A number's name with its direction, as the run's protocol declares it (summary.json `score`,
    score_direction.py): "L1 ↓"; "" for a judge's score (higher is better, as ever)."""
    score = summary.get("score") or {}
    if sub_score is None:
        return score.get("shown", "") if score.get("label", "score") != "score" or score.get("better") == "lower" else ""
    subs = score.get("sub_scores") or {}
    if sub_score in subs:
        return subs[sub_score]["shown"]
    question = subs.get(sub_score.split(".")[0])  # "<question>.<score>": its question's direction
    return f"{sub_score} {ARROWS[question['better']]}" if question else ""


def render(run_dir: RunDir, samples: list[Sample], edits: dict, scores: dict, summary: dict, manifest: dict) -> str:
    judge = manifest.get("judge") or {}
    settings = run_settings(manifest)
    shown = _shown(summary)
    metrics = shown != ""  # a score that is one metric (L1): four decimals, as the suite's tables
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>editfleet report</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>editfleet report: {e(run_dir.path.name)}</h1>",
        "<table>",
        f"<tr><th>benchmark</th><td>{e(manifest.get('benchmark', {}).get('path', ''))}</td></tr>",
        f"<tr><th>editor</th><td>{e(settings.get('editor', ''))} "
        f"<span class='muted'>{e((manifest.get('editor') or {}).get('model', {}).get('content_hash', ''))}</span><br>"
        + _edit_settings_text(settings) + "</td></tr>",
        f"<tr><th>judge</th><td>{e(settings.get('judge', ''))} "
        f"<span class='muted'>{e((judge.get('model') or {}).get('content_hash', ''))}</span><br>"
        f"protocol {e(judge.get('protocol', {}).get('name', ''))} "
        f"<span class='muted'>sha256 {e(judge.get('protocol', {}).get('sha256', ''))}</span>"
        + _api_judge(judge.get("api"), summary.get("judge_tokens") or {}) + "</td></tr>",
        _api_editor(summary.get("editor_api")),
        f"<tr><th>git</th><td>{_git_state(manifest.get('git') or {})}</td></tr>",
        "</table>",
        "<h2>Per category</h2>",
        "<table><tr><th>category</th><th>samples</th><th>scored</th><th>edit failures</th><th>score failures</th>"
        f"<th>refused</th><th>pending</th><th>mean{' ' + e(shown) if shown else ''}</th><th>min</th><th>max</th>"
        "<th>E[score]</th></tr>",
    ]
    rows = list(summary["categories"].items()) + [("all (micro)", summary)]
    for name, c in rows:
        parts.append(
            f"<tr><td>{e(name)}</td><td class='num'>{c['samples']}</td><td class='num'>{c['scored']}</td>"
            f"<td class='num'>{c['edit_failures']}</td><td class='num'>{c['score_failures']}</td>"
            f"<td class='num'>{c.get('refused', 0)}</td><td class='num'>{c['pending']}</td><td class='num'>{_num(c['mean'])}</td>"
            f"<td class='num'>{_num(c['min'])}</td><td class='num'>{_num(c['max'])}</td>"
            f"<td class='num'>{_num(c['expected_mean'])}</td></tr>"
        )
    parts.append(
        f"</table><p>Macro mean (mean of category means): <b>{_num(summary['macro_mean'])}</b> &nbsp; "
        f"Micro mean (every sample pooled): <b>{_num(summary['micro_mean'])}</b>"
        + (" &nbsp; (failures count as 0.0)" if summary.get("failures_as") == "zero" else
           " &nbsp; (failures left out of the means, counted above)")
        + "</p>"
    )
    parts.append(suite_headline.report_html(summary.get("suite"), summary.get("suite_absent")))
    parts.append(_sub_score_table(summary))
    parts.append(_histograms(samples, edits, scores))
    parts.append("<h2>Samples</h2><table class='grid'><tr><th>input(s)</th><th>edit</th><th>sample</th>"
                 "<th>score</th><th>response</th></tr>")
    for sample in samples:
        edit, score = edits.get(sample.id), scores.get(sample.id)
        if edit is not None and edit.get("status") == "ok":
            path = run_dir.edits_root / edit["path"]
            data = path.read_bytes() if path.is_file() else None
            link = _url_path(os.path.relpath(path, run_dir.path))
            edit_cell = f"<a href='{e(link)}'>{_thumb(data)}</a>"
        elif edit is not None:
            edit_cell = f"<span class='fail'>edit failed</span><pre>{e(edit.get('error', ''))}</pre>"
        else:
            edit_cell = "<span class='muted'>not edited yet</span>"
        if score is None:
            score_cell, response = "<span class='muted'>-</span>", ""
        elif score.get("status") == statuses.OK:
            score_cell = f"<b>{score['score']:.{4 if metrics else 2}f}</b>"
            response = f"<div class='reply'>{e(score.get('response', ''))}</div>"
        else:
            expected = score.get("expected_score")
            score_cell = (f"<span class='fail'>{e(score['status'])}</span>"
                          + (f"<br><span class='muted'>E {expected:.2f}</span>" if expected is not None else ""))
            # every reply the judge gave (each question's, and each re-ask's), in order: with several
            # questions the last one may be a reply that parsed, not the one that failed
            raws = [r for r in score.get("raw_responses") or [] if r]
            response = f"<pre>{e(score.get('error') or '')}</pre>" + "".join(
                reply_block(raw, css="muted", label="raw reply: " if len(raws) == 1 else f"raw reply {i} of {len(raws)}: ")
                for i, raw in enumerate(raws, 1))
        if score is not None and score.get("repeat_scores"):
            score_cell += ("<br><span class='muted'>repeats " + ", ".join(_num(v, ".1f") for v in score["repeat_scores"])
                           + (f"<br>sd {score['score_sd']:.2f}" if score.get("score_sd") is not None else "") + "</span>")
        if score is not None and score.get("sub_scores"):
            response += "<br><span class='muted'>" + e(", ".join(
                f"{k} {v:.{4 if metrics else 2}f}" for k, v in score["sub_scores"].items())) + "</span>"
        parts.append(
            f"<tr><td>{_source_cell(sample)}</td><td>{edit_cell}</td>"
            f"<td><b>{e(sample.id)}</b> <span class='muted'>{e(sample.category)}</span><br>{e(sample.instruction)}"
            + (f"<br><span class='muted'>extras {e(json.dumps(sample.edit_args, sort_keys=True))}</span>"
               if sample.edit_args else "") + "</td>"
            f"<td class='num'>{score_cell}</td><td>{response}</td></tr>"
        )
    parts.append("</table></body></html>\n")
    return "\n".join(parts)


def _sub_score_table(summary: dict) -> str:
    """Per category, the mean of each sub-score (VIEScore's SC, PQ, ...) over its OK scores."""
    rows = list(summary["categories"].items()) + [("all (micro)", summary)]
    names = list(dict.fromkeys(n for _, c in rows for n in c.get("sub_score_means") or {}))
    if not names:
        return ""
    out = ["<h2>Sub-scores</h2><table class='subscores'><tr><th>category</th>"
           + "".join(f"<th title='{e(n)}'>{e(_shown(summary, n) or n)}</th>" for n in names)
           + "</tr>"]
    for name, c in rows:
        means = c.get("sub_score_means") or {}
        out.append(f"<tr><td>{e(name)}</td>" + "".join(f"<td class='num'>{_num(means.get(n))}</td>" for n in names) + "</tr>")
    out.append("</table><p class='muted'>Means over each category's OK scores.</p>")
    return "".join(out)


def _histograms(samples: list[Sample], edits: dict, scores: dict) -> str:
    """One histogram of the OK scores per category (failures are counted in the table, not here)."""
    by_category: dict[str, list[float]] = {}
    for sample in samples:
        score = scores.get(sample.id)
        by_category.setdefault(sample.category, [])
        if score is not None and score.get("status") == statuses.OK and score.get("score") is not None:
            by_category[sample.category].append(float(score["score"]))
    top = nice_max(max((v for values in by_category.values() for v in values), default=None))
    charts = [f"<div class='chart'><h3>{e(name)} <span class='muted'>({len(values)} scored)</span></h3>"
              + histogram(f"{name}: scores", values, scale_max=top) + "</div>"
              for name, values in by_category.items()]
    return "<h2>Score histograms</h2><div class='charts'>" + "".join(charts) + "</div>"


def write_report(run_dir: RunDir, samples, edits, scores, summary, manifest) -> None:
    write_atomic(run_dir.report_path, render(run_dir, samples, edits, scores, summary, manifest).encode("utf-8"))


__all__ = ["write_report", "render"]
