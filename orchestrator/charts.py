"""Inline SVG charts for the HTML pages: horizontal bars with confidence intervals (compare) and
score histograms (report). Plain strings, no plotting library, nothing fetched."""

from __future__ import annotations

import math
import re
import unicodedata

from .html_parts import e

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")


def nice_max(value: float | None) -> float:
    """The chart's upper end: a score range's usual top (1, 5, 10, 100) or a round number above."""
    if value is None or value <= 0:
        return 1.0
    for top in (1.0, 5.0, 10.0, 100.0):
        if value <= top:
            return top
    step = 10 ** math.floor(math.log10(value))
    return math.ceil(value / step) * step


def text_width(text: str, size: float) -> float:
    """A generous estimate of `text`'s width in px at font size `size` in the pages' sans-serif
    fonts (wide enough for DejaVu Sans, the widest usual fallback): labels are wrapped by it, so it
    errs on the wide side."""
    width = 0.0
    for ch in text:
        if unicodedata.east_asian_width(ch) in "WF":
            width += 1.05
        elif ch in "il.,:;|!'`ıj ·()[]":
            width += 0.36
        elif ch in "mwMW@%":
            width += 0.98
        elif ch.isupper():
            width += 0.78
        elif ch.isdigit():
            width += 0.66
        else:
            width += 0.64
    return width * size


def wrap_label(text: str, width: float, size: float, max_lines: int = 3) -> list[str]:
    """`text` in lines no wider than `width` px, broken after spaces, slashes, hyphens, dots and
    underscores (a word wider than a line is broken anywhere). Past `max_lines` the last line is
    "…" and the label's end (the page shows the whole label on hover and in its tables)."""
    tokens = [t for t in re.split(r"(?<=[\s/\-_.·])", text) if t]
    pieces: list[str] = []
    for token in tokens:  # break any token wider than a line into pieces that fit
        while text_width(token.rstrip(), size) > width:
            cut = 1
            while cut < len(token) and text_width(token[:cut + 1], size) <= width:
                cut += 1
            pieces.append(token[:cut])
            token = token[cut:]
        pieces.append(token)
    lines: list[str] = []
    line = ""
    for piece in pieces:
        if line and text_width((line + piece).rstrip(), size) > width:
            lines.append(line.rstrip())
            line = piece.lstrip()
        else:
            line += piece
    if line.strip():
        lines.append(line.rstrip())
    if len(lines) > max_lines:  # the first lines, then "…" and as much of the end as fits (runs often differ there)
        tail = text[sum(len(line) for line in lines[:max_lines - 1]):]
        while tail and text_width("…" + tail, size) > width:
            tail = tail[1:]
        lines = lines[:max_lines - 1] + ["…" + tail.lstrip()]
    return lines or [""]


def bar_chart(title: str, bars: list[dict], *, scale_max: float, width: int = 520) -> str:
    """bars: {"label", "mean", "lo", "hi", "baseline": bool}. One horizontal bar per model, its
    95% interval as a whisker; a missing mean is drawn as "n/a". Labels are wrapped onto up to
    three lines in the space left of the bars (never clipped); a longer one ends in "…" and its
    whole text is the label's tooltip."""
    label_w, line_h, font, top, right = 220, 14, 12, 8, 60
    plot_w = width - label_w - right
    wrapped = [wrap_label(bar["label"], label_w - 12, font) for bar in bars]
    heights = [max(26, line_h * len(lines) + 12) for lines in wrapped]
    height = top + sum(heights) + 24
    x = lambda v: label_w + plot_w * max(0.0, min(v, scale_max)) / scale_max  # noqa: E731
    parts = [f"<svg class='barchart' role='img' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}'><title>{e(title)}</title>"]
    for tick in range(0, 5):
        value = scale_max * tick / 4
        parts.append(f"<line x1='{x(value):.1f}' y1='{top}' x2='{x(value):.1f}' y2='{height - 20}' stroke='#e5e5e5'/>"
                     f"<text x='{x(value):.1f}' y='{height - 6}' font-size='10' text-anchor='middle' fill='#666'>"
                     f"{value:g}</text>")
    y = top
    for i, (bar, lines, row_h) in enumerate(zip(bars, wrapped, heights)):
        color = PALETTE[i % len(PALETTE)]
        weight = " font-weight='bold'" if bar.get("baseline") else ""
        mid = y + row_h / 2
        first = mid - line_h * (len(lines) - 1) / 2 + 4  # the lines centred on the bar
        parts.append(f"<g class='bar-label' data-label='{e(bar['label'])}'><title>{e(bar['label'])}</title>"
                     f"<text x='{label_w - 6}' y='{first:.1f}' font-size='{font}' text-anchor='end'{weight}>"
                     + "".join(f"<tspan x='{label_w - 6}' dy='{0 if n == 0 else line_h}'>{e(line)}</tspan>"
                               for n, line in enumerate(lines))
                     + "</text></g>")
        if bar.get("mean") is None:
            parts.append(f"<text x='{label_w + 4}' y='{mid + 4:.1f}' font-size='11' fill='#999'>n/a</text>")
            y += row_h
            continue
        parts.append(f"<rect class='bar' x='{label_w}' y='{mid - 9:.1f}' width='{x(bar['mean']) - label_w:.1f}' height='18' "
                     f"fill='{color}'><title>{e(bar['label'])}: {bar['mean']:.3f}"
                     + (f" [{bar['lo']:.3f}, {bar['hi']:.3f}]" if bar.get("lo") is not None else "")
                     + "</title></rect>")
        if bar.get("lo") is not None:
            parts.append(f"<g class='ci' stroke='#222' stroke-width='1.5'>"
                         f"<line x1='{x(bar['lo']):.1f}' y1='{mid}' x2='{x(bar['hi']):.1f}' y2='{mid}'/>"
                         f"<line x1='{x(bar['lo']):.1f}' y1='{mid - 5}' x2='{x(bar['lo']):.1f}' y2='{mid + 5}'/>"
                         f"<line x1='{x(bar['hi']):.1f}' y1='{mid - 5}' x2='{x(bar['hi']):.1f}' y2='{mid + 5}'/></g>")
        end = x(bar["hi"]) if bar.get("hi") is not None else x(bar["mean"])
        parts.append(f"<text x='{end + 4:.1f}' y='{mid + 4:.1f}' font-size='11'>{bar['mean']:.2f}</text>")
        y += row_h
    parts.append("</svg>")
    return "".join(parts)


def histogram(title: str, values: list[float], *, scale_max: float, bins: int = 10, width: int = 300) -> str:
    """Counts of scores in `bins` equal bins over [0, scale_max] (the top bin includes its end)."""
    height, left, bottom, top = 140, 28, 22, 14
    plot_w, plot_h = width - left - 8, height - bottom - top
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(v / scale_max * bins)))] += 1
    peak = max(counts) or 1
    bw = plot_w / bins
    parts = [f"<svg class='histogram' role='img' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}'><title>{e(title)}</title>",
             f"<line x1='{left}' y1='{top + plot_h}' x2='{left + plot_w}' y2='{top + plot_h}' stroke='#999'/>"]
    for i, count in enumerate(counts):
        h = plot_h * count / peak
        x0 = left + i * bw
        lo, hi = scale_max * i / bins, scale_max * (i + 1) / bins
        parts.append(f"<rect class='bin' x='{x0 + 1:.1f}' y='{top + plot_h - h:.1f}' width='{bw - 2:.1f}' height='{h:.1f}' "
                     f"fill='#4e79a7'><title>[{lo:g}, {hi:g}{']' if i == bins - 1 else ')'}: {count}</title></rect>")
        if count:
            parts.append(f"<text x='{x0 + bw / 2:.1f}' y='{top + plot_h - h - 2:.1f}' font-size='9' "
                         f"text-anchor='middle'>{count}</text>")
    for tick in (0, bins // 2, bins):
        value = scale_max * tick / bins
        parts.append(f"<text x='{left + tick * bw:.1f}' y='{height - 6}' font-size='10' text-anchor='middle' "
                     f"fill='#666'>{value:g}</text>")
    parts.append("</svg>")
    return "".join(parts)
