"""What the HTML pages (report.html, compare.html) share: the style sheet and font stack,
escaping, number formats, inline thumbnails. Every page is one self-contained file: images are
inline data, charts inline SVG, scripts inline; nothing is fetched."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

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
table {{ max-width: 100%; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; overflow-wrap: break-word; }}
td.label, td.wrap, .grid td, .runs td, .differs td {{ overflow-wrap: anywhere; }}
th {{ background: #f3f3f3; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
.grid td {{ max-width: 28em; }}
.fail {{ color: #b00020; font-weight: bold; }}
.muted {{ color: #777; }}
img {{ display: block; max-width: 100%; height: auto; }}
svg {{ max-width: 100%; height: auto; }}
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


# -- what a run was run with ----------------------------------------------------------------------
def _blank(value) -> bool:
    return value is None or value == "" or value == 0


def negative_prompt_text(value, default=None) -> str:
    """A negative prompt as a reader wants it: "none", the text quoted, or "default" (the editor's,
    with what it is where the editor reported it)."""
    if value is None:  # not set: the editor's own default
        if default is None:
            return "default"
        return "default (none)" if not str(default).strip() else f"default ({json.dumps(default, ensure_ascii=False)})"
    if not str(value).strip():
        return "none"
    return json.dumps(value, ensure_ascii=False)


def short_hash(value, n: int = 16) -> str:
    return str(value)[:n] + ("…" if len(str(value)) > n else "") if value else ""


def run_settings(manifest: dict) -> dict[str, str]:
    """What a run was run with, each as a reader's text, from its manifest: the edit settings
    (edit_settings, else the config's editor section), the editor and judge the services reported
    (their identity blocks; the config's names where none was recorded), the protocol. Keys in a
    fixed order; a setting a run does not have is absent. "default" is the editor's own (what it is
    in brackets where the editor reported it)."""
    config = manifest.get("config") or {}
    editor_cfg = {**(config.get("editor") or {}), **(manifest.get("edit_settings") or {})}
    judge_cfg = {**(config.get("judge") or {}), **(manifest.get("judge_settings") or {})}
    editor = manifest.get("editor") or {}
    judge = manifest.get("judge") or {}
    defaults = editor.get("defaults") or {}
    out: dict[str, str] = {}

    reported = (editor.get("model") or {}).get("model")
    named = editor_cfg.get("model")
    if editor.get("imported"):
        imported = editor["imported"]
        out["editor"] = f"imported edits ({imported.get('layout', '')}: {imported.get('folder', '')})"
    elif reported:
        out["editor"] = reported + (f" (the config named {named})" if named and named != reported else "")
    elif named:
        out["editor"] = str(named)
    model = editor.get("model") or {}
    if model.get("content_hash"):
        out["editor hash"] = short_hash(model["content_hash"])
    if not editor.get("imported"):
        out["seed"] = str(editor_cfg.get("seed") or 0)
        steps, default_steps = editor_cfg.get("steps"), defaults.get("num_inference_steps")
        out["steps"] = (str(steps) if not _blank(steps) else
                        f"default ({default_steps})" if default_steps else "default")
        guidance, default_guidance = editor_cfg.get("guidance"), defaults.get("guidance_scale")
        out["guidance"] = (f"{guidance:g}" if isinstance(guidance, (int, float)) else
                           f"default ({default_guidance:g})" if isinstance(default_guidance, (int, float))
                           else "default")
        out["negative prompt"] = negative_prompt_text(editor_cfg.get("negative_prompt"), defaults.get("negative_prompt"))
        width, height = editor_cfg.get("width"), editor_cfg.get("height")
        out["size"] = f"{width}x{height}" if width and height else "the pipeline's own"
        for key, name in (("dtype", "dtype"), ("load_format", "load format"), ("speed_mode", "speed mode"),
                          ("threads", "threads")):
            if editor_cfg.get(key) not in (None, ""):
                out[name] = str(editor_cfg[key])
        if editor_cfg.get("loras"):
            out["LoRAs"] = ", ".join(f"{Path(str(lora.get('path', ''))).name} x{lora.get('scale', 1)}"
                                     + (f" ({short_hash(lora['sha256'], 12)})" if lora.get("sha256") else "")
                                     for lora in editor_cfg["loras"])
        if editor_cfg.get("scheduler"):
            out["scheduler"] = json.dumps(editor_cfg["scheduler"], sort_keys=True, ensure_ascii=False)
        if editor_cfg.get("extras"):
            out["extras"] = json.dumps(editor_cfg["extras"], sort_keys=True, ensure_ascii=False)

    reported_judge = (judge.get("model") or {}).get("model")
    named_judge = judge_cfg.get("model")
    if reported_judge:
        out["judge"] = reported_judge + (f" (the config named {named_judge})"
                                         if named_judge and named_judge != reported_judge else "")
    elif named_judge:
        out["judge"] = str(named_judge)
    backend = judge.get("backend") or judge_cfg.get("backend")
    if backend and backend != "transformers":
        out["judge"] = out.get("judge", "") + f" ({backend} API)"
    if (judge.get("model") or {}).get("content_hash"):
        out["judge hash"] = short_hash(judge["model"]["content_hash"])
    protocol = judge.get("protocol") or {}
    name = protocol.get("name") or judge_cfg.get("protocol")
    if name:
        out["protocol"] = str(name)
    if protocol.get("sha256"):
        out["protocol text"] = "sha256 " + short_hash(protocol["sha256"], 12)
    out["judgements per edit"] = str((config.get("judge") or {}).get("repeats") or 1)
    return out
