"""compare.html and report.html in a real browser (headless Chromium over the DevTools protocol,
tests/orchestrator/browser.py): the tables, charts and grid are rendered, sorting and filtering
work, and the pages fetch nothing but themselves and their inline data. A screenshot of each goes
to $EDITFLEET_SCREENSHOTS (when set) for a look by eye."""

from __future__ import annotations

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
