"""report.html: one self-contained page (thumbnails inline) with the per-category table and a grid
of source | edit | instruction | score | response for every sample. Each edit thumbnail links to
the full-size PNG by its path relative to the report."""

from __future__ import annotations

import base64
import html
import io
import os


from editfleet_common.errors import InvalidInput
from editfleet_common.images import decode_image
from scorer_service import statuses

from . import suites
from .benchmarks import Sample
from .results import RunDir, write_atomic

THUMB = 192

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.grid td { max-width: 28em; }
.fail { color: #b00020; font-weight: bold; }
.muted { color: #777; }
img { display: block; }
pre { white-space: pre-wrap; margin: 0; font-size: 85%; }
"""


def _thumb(data: bytes | None) -> str:
    if not data:
        return '<span class="muted">unavailable</span>'
    try:
        img = decode_image(data)
    except InvalidInput as exc:
        return f'<span class="fail">{html.escape(str(exc))}</span>'
    img.thumbnail((THUMB, THUMB))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return f'<img alt="" src="data:image/jpeg;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _num(value, spec=".3f") -> str:
    return format(value, spec) if value is not None else "n/a"


def _url_path(relative: str) -> str:
    """A relative file path as an href: '%', '#' and '?' (legal in ids) escaped, the rest kept
    readable (non-ASCII category names included)."""
    return relative.replace("%", "%25").replace("#", "%23").replace("?", "%3F")


def _source_bytes(sample: Sample) -> bytes | None:
    try:
        return sample.source_bytes() if (sample.image_path or sample.image_bytes) else None
    except Exception:  # the benchmark moved since the run: the report still renders
        return None


def _git_state(git: dict) -> str:
    """The commit, and when the checkout differed from it, which paths did (as many as the manifest
    kept). Manifests written before the count and paths were recorded say only "dirty"."""
    text = html.escape(git.get("commit") or "unknown commit")
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
    listed = [html.escape(p) for p in paths]
    if paths and count > len(paths):
        listed.append(f"and {count - len(paths)} more")
    return text + f" (dirty: {count} changed path{'s' if count != 1 else ''}" + (" — " + ", ".join(listed) if listed else "") + ")"


def _api_judge(api: dict | None, tokens: dict) -> str:
    """An API judge's endpoint, the model names the server answered with, fingerprints and tokens."""
    if not api:
        return ""
    e = lambda text: html.escape(str(text))  # noqa: E731
    served = ", ".join(api.get("served_models") or []) or "not reported"
    prints = ", ".join(api.get("system_fingerprints") or []) or "none"
    return (f"<br>API endpoint {e(api.get('endpoint_host', ''))}; model served as {e(served)}; "
            f"system_fingerprint {e(prints)}<br>tokens: {e(tokens.get('prompt', 0))} prompt + "
            f"{e(tokens.get('completion', 0))} completion")


def render(run_dir: RunDir, samples: list[Sample], edits: dict, scores: dict, summary: dict, manifest: dict) -> str:
    e = lambda text: html.escape(str(text))  # noqa: E731
    cfg = manifest.get("config", {})
    editor_cfg, judge = cfg.get("editor", {}), manifest.get("judge") or {}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>editfleet report</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>editfleet report: {e(run_dir.path.name)}</h1>",
        "<table>",
        f"<tr><th>benchmark</th><td>{e(manifest.get('benchmark', {}).get('path', ''))}</td></tr>",
        f"<tr><th>editor</th><td>{e(editor_cfg.get('model'))} "
        f"<span class='muted'>{e((manifest.get('editor') or {}).get('model', {}).get('content_hash', ''))}</span><br>"
        f"steps {e(editor_cfg.get('steps') or 'default')}, guidance {e(editor_cfg.get('guidance') or 'default')}, "
        f"negative prompt {e(repr(editor_cfg.get('negative_prompt')))}, base seed {e(editor_cfg.get('seed'))}, "
        f"size {e(editor_cfg.get('width'))}x{e(editor_cfg.get('height'))}</td></tr>",
        f"<tr><th>judge</th><td>{e(cfg.get('judge', {}).get('model'))} "
        f"<span class='muted'>{e((judge.get('model') or {}).get('content_hash', ''))}</span><br>"
        f"protocol {e(judge.get('protocol', {}).get('name', ''))} "
        f"<span class='muted'>sha256 {e(judge.get('protocol', {}).get('sha256', ''))}</span>"
        + _api_judge(judge.get("api"), summary.get("judge_tokens") or {}) + "</td></tr>",
        f"<tr><th>git</th><td>{_git_state(manifest.get('git') or {})}</td></tr>",
        "</table>",
        "<h2>Per category</h2>",
        "<table><tr><th>category</th><th>samples</th><th>scored</th><th>edit failures</th><th>score failures</th>"
        "<th>refused</th><th>pending</th><th>mean</th><th>min</th><th>max</th><th>E[score]</th></tr>",
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
    parts.append(suites.report_html(summary.get("suite")))
    parts.append("<h2>Samples</h2><table class='grid'><tr><th>source</th><th>edit</th><th>sample</th>"
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
            score_cell, response = f"<b>{score['score']:.2f}</b>", e(score.get("response", ""))
        else:
            expected = score.get("expected_score")
            score_cell = (f"<span class='fail'>{e(score['status'])}</span>"
                          + (f"<br><span class='muted'>E {expected:.2f}</span>" if expected is not None else ""))
            raw = (score.get("raw_responses") or [""])[-1]
            response = (f"<pre>{e(score.get('error') or '')}</pre>"
                        + (f"<pre class='muted'>raw reply: {e(raw[:600])}</pre>" if raw else ""))
        if score is not None and score.get("sub_scores"):
            response += "<br><span class='muted'>" + e(", ".join(
                f"{k} {v:.2f}" for k, v in score["sub_scores"].items())) + "</span>"
        parts.append(
            f"<tr><td>{_thumb(_source_bytes(sample))}</td><td>{edit_cell}</td>"
            f"<td><b>{e(sample.id)}</b> <span class='muted'>{e(sample.category)}</span><br>{e(sample.instruction)}</td>"
            f"<td class='num'>{score_cell}</td><td>{response}</td></tr>"
        )
    parts.append("</table></body></html>\n")
    return "\n".join(parts)


def write_report(run_dir: RunDir, samples, edits, scores, summary, manifest) -> None:
    write_atomic(run_dir.report_path, render(run_dir, samples, edits, scores, summary, manifest).encode("utf-8"))


__all__ = ["write_report", "render"]
