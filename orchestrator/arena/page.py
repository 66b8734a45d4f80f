"""arena.html: the arena's ratings as one self-contained page (nothing fetched: inline SVG, inline JPEG
thumbnails, no script needed): the leaderboard with each rating's bootstrap interval drawn as a bar on
one scale, the win-rate heat map (row beats column), the verdicts per question, one leaderboard per
category, and example pairs side by side with the judge's replies in each order."""

from __future__ import annotations

import math

from ..html_parts import CSS, e, reply_block, thumb

EXAMPLE_THUMB = 160

PAGE_CSS = CSS + """
.summary td { max-width: 48em; }
td.model { font-weight: bold; overflow-wrap: anywhere; }
svg.ci { display: block; }
svg.ci line.range { stroke: #3366aa; stroke-width: 6; stroke-linecap: round; opacity: 0.45; }
svg.ci circle.point { fill: #1f3f73; }
svg.ci line.axis { stroke: #bbb; stroke-width: 1; }
table.heat td.rate { text-align: center; min-width: 4.5em; font-variant-numeric: tabular-nums; }
table.heat td.rate small { display: block; color: #555; font-size: 75%; }
table.heat td.self { background: #eee; }
table.heat th.col { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; max-height: 14em; }
.boards { display: flex; flex-wrap: wrap; gap: 1.5em; }
.boards section { border: 1px solid #ddd; padding: 0 0.8em; }
.pair { display: flex; gap: 0.8em; align-items: flex-start; flex-wrap: wrap; }
.pair figure { margin: 0; }
.pair figcaption { font-size: 85%; color: #444; overflow-wrap: anywhere; max-width: 160px; }
.verdict { font-weight: bold; }
.disagree { color: #a35a00; }
"""


def _heat_color(rate: float | None) -> str:
    """Red (0) through white (0.5) to green (1)."""
    if rate is None or math.isnan(rate):
        return "#f7f7f7"
    t = max(0.0, min(1.0, rate))
    if t < 0.5:
        k = t / 0.5
        r, g, b = 230, int(120 + 135 * k), int(120 + 135 * k)
    else:
        k = (t - 0.5) / 0.5
        r, g, b = int(255 - 140 * k), int(255 - 55 * k), int(255 - 140 * k)
    return f"#{r:02x}{g:02x}{b:02x}"


def _interval_svg(row: dict, lo: float, hi: float, width: int = 260) -> str:
    span = (hi - lo) or 1.0
    x = lambda v: 8 + (width - 16) * (v - lo) / span  # noqa: E731
    return (f'<svg class="ci" width="{width}" height="18" viewBox="0 0 {width} 18" role="img" '
            f'aria-label="{e(row["model"])}: {row["elo"]:.1f} ({row["lower"]:.1f} to {row["upper"]:.1f})">'
            f'<line class="axis" x1="8" y1="9" x2="{width - 8}" y2="9"/>'
            f'<line class="range" x1="{x(row["lower"]):.1f}" y1="9" x2="{x(row["upper"]):.1f}" y2="9"/>'
            f'<circle class="point" cx="{x(row["elo"]):.1f}" cy="9" r="4"/></svg>')


def leaderboard_table(board: dict, *, table_id: str = "", css: str = "board") -> str:
    rows = board["leaderboard"]
    if not rows:
        return "<p class='muted'>no verdicts</p>"
    lo = min(r["lower"] for r in rows)
    hi = max(r["upper"] for r in rows)
    pad = max(5.0, 0.05 * (hi - lo))
    lo, hi = lo - pad, hi + pad
    ident = f" id='{table_id}'" if table_id else ""
    out = [f"<table{ident} class='{css}'><tr><th>rank</th><th>model</th><th>Elo</th><th>95% interval</th>"
           f"<th>interval ({lo:.0f} to {hi:.0f})</th><th>judgments</th></tr>"]
    for r in rows:
        out.append(f"<tr data-model='{e(r['model'])}'><td class='num'>{r['rank']}</td><td class='model'>{e(r['model'])}</td>"
                   f"<td class='num' data-v='{r['elo']:.4f}'>{r['elo']:.1f}</td><td class='num'>{e(r['ci'])}</td>"
                   f"<td>{_interval_svg(r, lo, hi)}</td><td class='num'>{r['judgments']}</td></tr>")
    out.append("</table>")
    return "".join(out)


def heat_map(board: dict) -> str:
    order = [r["model"] for r in board["leaderboard"]]
    wr = board["win_rate"]
    index = {m: i for i, m in enumerate(wr["models"])}
    out = ["<table id='winrate' class='heat'><tr><th>row beats column</th>"
           + "".join(f"<th class='col'>{e(m)}</th>" for m in order) + "</tr>"]
    for a in order:
        cells = []
        for b in order:
            if a == b:
                cells.append("<td class='rate self'></td>")
                continue
            rate = wr["rate"][index[a]][index[b]]
            n = wr["verdicts"][index[a]][index[b]]
            text = f"{rate:.2f}" if rate is not None else "–"
            cells.append(f"<td class='rate' data-rate='{'' if rate is None else f'{rate:.6f}'}' data-n='{n}' "
                         f"style='background:{_heat_color(rate)}' title='{e(a)} vs {e(b)}: {n} verdict(s)'>"
                         f"{text}<small>n={n}</small></td>")
        out.append(f"<tr><th>{e(a)}</th>{''.join(cells)}</tr>")
    out.append("</table>")
    return "".join(out)


def verdict_table(data: dict) -> str:
    rows = []
    for q, c in data["judgments"]["by_question"].items():
        rows.append(f"<tr><td>{e(q)}</td><td class='num'>{c['A']}</td><td class='num'>{c['B']}</td>"
                    f"<td class='num'>{c['tie']}</td><td class='num'>{c['no_verdict']}</td>"
                    f"<td class='num'>{c['disagreements']} of {c['asked_both_orders']}</td></tr>")
    return ("<table id='verdicts'><tr><th>question</th><th>A wins</th><th>B wins</th><th>tie</th><th>no verdict</th>"
            "<th>orders disagree</th></tr>" + "".join(rows) + "</table>")


def _examples(lines: list[dict], players, samples, n: int) -> str:
    if not n or not players:
        return ""
    by_name = {p.name: p for p in players}
    by_id = {s.id: s for s in samples}
    judged = [line for line in lines if line.get("pairwise") and line["prompt"] in by_id
              and line["model_a"] in by_name and line["model_b"] in by_name]
    # disagreements first (the interesting ones), then by prompt; one per prompt where there are enough
    judged.sort(key=lambda line: (not any(v.get("disagreement") for v in line["pairwise"]), line["prompt"]))
    chosen, seen = [], set()
    for line in judged:
        if line["prompt"] not in seen or len(judged) <= n:
            chosen.append(line)
            seen.add(line["prompt"])
        if len(chosen) >= n:
            break
    out = []
    for line in chosen:
        sample = by_id[line["prompt"]]
        a, b = by_name[line["model_a"]], by_name[line["model_b"]]

        def image(player):
            try:
                return thumb(player.edit_path(sample).read_bytes(), EXAMPLE_THUMB)
            except (OSError, KeyError):
                return "<span class='muted'>unavailable</span>"

        try:
            source = thumb(sample.source_bytes(), EXAMPLE_THUMB)
        except Exception:  # noqa: BLE001 - a source that cannot be read: said, not fatal
            source = "<span class='muted'>unavailable</span>"
        verdicts = []
        for v in line["pairwise"]:
            who = {"A": a.name, "B": b.name, "tie": "tie"}.get(v["winner"] or "", "no verdict")
            replies = "".join(
                reply_block(" / ".join(o["raw_responses"]) or o.get("error", ""),
                            label=f"{'B shown first' if o['swapped'] else 'A shown first'} → "
                                  f"{o['winner'] or 'unreadable'}: ",
                            shown=300)
                for o in v["orders"])
            cls = " disagree" if v["disagreement"] else ""
            verdicts.append(f"<div><span class='verdict{cls}'>{e(v['question'])}: {e(who)}</span> "
                            f"<span class='muted'>({e(v['rule'])})</span>{replies}</div>")
        out.append(
            f"<tr class='example'><td>{e(sample.id)}<br><span class='muted'>{e(sample.category)}</span><br>"
            f"{e(sample.instruction)}</td><td><div class='pair'>"
            f"<figure>{source}<figcaption>source</figcaption></figure>"
            f"<figure>{image(a)}<figcaption>A: {e(a.name)}</figcaption></figure>"
            f"<figure>{image(b)}<figcaption>B: {e(b.name)}</figcaption></figure></div></td>"
            f"<td class='reply'>{''.join(verdicts)}</td></tr>")
    return ("<h2>Example pairs</h2><table id='examples'><tr><th>sample</th><th>the pair</th><th>the judge</th></tr>"
            + "".join(out) + "</table>")


def arena_page(data: dict, lines: list[dict], *, players, samples, examples: int = 8) -> str:
    ratings = data.get("ratings")
    bench = data.get("benchmark") or {}
    protocol = data.get("protocol") or {}
    judge = ((data.get("judge") or {}).get("model") or {})
    pairs = data["pairs"]
    fit = data["fit"]
    summary = [
        ("benchmark", f"{bench.get('format', '')} {bench.get('path', '')}" if bench else
         ", ".join(f"{m['dimension']}: {m['file']}" for m in data.get("matches") or [])),
        ("protocol", f"{protocol.get('name', '')} (questions {', '.join(data['questions'])}; "
                     f"{data.get('orders') or 'orders as judged'})" if protocol else "GEditBench v2 match files"),
        ("judge", judge.get("model") or "(judged before, or match files)"),
        ("pairs", f"{pairs['judged']} judged" + (f" of {pairs['possible']}" if pairs.get("possible") is not None else "")
                  + (f"; {pairs['stopped']}" if pairs.get("stopped") else "")),
        ("fit", f"Davidson-Bradley-Terry, alpha {fit['alpha']:g}, {fit['weighting']} dimension weights, "
                f"{fit['bootstrap']} bootstrap rounds over prompts (seed {fit['seed']}); Elo = 1000 + 400 theta / ln 10"),
    ]
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>editfleet arena</title>"
             f"<style>{PAGE_CSS}</style></head><body><h1>Arena</h1>",
             "<table class='summary'>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in summary)
             + "</table>"]
    if not ratings:
        parts.append("<p class='fail'>No verdicts yet: no ratings.</p>")
    else:
        overall = ratings["overall"]
        parts.append("<h2>Leaderboard</h2>" + leaderboard_table(overall, table_id="leaderboard"))
        parts.append(f"<p class='muted'>verdicts per dimension: "
                     f"{e(', '.join(f'{d} {n}' for d, n in overall['verdicts'].items()))}; dimension weights "
                     f"{e(', '.join(f'{d} {w:.3g}' for d, w in overall['dimension_weights'].items()))}</p>")
        parts.append("<h2>Win rates</h2><p class='muted'>the row's share of verdicts against the column "
                     "(a tie counts half), over every dimension; n: the verdicts behind it</p>" + heat_map(overall))
        parts.append("<h2>Verdicts</h2>" + verdict_table(data))
        categories = ratings.get("categories") or {}
        if categories:
            parts.append("<h2>Per category</h2><div class='boards' id='categories'>" + "".join(
                f"<section data-category='{e(c)}'><h3>{e(c)}</h3>{leaderboard_table(b, css='board category-board')}</section>"
                for c, b in categories.items()) + "</div>")
    parts.append(_examples(lines, players, samples, examples))
    parts.append("</body></html>")
    return "".join(parts)
