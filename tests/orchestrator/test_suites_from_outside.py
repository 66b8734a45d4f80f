"""A lab's own suite, defined outside editfleet: its folder (tests/suites/<one folder>: loader, protocol
with its own combine rule, headline, layout) is copied into a temporary suites directory and driven end
to end through the real CLI: `suites`, `validate`, `run` (a real tiny editor; the judge a real scorer
over `transformers serve` behind the tests' proxy, which answers with a scripted reply), `score`,
`report`, `export`, `import`, `compare`. Nothing in the repository outside that folder names the suite:
this test reads its name from the catalog. Also: the built-in suites decide their protocol (a KRIS-Bench
run with no protocol flag is judged with `kris`; with another protocol its headline is absent, and said
so)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY_EDITOR, TINY_JUDGE, require_tiny_models, run_orchestrator
from suites.catalog import catalog
from tests.openai_endpoint import Fault, FaultProxy, TransformersServe

KEY_ENV = "EDITFLEET_TEST_LAB_KEY"
KEY = "sk-editfleet-lab-51c0"
(LAB_FOLDER,) = [p for p in (REPO / "tests" / "suites").iterdir() if (p / "__init__.py").is_file()]
REPLY = '{"score": 4}'


def lines(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The suite folder copied into a suites directory, its data, and a scripted judge endpoint."""
    require_tiny_models()
    base = tmp_path_factory.mktemp("lab")
    suites_dir = base / "lab-suites"
    shutil.copytree(LAB_FOLDER, suites_dir / LAB_FOLDER.name, ignore=shutil.ignore_patterns("__pycache__"))
    (suite,) = [s for s in catalog([suites_dir]).suites.values() if not s.builtin]
    bench = suites_dir / LAB_FOLDER.name / "example" / "bench.json"  # the suite's own example data
    server = TransformersServe(TINY_JUDGE, base / "serve.log").start()
    proxy = FaultProxy(server.url, api_key=KEY).start()
    proxy.when(lambda body: True, Fault("reply", text=REPLY), forever=True)
    judge = ["--judge-backend", "openai", "--judge-base-url", proxy.url, "--judge-model", server.model,
             "--api-key-env", KEY_ENV]
    try:
        yield {"base": base, "dir": suites_dir, "suite": suite, "bench": bench, "judge": judge, "proxy": proxy,
               "model": server.model}
    finally:
        proxy.stop()
        server.stop()


def cli(lab, *args, timeout=300) -> tuple[int, str]:
    return run_orchestrator("--suites-dir", str(lab["dir"]), *args, key=(KEY_ENV, KEY), timeout=timeout)


@pytest.fixture(scope="module")
def lab_run(lab):
    out = lab["base"] / "run"
    config = lab["base"] / "run.yaml"
    config.write_text(yaml.safe_dump({  # no judge.protocol: the suite's own
        "judge": {"backend": "openai", "base_url": lab["proxy"].url, "model": lab["model"], "api_key_env": KEY_ENV}}))
    code, output = cli(lab, "run", "--config", str(config), "--benchmark", str(lab["bench"]), "--editor-model",
                       str(TINY_EDITOR), "--editors", "1", "--steps", "2", "--size", "32", "--output", str(out),
                       "--progress", "plain", "--allow-failures")  # replies the proxy does not answer may not parse
    return {"code": code, "output": output, "out": out}


def test_the_lab_suite_is_listed_and_validates_only_where_its_folder_is_given(lab):
    suite = lab["suite"]
    code, output = cli(lab, "suites")
    assert code == 0, output
    assert f"  {suite.name}  {suite.title}  [{lab['dir'] / LAB_FOLDER.name}]" in output
    assert f"protocols: {suite.default_protocol} (default)" in output
    code, output = cli(lab, "suites", "show", suite.name)
    assert code == 0 and all(rule in output for rule in suite.rules), output
    assert (LAB_FOLDER / "README.md").read_text(encoding="utf-8").splitlines()[0] in output

    code, output = cli(lab, "validate", str(lab["bench"]))
    assert code == 0, output
    assert f"{suite.name} format, 3 samples OK" in output
    # without its folder, nothing knows the suite (the seed's catch-all .json reader refuses the file)
    code, output = run_orchestrator("validate", str(lab["bench"]))
    assert code != 0 and suite.name not in output, output
    code, output = run_orchestrator("validate", str(lab["bench"]), "--format", suite.name)
    assert code != 0 and f"unknown suite {suite.name!r}" in output and "--suites-dir" in output


def test_a_run_of_the_lab_suite_uses_its_protocol_rule_and_headline(lab, lab_run):
    suite = lab["suite"]
    assert lab_run["code"] == 0, lab_run["output"]
    out = lab_run["out"]
    scores = lines(out / "scores.jsonl")
    assert len(scores) == 3 and {s["status"] for s in scores} == {"OK"}
    assert all(s["score"] == 8.0 and s["sub_scores"] == {"raw": 4.0} for s in scores)  # its own rule: 4 doubled
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["benchmark"]["format"] == suite.name
    assert manifest["judge"]["protocol"]["name"] == suite.default_protocol  # no --protocol: the suite's own
    assert manifest["judge_settings"]["protocol"] == suite.default_protocol  # recorded by name, never ""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["suite"] == {"format": suite.name, "name": suite.title, "raw_mean": 4.0, "judged": 3, "samples": 3}
    assert "suite_absent" not in summary
    assert f"{suite.title} raw mean: 4.0 over 3/3 samples" in lab_run["output"]
    # the prompt carried the sample's own variable (its kind) through the lab's protocol
    assert any("Kind: shape. Instruction: Make picture a2 warmer." in json.dumps(b.body) for b in lab["proxy"].chat_requests)


def test_score_report_export_import_and_compare_work_on_the_lab_suite(lab, lab_run):
    suite = lab["suite"]
    run = lab_run["out"]
    assert lab_run["code"] == 0, lab_run["output"]
    code, output = cli(lab, "score", str(run), *lab["judge"], "--output", str(lab["base"] / "rejudged"),
                       "--progress", "plain", "--allow-failures")
    assert code == 0, output
    assert json.loads((lab["base"] / "rejudged" / "summary.json").read_text())["suite"]["raw_mean"] == 4.0

    (run / "report.html").unlink()
    code, output = cli(lab, "report", str(run))
    assert code == 0, output
    assert f"<h2>{suite.title}</h2><p>raw mean 4.0</p>" in (run / "report.html").read_text(encoding="utf-8")

    exported = lab["base"] / "exported"
    code, output = cli(lab, "export", str(run), "--layout", suite.name, "--to", str(exported), "--method", "ours")
    assert code == 0, output
    assert sorted(p.name for p in (exported / "ours").glob("*.png")) == ["a1.png", "a2.png", "a3.png"]

    imported = lab["base"] / "imported"
    code, output = cli(lab, "import", str(exported), "--layout", suite.name, "--method", "ours",
                       "--benchmark", str(lab["bench"]), "--output", str(imported))
    assert code == 0, output
    assert "Imported 3 edit(s)" in output and f"(protocol: {suite.default_protocol}, the suite's own)" in output

    code, output = cli(lab, "compare", str(run), str(lab["base"] / "rejudged"), "--output", str(lab["base"] / "cmp"))
    assert code == 0, output
    assert json.loads((lab["base"] / "cmp" / "compare.json").read_text())["headline"] == "micro_mean"


def test_no_file_outside_its_folder_names_the_lab_suite():
    """Adding a suite touches no other file: its name appears nowhere in the repository's tracked files
    but in its own folder."""
    name = catalog([LAB_FOLDER]).suites.keys() - catalog().suites.keys()
    (name,) = name
    hits = subprocess.run(["git", "-C", str(REPO), "grep", "--untracked", "-l", "-i", name],
                          capture_output=True, text=True).stdout.split()
    assert hits and all(h.startswith(f"tests/suites/{LAB_FOLDER.name}/") for h in hits), hits


def test_a_lab_suite_that_cannot_be_used_is_one_line_naming_its_folder(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(LAB_FOLDER, broken, ignore=shutil.ignore_patterns("__pycache__"))
    (broken / "__init__.py").write_text("from . import nothing_here\n")
    code, output = run_orchestrator("--suites-dir", str(broken), "suites")
    assert code != 0 and "Traceback" not in output
    assert f"{broken}: cannot import the suite: ImportError" in output
    (broken / "__init__.py").write_text(re.sub(r'default_protocol="[^"]*"', 'default_protocol="nowhere"',
                                              (LAB_FOLDER / "__init__.py").read_text()))
    code, output = run_orchestrator("--suites-dir", str(broken), "suites")
    assert code != 0 and "default protocol 'nowhere' is no suite's protocol" in output
