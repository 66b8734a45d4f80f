"""compare.html: the data of compare.build() as one self-contained page: what differs between the
runs (the settings whose text differs, one row per run, then those they share), the runs, the headline
and per-category tables with intervals, a bar chart per category (inline SVG), judge agreement,
and a per-sample grid of every run's edit side by side, sortable (click a column head) and
filterable (text, category) by a small inline script. Nothing is fetched: thumbnails are inline
JPEG data; each links to its full-size PNG by a path relative to the page. Every label is whole in
the tables (long cells wrap) and in the charts (wrapped, or its end kept after "…" with the whole
on hover); the page fits a 1280 px window (tests/orchestrator/test_pages_browser.py)."""

from __future__ import annotations

import os
from pathlib import Path

from editfleet_common import statuses

from .charts import bar_chart, nice_max
from .html_parts import CSS, e, num, reply_block, short_hash, thumb, url_path

GRID_THUMB = 128

PAGE_CSS = CSS + """
.baseline { font-weight: bold; }
.warn { background: #fff4e5; border: 1px solid #f0b46b; padding: 0.5em 1em; }
.controls { margin: 1em 0; display: flex; gap: 1em; align-items: center; flex-wrap: wrap; }
#grid th.sortable { cursor: pointer; user-select: none; }
#grid th.sortable::after { content: " \\2195"; color: #aaa; }
#grid th[aria-sort="ascending"]::after { content: " \\2191"; color: #222; }
#grid th[aria-sort="descending"]::after { content: " \\2193"; color: #222; }
#grid td.cell { min-width: 5em; }
.grid-wrap { overflow-x: auto; }
#grid th.run { overflow-wrap: anywhere; }
#grid td.sample { min-width: 10em; }
#grid td.category { overflow-wrap: break-word; }
td.label { min-width: 10em; }
.differs td, .runs td { max-width: 32em; }
.hash { white-space: nowrap; }
.same { line-height: 1.6; }
.pos { color: #1b7a1b; } .neg { color: #b00020; }
"""

SCRIPT = """
(function () {
  var table = document.getElementById('grid');
  if (!table) return;
  var body = table.tBodies[0];
  var text = document.getElementById('filter'), cat = document.getElementById('category');
  var shown = document.getElementById('shown');
  function apply() {
    var q = text.value.trim().toLowerCase(), c = cat.value, n = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var ok = (!c || row.dataset.category === c) && (!q || row.dataset.text.indexOf(q) >= 0);
      row.hidden = !ok; if (ok) n++;
    });
    shown.textContent = n + ' of ' + body.rows.length + ' samples shown';
  }
  text.addEventListener('input', apply); cat.addEventListener('change', apply);
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    if (!th.classList.contains('sortable')) return;
    th.addEventListener('click', function () {
      var asc = th.getAttribute('aria-sort') !== 'ascending', numeric = th.dataset.type === 'num';
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
        if (numeric) {
          var missingX = x === '' || x === undefined, missingY = y === '' || y === undefined;
          if (missingX || missingY) return missingX - missingY;  // no value: last either way
          return asc ? x - y : y - x;
        }
        return asc ? x.localeCompare(y) : y.localeCompare(x);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  apply();
})();
"""


def _ci(r: dict | None, signed: bool = False) -> str:
    if not r or r.get("lo") is None:
        return "<span class='muted'>n/a</span>"
    spec = "+.3f" if signed else ".3f"
    return f"[{format(r['lo'], spec)}, {format(r['hi'], spec)}]"


def _diff(d: dict | None, higher: bool = True) -> str:
    """The difference from the baseline, green where its interval excludes 0 on the better side (above
    for a higher-is-better number, below for a lower-is-better one), red on the worse."""
    if d is None:
        return "<span class='muted'>baseline</span>"
    if d.get("mean") is None:
        return "<span class='muted'>n/a</span>"
    cls = ""
    if d.get("lo") is not None and (d["lo"] > 0 or d["hi"] < 0):  # the interval excludes 0
        cls = " class='pos'" if (d["lo"] > 0) == higher else " class='neg'"
    return f"<span{cls}>{d['mean']:+.3f}</span>"


def _stats_rows(rows: dict, baseline: str, first_col: str = "", *, higher: bool = True, spec: str = ".3f") -> str:
    out = []
    for label, r in sorted(rows.items(), key=lambda kv: (kv[1]["rank"] is None, kv[1]["rank"] or 0)):
        d = r.get("diff")
        cls = " class='baseline'" if label == baseline else ""
        out.append(
            f"<tr{cls}>{first_col}<td class='num'>{r['rank'] or '-'}</td><td class='label'>{e(label)}</td>"
            f"<td class='num'>{num(r['mean'], spec)}</td><td class='num'>{_ci(r)}</td>"
            f"<td class='num'>{_diff(d, higher)}</td><td class='num'>{'' if d is None else _ci(d, True)}</td>"
            f"<td class='num'>{'' if d is None else d['n']}</td>"
            f"<td class='num'>{r['scored']}</td><td class='num'>{r['failed']}</td>"
            f"<td class='num'>{r.get('pending', '')}</td></tr>")
    return "".join(out)


def stats_head(shown: str = "") -> str:
    """The tables' head; `shown`: the number's name and direction ("L1 ↓") beside "mean"."""
    return (f"<th>rank</th><th>run</th><th>mean{' ' + e(shown) if shown else ''}</th><th>95% CI</th>"
            "<th>diff vs baseline</th><th>95% CI</th><th>paired n</th><th>scored</th><th>failed</th><th>pending</th>")



def _scopes(data: dict) -> str:
    """The suite's numbers as it computes them: per scope (MagicBrush's settings, Emu Edit's splits), per
    metric, ranked by that metric's direction."""
    if not data.get("scopes"):
        return ""
    out = ["<h2 id='suite-scopes'>The suite's numbers, per setting</h2><p class='muted'>Each metric's mean over each "
           "setting's samples, as the suite's own numbers are computed (never pooled across settings); ranks by "
           "the metric's direction (&#8593; higher is better, &#8595; lower is better).</p>"]
    for name, table in data["scopes"].items():
        out.append(f"<h3>{e(name)} <span class='muted'>({table['samples']} samples)</span></h3>")
        for metric, m in table["metrics"].items():
            out.append(f"<table class='scope' data-scope='{e(name)}' data-metric='{e(metric)}'>"
                       f"<tr>{stats_head(m['shown'])}</tr>"
                       f"{_stats_rows(m['rows'], data['baseline'], higher=m['better'] == 'higher', spec='.4f')}</table>")
    return "".join(out)


def _hash(value, n: int = 16) -> str:
    """A hash shortened to n characters, the whole of it on hover (and in compare.json)."""
    if not value:
        return ""
    return f"<span class='muted hash' title='{e(value)}'>{e(short_hash(value, n))}</span>"


def _runs_table(data: dict) -> str:
    out = ["<table class='runs' id='runs'><tr><th>run</th><th>folder</th><th>editor</th><th>judge</th><th>protocol</th>"
           "<th>benchmark</th><th>git</th></tr>"]
    for r in data["runs"]:
        cls = " class='baseline'" if r["baseline"] else ""
        out.append(
            f"<tr{cls}><td class='label'>{e(r['label'])}{' (baseline)' if r['baseline'] else ''}</td><td>{e(r['path'])}"
            + (f"<br><span class='muted'>re-judge of {e(r['rejudge_of'])}</span>" if r.get("rejudge_of") else "")
            + f"</td><td>{e(r['editor'])}<br>{_hash(r['editor_hash'])}</td>"
            f"<td>{e(r['judge'])}<br>{_hash(r['judge_hash'])}</td>"
            f"<td>{e(r['protocol'] or '')}<br>{_hash(r['protocol_sha256'])}</td>"
            f"<td>{e(r['benchmark'] or '')}<br>{_hash(r['benchmark_sha256'])}</td>"
            f"<td>{_hash(r['git'], 12)}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _what_differs(data: dict) -> str:
    """The settings in which the runs differ, one row per run (the whole label first), then the
    settings they share."""
    table = data.get("settings") or {"differ": [], "same": {}, "rows": []}
    rows = {r["setting"]: r for r in table["rows"]}
    differ = table["differ"]
    out = ["<h2 id='what-differs'>What differs</h2>"]
    if differ:
        out.append(f"<p class='differ-summary'>The runs differ in: <b>{e(', '.join(differ))}</b>.</p>"
                   "<table class='differs' id='differs'><tr><th>run</th>"
                   + "".join(f"<th>{e(name)}</th>" for name in differ) + "</tr>")
        for run in data["runs"]:
            label = run["label"]
            cls = " class='baseline'" if run["baseline"] else ""
            out.append(f"<tr{cls}><td class='label'>{e(label)}{' (baseline)' if run['baseline'] else ''}</td>"
                       + "".join(f"<td>{e(rows[name]['values'].get(label, ''))}</td>" for name in differ) + "</tr>")
        out.append("</table>")
    else:
        out.append("<p class='differ-summary'>The runs differ in <b>no recorded setting</b>.</p>")
    if table["same"]:
        out.append("<p class='same'><span class='muted'>The same in every run:</span> "
                   + "; ".join(f"{e(name)} <b>{e(value)}</b>" for name, value in table["same"].items()) + "</p>")
    return "".join(out)


def _scale(data: dict) -> float:
    tops = [r.get("hi") if r.get("hi") is not None else r.get("mean")
            for rows in [*data["categories"].values(), *data["overall"].values()] for r in rows.values()]
    return nice_max(max((t for t in tops if t is not None), default=None))


def _bars(rows: dict, baseline: str, order: list[str]) -> list[dict]:
    return [{"label": label, "mean": rows[label]["mean"], "lo": rows[label]["lo"], "hi": rows[label]["hi"],
             "baseline": label == baseline} for label in order]


def _agreement(data: dict) -> str:
    if not data["judge_agreement"] and not data["repeats"]:
        return ""
    out = ["<h2>Judge agreement</h2>"]
    if data["judge_agreement"]:
        groups = "; ".join(", ".join(g) for g in data["same_edits"])
        out.append(f"<p>Runs judging the very same edits: {e(groups)}. Rank correlation of each one's scores "
                   "with the first of its group over the samples both scored, and the absolute differences.</p>"
                   "<table class='agreement'><tr><th>judge</th><th>against</th><th>category</th><th>n</th>"
                   "<th>Spearman ρ</th><th>Kendall τ-b</th><th>mean |diff|</th><th>max |diff|</th></tr>")
        for a in data["judge_agreement"]:
            for name, row in [("all", a), *a["categories"].items()]:
                out.append(f"<tr><td>{e(a['judge'])}</td><td>{e(a['against'])}</td><td>{e(name)}</td>"
                           f"<td class='num'>{row['n']}</td><td class='num'>{num(row['spearman'])}</td>"
                           f"<td class='num'>{num(row['kendall'])}</td><td class='num'>{num(row['mean_abs_diff'])}</td>"
                           f"<td class='num'>{num(row['max_abs_diff'])}</td></tr>")
        out.append("</table>")
    if data["repeats"]:
        out.append("<h3>Repeated judgements (score --repeats)</h3><table class='repeats'><tr><th>run</th>"
                   "<th>samples</th><th>repeats</th><th>mean per-sample sd</th><th>max sd</th>"
                   "<th>Spearman ρ (1st vs 2nd)</th><th>Kendall τ-b (1st vs 2nd)</th></tr>")
        for label, r in data["repeats"].items():
            fs = r["first_vs_second"]
            out.append(f"<tr><td>{e(label)}</td><td class='num'>{r['samples']}</td><td class='num'>{r['repeats']}</td>"
                       f"<td class='num'>{num(r['mean_sd'])}</td><td class='num'>{num(r['max_sd'])}</td>"
                       f"<td class='num'>{num(fs['spearman'])}</td><td class='num'>{num(fs['kendall'])}</td></tr>")
        out.append("</table>")
    return "".join(out)


def _grid(data: dict, runs, output: Path) -> str:
    by_label = {r.label: r for r in runs}
    labels = [r["label"] for r in data["runs"]]
    sources = {s.id: s for r in reversed(runs) for s in r.samples}
    cache: dict[str, str] = {}
    spread = bool(data["same_edits"])
    categories = list(data["categories"])
    out = ["<h2>Samples</h2><div class='controls'>"
           "<label>filter <input id='filter' type='search' placeholder='id or instruction'></label>"
           "<label>category <select id='category'><option value=''>all</option>"
           + "".join(f"<option value='{e(c)}'>{e(c)}</option>" for c in categories)
           + "</select></label><span id='shown' class='muted'></span>"
           "<span class='muted'>click a column head to sort</span></div>"
           "<div class='grid-wrap'><table id='grid' class='grid'><thead><tr><th class='sortable' data-type='text'>sample</th>"
           "<th class='sortable' data-type='text'>category</th><th>source</th>"
           + "".join(f"<th class='sortable run' data-type='num'>{e(label)}</th>" for label in labels)
           + (f"<th class='sortable' data-type='num' title='largest minus smallest score of the judges of "
              f"{e(data['same_edits'][0][0])}&#39;s edits'>judge spread</th>" if spread else "")
           + "</tr></thead><tbody>"]
    for row in data["samples"]:
        sample = sources.get(row["id"])
        text = f"{row['id']} {row['instruction']}".lower()
        cells = [f"<td class='sample' data-v='{e(row['id'])}'><b>{e(row['id'])}</b><br>{e(row['instruction'])}</td>",
                 f"<td class='category' data-v='{e(row['category'])}'>{e(row['category'])}</td>",
                 f"<td>{thumb(_source(sample), GRID_THUMB)}</td>"]
        for label in labels:
            cells.append(_cell(row["runs"][label], by_label[label], row["id"], output, cache))
        if spread:
            cells.append(f"<td class='num' data-v='{'' if row['spread'] is None else row['spread']}'>{num(row['spread'], '.2f')}</td>")
        out.append(f"<tr data-category='{e(row['category'])}' data-text='{e(text)}'>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")  # (very many runs: the grid scrolls sideways, not the page)
    return "".join(out)


def _source(sample) -> bytes | None:
    try:
        return sample.source_bytes() if sample is not None and (sample.image_path or sample.image_bytes) else None
    except Exception:  # the benchmark moved since the run: the page still renders
        return None


def _cell(cell: dict, run, sample_id: str, output: Path, cache: dict) -> str:
    sort = "" if cell["score"] is None or cell["status"] != statuses.OK else cell["score"]
    if cell["edit_status"] == "ok":
        edit = run.edits[sample_id]
        path = run.run_dir.edits_root / edit["path"]
        key = cell["edit_sha256"] or str(path)
        if key not in cache:
            cache[key] = thumb(path.read_bytes() if path.is_file() else None, GRID_THUMB)
        image = f"<a href='{e(url_path(os.path.relpath(path, output)))}'>{cache[key]}</a>"
    elif cell["edit_status"] == "failed":
        image = "<span class='fail'>edit failed</span>" + reply_block(cell["edit_error"] or "", shown=300)
    else:
        image = "<span class='muted'>not edited</span>"
    if cell["status"] == statuses.OK:
        score = f"<b class='score'>{cell['score']:.2f}</b>"
        if cell["sub_scores"]:
            score += "<br><span class='muted'>" + e(", ".join(f"{k} {v:.1f}" for k, v in cell["sub_scores"].items()
                                                               if "." not in k)) + "</span>"
        if cell["repeat_scores"]:
            score += "<br><span class='muted'>repeats " + ", ".join(num(v, ".1f") for v in cell["repeat_scores"]) + "</span>"
        if cell["response"]:
            score += "<details><summary class='muted'>reply</summary>" + reply_block(cell["response"]) + "</details>"
    elif cell["status"]:  # why, in full (the rest folds away)
        score = f"<span class='fail'>{e(cell['status'])}</span>" + reply_block(cell.get("error") or "", css="muted",
                                                                             shown=200)
    else:
        score = "<span class='muted'>not judged</span>"
    return f"<td class='cell' data-v='{sort}'>{image}{score}</td>"


def render(data: dict, runs, output: Path) -> str:
    baseline = data["baseline"]
    order = [r["label"] for r in data["runs"]]
    top = _scale(data)
    headline = data["headline"]
    other = "macro_mean" if headline == "micro_mean" else "micro_mean"
    names = {"micro_mean": "micro mean (every sample pooled)", "macro_mean": "macro mean (mean of the category means)"}
    b = data["bootstrap"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>editfleet compare</title>",
        f"<style>{PAGE_CSS}</style></head><body>",
        f"<h1>editfleet compare: {len(order)} run{'s' if len(order) != 1 else ''}</h1>",
        _what_differs(data),
        "<h2>Runs</h2>",
        _runs_table(data),
    ]
    if data["differences_allowed"]:
        parts.append("<div class='warn'><b>Compared with --allow-different:</b><ul>"
                     + "".join(f"<li>{e(d)}</li>" for d in data["differences_allowed"]) + "</ul></div>")
    parts.append(
        f"<p class='muted'>Intervals: {b['level']:.0%} {e(b['method'])}, {b['resamples']} resamples, seed {b['seed']} "
        f"(the same files give the same intervals). Differences are paired: over the samples both runs have a value for; "
        f"coloured where the interval excludes 0. Failures are "
        + ("counted as 0." if data["failures_as"] == "zero" else "left out of the means (counted in the failed column).")
        + "</p>")
    score = data.get("score") or {}
    higher = score.get("better", "higher") == "higher"
    head = stats_head(score.get("shown", ""))
    parts.append(_scopes(data))
    parts.append(f"<h2>Overall: {e(names[headline])}</h2><p class='muted'>"
                 + ("every sample pooled across the settings above: none of the suite's numbers" if data.get("scopes")
                    else "the benchmark's headline figure")
                 + f"; the score is {e(score.get('label', 'score'))}, {e(score.get('better', 'higher'))} is better</p>"
                 f"<table class='overall' id='overall'><tr>{head}</tr>"
                 f"{_stats_rows(data['overall'][headline], baseline, higher=higher)}</table>")
    parts.append("<div class='charts'><div class='chart'><h3>overall</h3>"
                 + bar_chart(f"overall {headline}", _bars(data["overall"][headline], baseline, order), scale_max=top)
                 + "</div></div>")
    parts.append(f"<h3>{e(names[other])}</h3><table class='overall-other'><tr>{head}</tr>"
                 f"{_stats_rows(data['overall'][other], baseline, higher=higher)}</table>")
    parts.append("<h2>Per category</h2><div class='charts'>")
    for name, rows in data["categories"].items():
        parts.append(f"<div class='chart'><h3>{e(name)}</h3>" + bar_chart(name, _bars(rows, baseline, order), scale_max=top) + "</div>")
    parts.append("</div><table class='categories' id='categories'><tr><th>category</th>" + head + "</tr>")
    for name, rows in data["categories"].items():
        parts.append(_stats_rows(rows, baseline, first_col=f"<td>{e(name)}</td>", higher=higher))
    parts.append("</table>")
    parts.append(_agreement(data))
    parts.append(_grid(data, runs, output))
    parts.append(f"<script>{SCRIPT}</script></body></html>\n")
    return "\n".join(parts)
