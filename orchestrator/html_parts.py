"""What the HTML pages (report.html, compare.html) share: the style sheet and font stack,
escaping, number formats, inline thumbnails. Every page is one self-contained file: images are
inline data, charts inline SVG, scripts inline; nothing is fetched."""

from __future__ import annotations

import base64
import html
import io

from editfleet_common.errors import InvalidInput
from editfleet_common.images import decode_image

THUMB = 192

# System fonts first, then the usual CJK faces of each platform, so category names such as 物理
# render everywhere (Noto/Source Han on Linux, PingFang/Hiragino on macOS, YaHei on Windows).
FONT_STACK = ('system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Helvetica Neue", Arial, '
              '"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Hiragino Sans GB", '
              '"Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif')

CSS = f"""
body {{ font-family: {FONT_STACK}; margin: 2em; color: #222; }}
svg text {{ font-family: {FONT_STACK}; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }}
th {{ background: #f3f3f3; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
.grid td {{ max-width: 28em; }}
.fail {{ color: #b00020; font-weight: bold; }}
.muted {{ color: #777; }}
img {{ display: block; }}
pre {{ white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word; margin: 0; font-size: 85%; }}
.reply {{ max-width: 40em; overflow-wrap: anywhere; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1em; }}
.chart {{ border: 1px solid #ddd; padding: 0.5em; }}
.chart h3 {{ margin: 0 0 0.3em 0; font-size: 100%; }}
"""


def e(text) -> str:
    return html.escape(str(text))


def num(value, spec=".3f") -> str:
    return format(value, spec) if value is not None else "n/a"


def url_path(relative: str) -> str:
    """A relative file path as an href: '%', '#' and '?' (legal in ids) escaped, the rest kept
    readable (non-ASCII category names included)."""
    return relative.replace("%", "%25").replace("#", "%23").replace("?", "%3F")


def thumb(data: bytes | None, size: int = THUMB) -> str:
    if not data:
        return '<span class="muted">unavailable</span>'
    try:
        img = decode_image(data)
    except InvalidInput as exc:
        return f'<span class="fail">{html.escape(str(exc))}</span>'
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return f'<img alt="" src="data:image/jpeg;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def reply_block(text: str, *, css: str = "", label: str = "", shown: int = 600) -> str:
    """A judge reply, wrapped (long tokens broken anywhere); past `shown` characters the rest is
    behind a <details> so the grid stays readable and nothing is cut off."""
    if not text:
        return ""
    cls = f" class='{css}'" if css else ""
    head, rest = text[:shown], text[shown:]
    out = f"<pre{cls}>{e(label)}{e(head)}</pre>"
    if rest:
        out += f"<details><summary class='muted'>{len(rest)} more characters</summary><pre{cls}>{e(rest)}</pre></details>"
    return out
