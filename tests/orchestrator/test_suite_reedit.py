"""RE-Edit reproduced: a small RE-Edit.json in the release's record format (the seed's records plus
rationale_short_en, five English subsets) made here; its loading and bad items; the layout the
official scorer reads (single_scoring_part_vllm/data_loader.py); known judge replies through parsing,
the protocol's combination and the suite's aggregation, checked against statistics_calculator.py's
formulas computed here by hand; and one end-to-end run: edits imported from the layout, judged over
the tiny judge's OpenAI-compatible endpoint with known replies, summary / console / report, export.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from conftest import request_text as _text, run_orchestrator, start_orchestrator, wait_orchestrator
from orchestrator.benchmark import BenchmarkError, load_benchmark
from suites.reedit.data import SUBSETS
from suites.reedit import layout as reedit_layout

# Samples per subset (the end-to-end run: fewer, the judge endpoint answers one request at a time).
PER_SUBSET = {"physical": 3, "environmental": 3, "cultural": 2, "causal": 3, "referential": 3}
E2E_PER_SUBSET = {"physical": 1, "environmental": 1, "cultural": 1, "causal": 2, "referential": 1}


def png(color, size=(24, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def items(per_subset: dict = PER_SUBSET) -> list[dict]:
    """The release's records (field order as in RE-Edit.json: the image before the rationale)."""
    out, n = [], 0
    for s, subset in enumerate(SUBSETS):
        for k in range(per_subset[subset]):
            path = f"generated_images_2/{n:05d}_{subset}_medium.png"
            if (subset, k) == ("causal", 1):
                path = "img_00042_causal.png"          # no leading number, no folder: the layout uses 00042
            out.append({"subset": subset, "original_description_en": f"Scene {n}: a {subset} setup",
                        "edit_instruction_en": f"Apply the {subset} edit number {n}",
                        "src_img_b64": base64.b64encode(png((10 * n, 100, 50 + s))).decode(),
                        "rationale_short_en": f"Challenge {n}: the {subset} consequence must show",
                        "tags": ["t"], "difficulty": "medium", "original_image_path": path, "seed": 42})
            n += 1
    return out


def make_release(folder: Path, records: list[dict] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "RE-Edit.json"
    path.write_text(json.dumps(records if records is not None else items(), ensure_ascii=False, indent=2),
                    encoding="utf-8")
    return path


def test_release_loads_with_the_seeds_ids_and_the_task_challenge(tmp_path):
    bench = load_benchmark(make_release(tmp_path))
    assert bench.format == "re-edit" and bench.categories == list(SUBSETS)
    first = bench.samples[0]
    assert first.id == "physical_0000" and first.category == "physical"
    assert first.instruction == "Apply the physical edit number 0" and first.description == "Scene 0: a physical setup"
    assert first.variables == {"rationale": "Challenge 0: the physical consequence must show",
                               "original_description": "Scene 0: a physical setup"}
    assert (first.extras["image_id"], first.extras["pair_id"]) == ("00000", "00000_physical_medium")
    assert first.source_bytes() == png((0, 100, 50))
    odd = next(s for s in bench.samples if s.id == "causal_0001")
    # benchmark_loader.py strips the extension only from a path with a folder
    assert (odd.extras["image_id"], odd.extras["pair_id"]) == ("00042", "img_00042_causal.png")
    # where the scorer reads each edit: <subset>/<pair_id>_primary.png, or <image number>_primary.png
    assert reedit_layout.edit_relpath(first) == "physical/00000_physical_medium_primary.png"
    assert reedit_layout.edit_relpath(odd) == "causal/00042_primary.png"
    # detection reads the first item only, however large its image (here past the first MiB read)
    records = items()
    noise = Image.frombytes("RGB", (700, 600), os.urandom(700 * 600 * 3))
    buf = io.BytesIO()
    noise.save(buf, format="PNG")
    records[0]["src_img_b64"] = base64.b64encode(buf.getvalue()).decode()
    assert len(records[0]["src_img_b64"]) > 1 << 20
    assert load_benchmark(make_release(tmp_path / "big", records)).format == "re-edit"
    # the seed's own file (no rationale_short_en) is still the seed's format
    seed = [{k: v for k, v in r.items() if k != "rationale_short_en"} for r in items()]
    assert load_benchmark(make_release(tmp_path / "seed", seed)).format == "seed"


def test_bad_release_items_name_the_item_and_the_field(tmp_path):
    records = items()
    del records[0]["rationale_short_en"]
    records[1]["subset"] = "物理"
    records[3]["original_image_path"] = "generated_images_2/cover.png"
    records[5]["original_image_path"] = "x/00004_environmental_hard.png"     # records[4]'s number again
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(make_release(tmp_path, records), "re-edit")
    text = str(err.value)
    assert "RE-Edit.json[0]: sample 'physical_0000': missing or non-string field(s): rationale_short_en" in text
    assert ("RE-Edit.json[1]: sample '物理_0000': subset '物理' is not one of RE-Edit's five "
            "(physical, environmental, cultural, causal, referential)") in text
    assert ("RE-Edit.json[3]: sample 'environmental_0000': original_image_path 'generated_images_2/cover.png' "
            "has no number in its file name") in text
    assert ("RE-Edit.json[5]: sample 'environmental_0002': original_image_path 'x/00004_environmental_hard.png': "
            "image number 00004 already used in subset 'environmental' by RE-Edit.json[4]") in text
    assert text.startswith("4 problem(s) in the benchmark; nothing was started")


# -- known replies through parsing, the protocol's combination and the suite's aggregation ----------
def answers(n: int) -> tuple[str, int, tuple[int, int]]:
    """Sample n's known judgement: the dimension's answer, IF, SC [editing success, over-editing]."""
    return ("yes" if n % 3 != 1 else "no"), (n * 7 + 3) % 11, ((n * 3) % 11, (n * 5 + 2) % 11)


def replies(n: int) -> dict[str, str]:
    """The replies a Qwen3-VL judge gives, in the forms the prompts ask for (and a fenced one)."""
    answer, if_score, (success, over) = answers(n)
    dimension = (f'{{\n"score" : "{answer}",\n"reasoning" : "sample {n}"\n}}' if n % 2 else
                 f'```json\n{{"score": "{answer}", "reasoning": "checked the challenge"}}\n```')
    return {"dimension": dimension,
            "IF": f'{{\n"score": {if_score},\n"reason": "sample {n} follows it"\n}}',
            "SC": f'{{\n"score" : [{success}, {over}],\n"reasoning" : "sample {n}"\n}}'}


UNPARSABLE = "cultural_0000"   # its dimension reply says neither yes nor no, twice: PARSE_FAILED
MISSING = "causal_0000"        # no edit file in the imported folder
# (known replies) replies that cannot be read, twice: the sample is PARSE_FAILED, its other questions' values kept
UNREADABLE = {UNPARSABLE: {"dimension": "It is plausible, I think."},
              "physical_0001": {"IF": "It follows the instruction well."}}
FAILED_QUESTIONS = {UNPARSABLE: {"dimension"}}


def hand_computed(failed: set, *, failures_as: str = "exclude", per_subset: dict = PER_SUBSET,
                  failed_questions: dict | None = None) -> dict:
    """statistics_calculator.py by hand. Per subset: yes_rate = 100 * yes / n; IF: mean of the scores;
    SC: mean of (s0 + s1) / 2 (and SC_min: mean of min). Over all samples: the same, pooled.
    A failed sample (`failed`: its edit) is left out (the official scripts skip a missing edit file).
    A failed question (`failed_questions`: sample id -> question names) is left out of its own metric
    only ("exclude"), or, as the official scripts count it ("zero"), kept in its dimension's
    denominator as not "yes" and left out of IF and SC; the official scripts run each metric on its
    own, so the sample's other answers count."""
    failed_questions = failed_questions or {}
    rows: dict[str, list] = {s: [] for s in SUBSETS}
    n = 0
    for subset in SUBSETS:
        for k in range(per_subset[subset]):
            sample_id = f"{subset}_{k:04d}"
            answer, if_score, (a, b) = answers(n)
            n += 1
            lost = {"dimension", "IF", "SC"} if sample_id in failed else failed_questions.get(sample_id, set())
            # the official rule ("zero"): an unread dimension reply counts as "no"; a failed edit is skipped
            no = 0 if failures_as == "zero" and sample_id not in failed else None
            rows[subset].append((no if "dimension" in lost else (1 if answer == "yes" else 0),
                                 None if "IF" in lost else if_score,
                                 None if "SC" in lost else (a + b) / 2, None if "SC" in lost else min(a, b)))

    def table(values):
        def mean(i):
            got = [v[i] for v in values if v[i] is not None]
            return sum(got) / len(got) if got else None
        yes = mean(0)
        return {"yes_rate": None if yes is None else 100 * yes, "IF": mean(1), "SC": mean(2), "SC_min": mean(3)}
    return {"dimensions": {s: table(v) for s, v in rows.items()},
            "overall": table([v for vs in rows.values() for v in vs])}


def check_block(block: dict, expected: dict) -> None:
    for name, want in expected["dimensions"].items():
        got = block["dimensions"][name]
        assert {k: got[k] for k in want} == {k: v if v is None else pytest.approx(v) for k, v in want.items()}, name
    assert {k: block["overall"][k] for k in expected["overall"]} == pytest.approx(expected["overall"])


def test_known_replies_give_statistics_calculator_numbers(tmp_path):
    from suites.reedit import headline as reedit_suite
    from suites.shared.combine import parsed_sub_scores
    from suites.shared.parsing import parse_for
    from suites.protocols import load_protocols

    bench = load_benchmark(make_release(tmp_path))
    proto = load_protocols().get("re-edit")
    assert [q.name for q in proto.questions] == ["dimension", "IF", "SC"]
    edits, scores = {}, {}
    for n, sample in enumerate(bench.samples):
        edits[sample.id] = {"status": "ok"}
        parsed = {}
        texts = {**replies(n), **UNREADABLE.get(sample.id, {})}
        for question in proto.questions:
            parsed[question.name] = parse_for(proto.parser_name(question))(texts[question.name], len(question.scores),
                                                                           proto.low, proto.high)
        if sample.id in UNREADABLE:
            assert [q for q, p in parsed.items() if not p.ok] == list(UNREADABLE[sample.id])
            # as the judge records it: PARSE_FAILED, the other questions' values kept as parsed.<name>
            kept = parsed_sub_scores(proto, {q: p.scores for q, p in parsed.items() if p.ok})
            scores[sample.id] = {"status": "PARSE_FAILED", "score": None, "sub_scores": dict(kept),
                                 "expected_score": None}
            continue
        assert all(p.ok for p in parsed.values()), (sample.id, parsed)
        headline, subs = proto.combine_scores({name: p.scores for name, p in parsed.items()})
        assert headline == (1.0 if answers(n)[0] == "yes" else 0.0)
        scores[sample.id] = {"status": "OK", "score": headline, "sub_scores": dict(subs),
                             "expected_score": 0.25 + 0.5 * headline}
    block = reedit_suite.headline(bench.samples, edits, scores)
    lost = {sample_id: set(texts) for sample_id, texts in UNREADABLE.items()}
    check_block(block, hand_computed(set(), failed_questions=lost))
    cultural, physical = block["dimensions"]["cultural"], block["dimensions"]["physical"]
    assert cultural["failures"] == 1 and cultural["judged"] == 1 and cultural["answers"] == 1
    assert cultural["IF_n"] == cultural["SC_n"] == 2   # its IF and SC still count
    # physical_0001 failed in IF only: a failure, yet its "no" counts in the yes share, as the official
    # scripts (each metric run on its own) count it; its IF does not
    assert physical["failures"] == 1 and physical["judged"] == 2
    assert (physical["answers"], physical["no"], physical["IF_n"], physical["SC_n"]) == (3, 1, 2, 3)
    assert physical["yes_rate"] == pytest.approx(100 * 2 / 3)
    assert physical["IF"] == pytest.approx((answers(0)[1] + answers(2)[1]) / 2)
    assert "(values: dimension 3, IF 2, SC 3)" in reedit_suite.console(block)
    # expected yes rate: the mean of P("yes") over the samples that have one
    with_p = [0.25 + 0.5 * (answers(n)[0] == "yes") for n in range(PER_SUBSET["physical"]) if n != 1]
    assert physical["expected_yes_rate"] == pytest.approx(100 * sum(with_p) / len(with_p))
    # --failures zero: the official rule (an unparsable dimension reply counts, as not "yes"; an
    # unparsable IF or SC reply is left out of IF or SC)
    zero = reedit_suite.headline(bench.samples, edits, scores, failures_as="zero")
    check_block(zero, hand_computed(set(), failures_as="zero", failed_questions=lost))
    assert zero["dimensions"]["physical"]["IF_n"] == 2  # the unread IF reply is not an IF of 0
    # a failed edit: the official scripts skip an item whose edit file is missing, in every metric
    failed_edit = bench.samples[0].id
    skipped = reedit_suite.headline(bench.samples, {**edits, failed_edit: {"status": "failed"}}, scores,
                                    failures_as="zero")
    check_block(skipped, hand_computed({failed_edit}, failures_as="zero", failed_questions=lost))


# -- end to end --------------------------------------------------------------------------------
KEY_ENV = "EDITFLEET_TEST_REEDIT_KEY"
KEY = "sk-editfleet-reedit-3b9d42"


def cli(*args, timeout=300) -> tuple[int, str]:
    return run_orchestrator(*args, key=(KEY_ENV, KEY), timeout=timeout)


def cli_start(*args):
    return start_orchestrator(*args, key=(KEY_ENV, KEY))


def p_yes(n: int) -> float:
    return 0.9 if answers(n)[0] == "yes" else 0.2


def dimension_logprobs(n: int) -> list | None:
    """The top_logprobs of sample n's dimension reply where it has the prompt's own form
    ('{\n"score" : "yes", ...'): P(yes) at the answer's position (the fenced replies get none)."""
    import math

    if not n % 2:
        return None
    answer = answers(n)[0]
    rest = replies(n)["dimension"].split(answer, 1)[1]
    return [('{\n"score" : "', []), (answer, [("yes", math.log(p_yes(n))), ("no", math.log(1 - p_yes(n)))]),
            (rest, [])]


def make_results_layout(folder: Path, bench) -> Path:
    """Edits made elsewhere, where the RE-Edit pipeline saves them: <subset>/<pair_id>_primary.png."""
    for n, sample in enumerate(bench.samples):
        if sample.id != MISSING:
            path = folder / reedit_layout.edit_relpath(sample)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png((250 - 9 * n, 5 + 9 * n, 128), size=(32, 32)))
    return folder


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    from conftest import TINY_JUDGE, require_tiny_models
    from tests.openai_endpoint import Fault, FaultProxy, TransformersServe

    require_tiny_models()
    base = tmp_path_factory.mktemp("reedit")
    release = make_release(base / "release", items(E2E_PER_SUBSET))
    bench = load_benchmark(release)
    results = make_results_layout(base / "results", bench)
    run = base / "imported"
    importing = cli_start("import", str(results), "--layout", "re-edit", "--benchmark", str(release),
                          "--output", str(run))  # while the endpoint starts
    try:
        server = TransformersServe(TINY_JUDGE, base / "serve.log").start()
    except BaseException:
        importing.kill()
        importing.wait()
        raise
    proxy = FaultProxy(server.url, api_key=KEY).start()
    try:
        imported = wait_orchestrator(importing)
        for n, sample in enumerate(bench.samples):
            texts = replies(n)
            if sample.id == UNPARSABLE:
                texts["dimension"] = "It is plausible, I think."
            needles = {"dimension": f"Task Challenge: {sample.variables['rationale']}\n",
                       "IF": f"**Editing instruction**: {sample.instruction}\n",
                       "SC": f"Edit Instruction: {sample.instruction}\n\nNow You have received"}
            for question, needle in needles.items():
                fault = Fault("reply", text=texts[question],
                              logprobs=dimension_logprobs(n) if question == "dimension" else None)
                proxy.when(lambda body, needle=needle: needle in _text(body), fault, forever=True)
        scored = cli("score", str(run), "--judge-backend", "openai", "--judge-base-url", proxy.url,
                     "--judge-model", server.model, "--api-key-env", KEY_ENV, "--protocol", "re-edit",
                     "--output", str(base / "judged"), "--progress", "plain",
                     "--allow-failures")  # the missing edit (and any unread reply) failed
        yield {"base": base, "results": results, "bench": bench, "judged": base / "judged", "import": imported,
               "score": scored, "requests": proxy.chat_requests}
    finally:
        proxy.stop()
        server.stop()


def test_imported_edits_judged_like_statistics_calculator(judged):
    code, output = judged["import"]
    missing = next(s for s in judged["bench"].samples if s.id == MISSING)
    assert reedit_layout.edit_relpath(missing) == "causal/00003_causal_medium_primary.png"
    assert code == 0 and "missing (recorded as failed edits) (1):\n    causal/00003_causal_medium_primary.png" in output, output
    code, output = judged["score"]
    assert code == 0, output
    block = json.loads((judged["judged"] / "summary.json").read_text())["suite"]
    check_block(block, hand_computed({MISSING}, per_subset=E2E_PER_SUBSET, failed_questions=FAILED_QUESTIONS))
    assert block["dimensions"]["cultural"]["IF_n"] == 1  # its IF and SC were read: they count
    assert block["dimensions"]["causal"]["failures"] == 1 and block["dimensions"]["cultural"]["failures"] == 1
    assert block["missing_dimensions"] == ["cultural"]   # its only sample failed: no yes rate, never a 0
    assert "  Cultural: n/a  (0 yes)" in output
    row = " | ".join(f"{name.capitalize()} {'n/a' if t['yes_rate'] is None else format(t['yes_rate'], '.1f')}"
                     for name, t in block["dimensions"].items())
    assert f"  as the README table: {row} | IF {block['overall']['IF']:.1f} | SC {block['overall']['SC']:.1f}" in output
    # the expected yes rate: the mean P("yes") (from the endpoint's top_logprobs) where a reply gave one
    with_p = [n for n, s in enumerate(judged["bench"].samples) if n % 2 and s.id != MISSING]
    assert block["overall"]["expected_n"] == len(with_p)
    assert block["overall"]["expected_yes_rate"] == pytest.approx(100 * sum(map(p_yes, with_p)) / len(with_p))
    physical = block["dimensions"]["physical"]
    assert f"  Physical: {physical['yes_rate']:.2f}  ({physical['yes']} yes)" in output, output
    assert f"  IF: {block['overall']['IF']:.2f}  SC: {block['overall']['SC']:.2f}" in output
    report = (judged["judged"] / "report.html").read_text(encoding="utf-8")
    assert "<h2>RE-Edit</h2>" in report and f"<b>{block['overall']['yes_rate']:.2f}</b>" in report
    # every question saw the original, then the edit, then the text, in one user message
    asked = [r for r in judged["requests"] if r.fault == "reply"]
    assert len(asked) >= 3 * (len(judged["bench"].samples) - 1)
    for request in asked:
        assert len(request.body["messages"]) == 1
        assert [c["type"] for c in request.body["messages"][0]["content"]] == ["image_url", "image_url", "text"]
        assert request.body["max_tokens"] == 512  # the suite's own reply budget (re-edit.yaml max_new_tokens)


def test_export_writes_where_the_official_scorer_reads(judged, tmp_path):
    code, output = cli("export", str(judged["judged"]), "--layout", "re-edit", "--to", str(tmp_path), "--method", "m")
    assert code == 0, output
    written = sorted(str(p.relative_to(tmp_path / "m")) for p in (tmp_path / "m").rglob("*.png"))
    expected = sorted(reedit_layout.edit_relpath(s) for s in judged["bench"].samples if s.id != MISSING)
    assert written == expected
    for rel in written:
        assert (tmp_path / "m" / rel).read_bytes() == (judged["results"] / rel).read_bytes()
    assert f"missing edits, not written (never replaced by the source image) (1):\n    {MISSING}:" in output
