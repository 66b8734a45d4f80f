"""Results files: append-only JSONL that survives a crash, edit/score state for resume, summary math."""

from __future__ import annotations

import json
import math

import pytest

from orchestrator.benchmark import Sample
from orchestrator.dispatch import sample_seed
from orchestrator.results import JsonlStore, ResultsError, RunDir, summarize

from conftest import png_bytes


def test_torn_last_line_is_ignored_then_cut_before_the_next_append(tmp_path):
    store = JsonlStore(tmp_path / "x.jsonl")
    store.append({"id": "a", "n": 1})
    store.append({"id": "b", "n": 2})
    with open(store.path, "ab") as f:  # a crash in the middle of a write
        f.write(b'{"id": "c", "n": 3, "respo')
    assert [r["id"] for r in store.read()] == ["a", "b"]
    store.append({"id": "c", "n": 3})
    assert [r["id"] for r in store.read()] == ["a", "b", "c"]
    assert store.path.read_text().count("\n") == 3
    assert all(json.loads(line) for line in store.path.read_text().splitlines())


def test_a_bad_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": "a"}\nGARBAGE\n{"id": "b"}\n')
    with pytest.raises(ResultsError, match=r"x\.jsonl:2: unreadable line"):
        JsonlStore(path).read()


def test_non_ascii_survives_the_round_trip(tmp_path):
    store = JsonlStore(tmp_path / "x.jsonl")
    store.append({"id": "物理_0001", "category": "物理", "response": "好"})
    assert store.read() == [{"id": "物理_0001", "category": "物理", "response": "好"}]


def sample(i: str, category="c") -> Sample:
    return Sample(id=i, category=category, instruction=f"do {i}")


def test_edit_state_trusts_only_images_that_match_their_line(tmp_path):
    run = RunDir(tmp_path / "run").create()
    a, b, c, d = sample("a", "物理"), sample("b"), sample("c"), sample("d")
    run.save_edit(a, png_bytes(color=(1, 2, 3)), {"seed": 1})
    run.save_edit(b, png_bytes(color=(4, 5, 6)), {"seed": 2})
    run.save_edit(c, png_bytes(color=(7, 8, 9)), {"seed": 3})
    run.record_edit_failure(d, "INVALID_ARGUMENT: too big", final=True)
    assert run.edit_path(a) == tmp_path / "run" / "edits" / "物理" / "a.png"
    run.edit_path(b).write_bytes(b"\x89PNG truncated")  # damaged after the fact
    run.edit_path(c).unlink()                           # lost
    done, failed = run.edit_state([a, b, c, d])
    assert set(done) == {"a"} and set(failed) == {"d"}
    _, failed = run.edit_state([a, b, c, d], retry_failed=True)
    assert failed == {}
    assert not list((tmp_path / "run" / "edits").rglob(".*tmp*"))  # no temporary files left


def test_a_transient_failure_is_retried_by_the_next_run(tmp_path):
    run = RunDir(tmp_path / "run").create()
    s = sample("a")
    run.record_edit_failure(s, "gave up after 3 attempts", final=False)
    done, failed = run.edit_state([s])
    assert done == {} and failed == {}  # neither done nor kept: it goes back into the queue


def test_score_state_keeps_only_final_scores_of_the_current_edit(tmp_path):
    run = RunDir(tmp_path / "run").create()
    edits = {i: {"sha256": f"h{i}"} for i in "abcde"}
    run.scores.append({"id": "a", "status": "OK", "score": 7.0, "edit_sha256": "ha"})
    run.scores.append({"id": "b", "status": "OK", "score": 7.0, "edit_sha256": "OLD"})  # edit redone since
    run.scores.append({"id": "c", "status": "PARSE_FAILED", "edit_sha256": "hc"})
    run.scores.append({"id": "d", "status": "ERROR", "edit_sha256": "hd"})  # judge trouble: retried
    keep = run.score_state(edits)
    assert set(keep) == {"a", "c"}
    assert set(run.score_state(edits, retry_failed=True)) == {"a"}


def test_sample_seed_depends_on_base_seed_and_id_only():
    s = sample_seed(0, "phys-01")
    assert s == sample_seed(0, "phys-01")
    assert s != sample_seed(1, "phys-01") and s != sample_seed(0, "phys-02")
    assert 0 <= s < 2**63
    # pinned: a change here changes every published result
    import hashlib

    assert s == int.from_bytes(hashlib.sha256(b"0:phys-01").digest()[:8], "big") & (2**63 - 1)


def _summary_fixture():
    samples = [sample("p1", "physical"), sample("p2", "physical"), sample("p3", "physical"),
               sample("e1", "environmental"), sample("e2", "environmental"),
               sample("r1", "referential")]
    edits = {i: {"status": "ok"} for i in ("p1", "p2", "p3", "e1", "e2")}
    edits["r1"] = {"status": "failed", "error": "INVALID_ARGUMENT"}
    scores = {
        "p1": {"status": "OK", "score": 8.0, "expected_score": 7.5},
        "p2": {"status": "OK", "score": 6.0, "expected_score": 6.5},
        "p3": {"status": "PARSE_FAILED", "score": None, "expected_score": 5.0},
        "e1": {"status": "OK", "score": 2.0, "expected_score": 3.0},
        # e2: edited, not judged yet
    }
    return samples, edits, scores


def test_summary_macro_micro_and_failure_counts():
    s = summarize(*_summary_fixture())
    phys, env, ref = s["categories"]["physical"], s["categories"]["environmental"], s["categories"]["referential"]
    assert (phys["samples"], phys["scored"], phys["score_failures"], phys["edit_failures"]) == (3, 2, 1, 0)
    assert phys["mean"] == 7.0 and phys["min"] == 6.0 and phys["max"] == 8.0
    assert math.isclose(phys["expected_mean"], (7.5 + 6.5 + 5.0) / 3)
    assert (env["scored"], env["pending"], env["mean"]) == (1, 1, 2.0)
    assert (ref["edit_failures"], ref["scored"], ref["mean"]) == (1, 0, None)
    assert s["micro_mean"] == pytest.approx((8 + 6 + 2) / 3)
    assert s["macro_mean"] == pytest.approx((7.0 + 2.0) / 2)  # categories without a score are left out
    assert (s["samples"], s["scored"], s["edit_failures"], s["score_failures"], s["pending"]) == (6, 3, 1, 1, 1)
    assert (s["min"], s["max"], s["complete"]) == (2.0, 8.0, False)


def test_summary_failures_as_zero():
    s = summarize(*_summary_fixture(), failures_as="zero")
    assert s["categories"]["physical"]["mean"] == pytest.approx((8 + 6 + 0) / 3)
    assert s["categories"]["referential"]["mean"] == 0.0
    assert s["micro_mean"] == pytest.approx((8 + 6 + 0 + 2 + 0) / 5)
    assert s["macro_mean"] == pytest.approx(((14 / 3) + 2.0 + 0.0) / 3)
    assert s["min"] == 0.0


def test_an_edit_made_for_another_instruction_is_redone(tmp_path):
    # The benchmark was fixed between sessions (same id, new instruction): the old image shows the
    # old instruction and must not be judged against the new one.
    run = RunDir(tmp_path / "run").create()
    old, kept_failure = sample("a"), sample("b")
    run.save_edit(old, png_bytes(), {"instruction": old.instruction})
    run.record_edit_failure(kept_failure, "INVALID_ARGUMENT: instruction too long", final=True)
    unchanged = sample("c")
    run.save_edit(unchanged, png_bytes(color=(9, 9, 9)), {"instruction": unchanged.instruction})
    fixed_a = Sample(id="a", category="c", instruction="make the sky red")
    fixed_b = Sample(id="b", category="c", instruction="a shorter instruction")
    done, failed = run.edit_state([fixed_a, fixed_b, unchanged])
    assert set(done) == {"c"} and failed == {}


def test_a_long_non_ascii_category_still_makes_a_valid_folder_name(tmp_path):
    # 120 characters of CJK are 360 bytes: over the 255-byte file name limit, the first edit's
    # write would fail mid-run (after the editors did the work) instead of being saved.
    run = RunDir(tmp_path / "run").create()
    s = sample("a", category="物理" * 60)
    run.save_edit(s, png_bytes(), {"instruction": s.instruction})
    assert set(run.edit_state([s])[0]) == {"a"}
    assert len(run.edit_path(s).parent.name.encode()) <= 255
    short = sample("b", category="物理" * 20)  # short enough: the folder name is the category
    assert run.edit_path(short).parent.name == "物理" * 20


def test_a_parse_failed_line_kept_values_enter_no_mean_and_no_count_of_judged():
    """A sample failing in one question keeps its other questions' values (sub-scores parsed.<name>):
    still a score failure in every count, in none of the run's means, its own columns in the table."""
    from orchestrator.results import combine_repeats, sample_value
    from orchestrator.tables import scores_table, summary_csv

    samples = [sample("p1", "physical"), sample("p2", "physical")]
    edits = {"p1": {"status": "ok"}, "p2": {"status": "ok"}}
    scores = {"p1": {"status": "OK", "score": 1.0, "sub_scores": {"yes": 1.0, "IF": 4.0}},
              "p2": {"status": "PARSE_FAILED", "score": None, "sub_scores": {"parsed.yes": 0.0, "parsed.IF": 9.0},
                     "error": "SC: no score"}}
    for failures_as, mean in (("exclude", 1.0), ("zero", 0.5)):
        s = summarize(samples, edits, scores, failures_as=failures_as)
        phys = s["categories"]["physical"]
        assert (phys["scored"], phys["score_failures"], phys["mean"]) == (1, 1, mean)
        assert phys["sub_score_means"] == {"yes": 1.0, "IF": 4.0} == s["sub_score_means"]
        assert "parsed" not in summary_csv(s)
    assert sample_value(edits["p2"], scores["p2"]) is None and sample_value(edits["p2"], scores["p2"], "zero") == 0.0
    table = scores_table(samples, edits, scores).to_pydict()
    assert table["status"] == ["OK", "PARSE_FAILED"]
    assert table["sub.IF"] == [4.0, None] and table["sub.parsed.IF"] == [None, 9.0]
    # repeats: the OK repeats' means only; a failed repeat's kept values are not averaged in
    merged = combine_repeats([{**scores["p1"], "repeat": 0}, {**scores["p2"], "repeat": 1}])
    assert merged["sub_scores"] == {"yes": 1.0, "IF": 4.0} and merged["repeat_statuses"] == ["OK", "PARSE_FAILED"]
