"""Which way a number is better, declared by the protocol (suites/shared/protocol.py, "Direction"): its
questions' `better:` and `label:`, the headline's direction from the combine rule, and what load refuses.
Pure and quick; compare's ranks over real MagicBrush runs: test_metrics_run.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import stats
from orchestrator.score_direction import of_protocol
from suites.shared.combine import GENERIC_RULES
from suites.shared.protocol import ProtocolError, parse_protocol


def protocol(text: str, name: str = "p"):
    return parse_protocol(f"name: {name}\n" + text, Path(f"{name}.yaml"), GENERIC_RULES)


METRICS = """combine: metrics
range: [-1, 1]
questions:
  l1: {images: [edited, reference], scores: [l1], label: L1, better: lower, user: x}
  clip_i: {images: [edited, reference], scores: [clip_i], label: CLIP-I, user: x}
"""


def test_the_headline_takes_its_questions_direction():
    p = protocol(METRICS)
    assert (p.better, p.score_label) == ("lower", "L1")
    assert [q.shown for q in p.questions] == ["L1 \u2193", "CLIP-I \u2191"]
    d = of_protocol(p)
    assert (d.score.shown, d.of("clip_i").better, d.of("unknown").better) == ("L1 \u2193", "higher", "higher")
    # a judge's 0-10 score: higher, named "score"
    seed = protocol("combine: single\nquestions:\n  score: {user: x}\n")
    assert (seed.better, seed.score_label) == ("higher", "score")


@pytest.mark.parametrize("text, message", [
    (METRICS.replace("better: lower", "better: smaller"), "better must be higher or lower, got 'smaller'"),
    (METRICS.replace(", better: lower", ""), "question(s) l1: a distance (l1, l2) is better lower: declare `better: lower`"),
    ("combine: mean\nquestions:\n  a: {user: x, better: lower}\n  b: {user: y}\n",
     "combine 'mean' makes one score of its questions, higher taken as better; question(s) a say better: lower"),
])
def test_what_load_refuses(text, message):
    with pytest.raises(ProtocolError, match="p.yaml: ") as caught:
        protocol(text)
    assert message in str(caught.value)


def test_competition_ranks_lower_first():
    values = {"A": 0.16, "B": 0.14, "C": None, "D": 0.14}
    assert stats.competition_ranks(values, higher_is_better=False) == {"A": 3, "B": 1, "C": None, "D": 1}
    assert stats.competition_ranks(values) == {"A": 1, "B": 2, "C": None, "D": 2}


def test_emu_edit_is_compared_per_split():
    from suites.emu_edit import headline as emu
    from suites.shared.samples import Sample

    samples = [Sample(id=f"{split}_{i}", category="background", instruction="x", image_bytes=b"x",
                      extras={"split": split}) for split, i in (("test", 0), ("validation", 0), ("test", 1))]
    assert {name: [s.id for s in group] for name, group in emu.scopes(samples).items()} == {
        "split test": ["test_0", "test_1"], "split validation": ["validation_0"]}
    assert (emu.LABELS["l1"], emu.LABELS["clip_dir"]) == ("L1 \u2193", "CLIP-dir \u2191")
