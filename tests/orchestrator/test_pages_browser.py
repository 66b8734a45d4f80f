"""compare.html and report.html in a real browser (headless Chromium over the DevTools protocol,
tests/orchestrator/browser.py): the tables, charts and grid are rendered, sorting and filtering
work, and the pages fetch nothing but themselves and their inline data. A screenshot of each goes
to $EDITFLEET_SCREENSHOTS (when set) for a look by eye."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main

from browser import Browser, chromium_binary
from compare_runs import make_benchmark, make_run


@pytest.fixture(scope="module")
def browser():
    binary = chromium_binary()
    if binary is None:
        pytest.fail("chromium not found: `make browser` installs it (apt-get install chromium)")
    b = Browser(binary)
    yield b
    b.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pages")
    bench = make_benchmark(tmp / "bench")
    a = make_run(tmp, "a", bench, lambda s: 5 + int(s.id[-1]) % 3, edit_fails={"0-1"}, score_fails={"1-2"},
                 sub_scores=lambda s: {"SC": 4.0 + int(s.id[-1]) % 2, "PQ": 6.0})
    b = make_run(tmp, "b", bench, lambda s: 6 + int(s.id[-1]) % 4, editor="model-b", color=(90, 0, 0))
    j = make_run(tmp, "j", bench, lambda s: [4 + int(s.id[-1]) % 5, 5 + int(s.id[-1]) % 5], judge="judge-y",
                 rejudge_of=a, repeats=2)
    runner = CliRunner()
    for args in (["compare", str(a), str(b), str(j), "-o", str(tmp / "cmp")], ["report", str(a)]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
    return {"compare": tmp / "cmp" / "compare.html", "report": a / "report.html"}


def only_local(requests: list[str], page: Path) -> list[str]:
    """Requests other than the page itself and its inline data: URLs."""
    return [u for u in requests if not (u.startswith("data:") or u == page.resolve().as_uri())]


def save_screenshot(browser, name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.png"
    browser.screenshot(path, full_page=True)
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    if os.environ.get("EDITFLEET_SCREENSHOTS"):
        Path(os.environ["EDITFLEET_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["EDITFLEET_SCREENSHOTS"]) / path.name)
    return path


def grid_column(browser, col: int) -> list[str]:
    return browser.js(f"Array.from(document.querySelectorAll('#grid tbody tr')).map(r => r.cells[{col}].dataset.v)")


def test_compare_page_renders_sorts_filters_and_fetches_nothing(browser, pages, tmp_path):
    page = pages["compare"]
    browser.open(page)
    browser.settle(0.5)
    assert only_local(browser.requests, page) == []
    js = browser.js
    assert js("document.title") == "editfleet compare"
    assert js("document.querySelectorAll('#overall tr').length") == 1 + 3
    assert js("document.querySelectorAll('#categories tr').length") == 1 + 3 * 3
    # a bar chart per category and one overall, each with its bars and interval whiskers laid out
    assert js("document.querySelectorAll('svg.barchart').length") == 4
    assert js("Array.from(document.querySelectorAll('svg.barchart rect.bar')).every(r => r.getBBox().width > 0)")
    assert js("document.querySelectorAll('svg.barchart g.ci').length") == 4 * 3
    assert js("document.querySelectorAll('#grid tbody tr').length") == 18
    # every cell's thumbnail decoded (inline data)
    assert js("Array.from(document.querySelectorAll('#grid img')).every(i => i.complete && i.naturalWidth > 0)")
    assert js("document.querySelectorAll('#grid img').length") == 18 + 17 + 18 + 17  # sources + edits (one failed)
    assert "物理" in js("document.querySelector('#categories').innerText")
    save_screenshot(browser, "compare", tmp_path)

    # sorting: click the model-b column head, twice
    heads = js("Array.from(document.querySelectorAll('#grid thead th')).map(h => h.innerText.trim())")
    col = next(i for i, h in enumerate(heads) if h.startswith("model-b"))
    js(f"document.querySelectorAll('#grid thead th')[{col}].click()")
    up = [float(v) for v in grid_column(browser, col)]
    assert up == sorted(up) and up[0] < up[-1]
    assert js(f"document.querySelectorAll('#grid thead th')[{col}].getAttribute('aria-sort')") == "ascending"
    js(f"document.querySelectorAll('#grid thead th')[{col}].click()")
    assert [float(v) for v in grid_column(browser, col)] == sorted(up, reverse=True)
    # a column with missing values (model-a: a failed edit, a failed score) puts them last both ways
    col_a = next(i for i, h in enumerate(heads) if h.startswith("model-a · judge-x"))
    for _ in range(2):
        js(f"document.querySelectorAll('#grid thead th')[{col_a}].click()")
        values = grid_column(browser, col_a)
        assert values[-2:] == ["", ""] and "" not in values[:-2]
    # sorting by id (text)
    js("document.querySelectorAll('#grid thead th')[0].click()")
    ids = grid_column(browser, 0)
    assert ids == sorted(ids)

    # filtering: by category, then by text
    js("var s = document.getElementById('category'); s.value = 'causal'; s.dispatchEvent(new Event('change'))")
    assert js("Array.from(document.querySelectorAll('#grid tbody tr')).filter(r => !r.hidden).length") == 6
    assert js("document.getElementById('shown').textContent") == "6 of 18 samples shown"
    js("var f = document.getElementById('filter'); f.value = 'number 3'; f.dispatchEvent(new Event('input'))")
    visible = js("Array.from(document.querySelectorAll('#grid tbody tr')).filter(r => !r.hidden).map(r => r.cells[0].dataset.v)")
    assert visible == ["2-3"]
    browser.settle(0.3)
    assert only_local(browser.requests, page) == []


def test_report_page_renders_and_fetches_nothing(browser, pages, tmp_path):
    page = pages["report"]
    browser.open(page)
    browser.settle(0.5)
    assert only_local(browser.requests, page) == []
    js = browser.js
    assert js("document.querySelectorAll('svg.histogram').length") == 3
    assert js("document.querySelectorAll('svg.histogram rect.bin').length") == 3 * 10
    assert js("Array.from(document.querySelectorAll('svg.histogram rect.bin')).some(r => r.getBBox().height > 0)")
    assert js("document.querySelector('table.subscores').innerText").count("4.") >= 1
    assert js("document.querySelectorAll('table.grid tr').length") == 1 + 18
    # a long reply wraps inside its cell instead of widening the page
    assert js("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert js("Array.from(document.querySelectorAll('pre')).every(p => p.scrollWidth <= p.clientWidth + 1)")
    save_screenshot(browser, "report", tmp_path)


def test_the_network_check_sees_a_fetch(browser, pages):
    """Control: the request log would show a page that fetched something."""
    page = pages["report"]
    browser.open(page)
    browser.js("var i = new Image(); i.src = 'http://127.0.0.1:9/tracker.png'; document.body.appendChild(i); 1")
    browser.settle(0.5)
    assert only_local(browser.requests, page) == ["http://127.0.0.1:9/tracker.png"]


# -- the compare page at 1280 px: what differs, whole labels, nothing wider than the window ----------
LONG_EDITOR = "some-lab/Qwen-Image-Edit-2509-Lightning-8steps-V2.0-bf16-fused-with-a-long-name"


def with_settings(run, *, editor="models/tiny-qwen-image-edit", seed=0, steps=0, guidance=None, size=(512, 512),
                  negative_prompt=None, judge="models/tiny-qwen3-vl-taught", config_editor=None):
    """Give a run's manifest what a real run records: edit and judge settings and the identity
    blocks of the editor and judge its services reported (64-character hashes, long paths)."""
    manifest_path = run / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["edit_settings"] = {"model": config_editor or editor, "steps": steps, "guidance": guidance,
                                 "negative_prompt": negative_prompt, "seed": seed, "width": size[0], "height": size[1],
                                 "extras": {}, "dtype": "bfloat16", "load_format": "auto", "speed_mode": "default",
                                 "threads": 1}
    manifest["config"]["editor"].update(model=config_editor or editor)
    manifest["judge_settings"] = {"model": judge, "protocol": "seed-0-10", "dtype": None, "load_format": "auto"}
    manifest["editor"] = {"model": {"model": editor, "content_hash": "e" * 64, "model_class": "QwenImageEditPipeline",
                                    "dtype": "bfloat16", "device": "cuda", "load_format": "auto", "runtime": {}},
                          "defaults": {"num_inference_steps": 30, "guidance_scale": 4.0, "negative_prompt": " "}}
    manifest["judge"]["model"] = {"model": judge, "content_hash": "j" * 64}
    manifest["git"] = {"commit": "c" * 40}
    manifest_path.write_text(json.dumps(manifest))
    return run


@pytest.fixture(scope="module")
def settings_compare(tmp_path_factory):
    """Runs that differ in seed, steps and guidance, and one of a long-named editor."""
    tmp = tmp_path_factory.mktemp("differs")
    bench = make_benchmark(tmp / "bench")
    score = lambda s: 5 + int(s.id[-1]) % 3  # noqa: E731
    runs = [
        with_settings(make_run(tmp, "seed0", bench, score)),
        with_settings(make_run(tmp, "seed1", bench, lambda s: 6 + int(s.id[-1]) % 2, color=(0, 90, 0)), seed=1),
        with_settings(make_run(tmp, "steps20", bench, score, color=(0, 0, 90)), steps=20, guidance=2.5),
        with_settings(make_run(tmp, "lightning", bench, score, color=(90, 0, 0)), editor=LONG_EDITOR),
    ]
    result = CliRunner().invoke(main, ["compare", *map(str, runs), "-o", str(tmp / "cmp")])
    assert result.exit_code == 0, result.output
    return tmp / "cmp" / "compare.html"


# every element whose content is wider than the window, or a label cell whose text is cut off
OVERFLOW_JS = """
Array.from(document.querySelectorAll('body, body *'))
  .filter(el => el.getClientRects().length && (el.scrollWidth > window.innerWidth
          || el.getBoundingClientRect().right > window.innerWidth + 1))
  .map(el => el.tagName + (el.id ? '#' + el.id : '') + '.' + el.className + ' ' + el.scrollWidth)
"""
CLIPPED_LABELS_JS = """
Array.from(document.querySelectorAll('th, td.label, #runs td, #differs td'))
  .filter(el => el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1)
  .map(el => el.innerText)
"""
# each chart label's lines inside the chart, left of the bars; their text, less any "…", from the label
CHART_LABELS_JS = """
Array.from(document.querySelectorAll('svg.barchart g.bar-label')).map(g => {
  const text = g.querySelector('text'), box = text.getBBox(), svg = g.ownerSVGElement;
  const lines = Array.from(text.querySelectorAll('tspan'));
  return {label: g.dataset.label, title: g.querySelector('title').textContent,
          lines: lines.map(t => t.textContent), left: box.x, right: box.x + box.width,
          plot: svg.querySelector('rect.bar') ? svg.querySelector('rect.bar').x.baseVal.value : 220,
          svgLeft: svg.getBoundingClientRect().left, shownLeft: text.getBoundingClientRect().left};
})
"""


def set_width(browser, width: int, height: int = 1000) -> None:
    browser.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height, deviceScaleFactor=1,
                 mobile=False)


def check_fits(browser) -> list[dict]:
    js = browser.js
    assert js("window.innerWidth") == 1280
    assert js("document.documentElement.scrollWidth") <= 1280
    assert js(OVERFLOW_JS) == []
    assert js(CLIPPED_LABELS_JS) == []
    charts = js(CHART_LABELS_JS)
    assert charts
    for label in charts:
        assert label["left"] >= 0 and label["shownLeft"] >= label["svgLeft"] - 0.5, label  # nothing cut at the left
        assert label["right"] <= label["plot"], label  # nor under the bars
        assert label["title"] == label["label"]  # the whole label on hover
        joined = "".join(label["lines"]).replace(" ", "")
        if "…" in joined:
            head, tail = joined.split("…")
            assert label["label"].replace(" ", "").startswith(head) and label["label"].replace(" ", "").endswith(tail)
        else:
            assert joined == label["label"].replace(" ", ""), label
    return charts


def test_compare_page_says_what_differs_and_fits_1280px(browser, settings_compare, pages, tmp_path):
    set_width(browser, 1280)
    try:
        browser.open(settings_compare)
        browser.settle(0.3)
        js = browser.js
        assert js("document.querySelector('.differ-summary').innerText") == \
            "The runs differ in: editor, seed, steps, guidance."
        heads = js("Array.from(document.querySelectorAll('#differs th')).map(h => h.innerText)")
        assert heads == ["run", "editor", "seed", "steps", "guidance"]
        rows = js("Array.from(document.querySelectorAll('#differs tr')).slice(1).map(r => Array.from(r.cells).map(c => c.innerText))")
        labels = [r[0].replace(" (baseline)", "") for r in rows]
        assert labels == ["tiny-qwen-image-edit · seed 0, steps default, guidance default",
                          "tiny-qwen-image-edit · seed 1, steps default, guidance default",
                          "tiny-qwen-image-edit · seed 0, steps 20, guidance 2.5", Path(LONG_EDITOR).name]
        assert rows[0][1:] == ["models/tiny-qwen-image-edit", "0", "default (30)", "default (4)"]
        assert rows[2][3:] == ["20", "2.5"] and rows[3][1] == LONG_EDITOR
        same = js("document.querySelector('p.same').innerText")
        for text in ("size 512x512", "negative prompt default (none)", "judge models/tiny-qwen3-vl-taught",
                     "protocol seed-0-10"):
            assert text in same
        charts = check_fits(browser)
        long = [c for c in charts if c["label"] == Path(LONG_EDITOR).name]
        assert long and all(len(c["lines"]) > 1 for c in long)  # wrapped, not clipped
        save_screenshot(browser, "compare-1280", tmp_path)

        browser.open(pages["compare"])  # the three-run page, a re-judge among them
        browser.settle(0.3)
        check_fits(browser)
        assert "judge" in js("document.querySelector('.differ-summary').innerText")
        save_screenshot(browser, "compare-three-1280", tmp_path)

        # controls: the checks see a clipped chart label and a page wider than the window
        js("document.querySelector('svg.barchart g.bar-label tspan').textContent = 'iny-qwen-image-edit · seed0 '.repeat(3)")
        clipped = js(CHART_LABELS_JS)[0]
        assert clipped["left"] < 0 or clipped["shownLeft"] < clipped["svgLeft"] - 0.5
        js("var d = document.createElement('div'); d.textContent = 'x'.repeat(400); document.body.appendChild(d); 1")
        assert js("document.documentElement.scrollWidth") > 1280 and js(OVERFLOW_JS)
    finally:
        set_width(browser, 1400)


def test_compare_page_of_eight_runs_fits_1280px(browser, tmp_path):
    """Eight runs of one editor that differ only in seed: labels say which seed, the grid's eight
    columns (and every other table) fit the window."""
    bench = make_benchmark(tmp_path / "bench")
    runs = [with_settings(make_run(tmp_path, f"r{i}", bench, lambda s, i=i: 5 + (int(s.id[-1]) + i) % 3), seed=i)
            for i in range(8)]
    result = CliRunner().invoke(main, ["compare", *map(str, runs), "-o", str(tmp_path / "cmp"), "--resamples", "100"])
    assert result.exit_code == 0, result.output
    set_width(browser, 1280)
    try:
        browser.open(tmp_path / "cmp" / "compare.html")
        check_fits(browser)
        heads = browser.js("Array.from(document.querySelectorAll('#grid th.run')).map(h => h.innerText.replace(/\\s+/g, ' '))")
        assert [h.rstrip(" ↕") for h in heads] == [f"tiny-qwen-image-edit · seed {i}" for i in range(8)]
        assert browser.js("document.querySelector('.differ-summary').innerText") == "The runs differ in: seed."
    finally:
        set_width(browser, 1400)
