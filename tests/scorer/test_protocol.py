"""Protocol files: loading, hashing, category prompts, template variables, combination."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import pytest

from editfleet_common.errors import InvalidInput
from suites.shared.protocol import ProtocolError
from suites.catalog import catalog
from suites.protocols import load_protocols

# Every shipped suite's protocols (suites/<suite>/<name>.yaml), as the catalog finds them: a suite
# added later is in this list without touching this file.
BUILTIN = sorted(catalog().protocol_names())
SEED_CATEGORIES = ["physical", "environmental", "cultural", "causal", "referential"]
SEED_CHINESE = {"物理": "physical", "环境": "environmental", "社会": "cultural", "因果": "causal", "指代": "referential"}


@pytest.fixture(scope="module")
def registry():
    return load_protocols()


def test_builtin_protocols_are_named_and_hashed_by_their_file_text(registry):
    assert {"geditbench-v2", "imgedit", "kris", "re-edit", "rise", "seed-0-10", "viescore"} <= set(BUILTIN)
    assert registry.names() == BUILTIN
    for name in registry.names():
        text = Path(registry.get(name).path).read_bytes()
        assert registry.get(name).sha256 == hashlib.sha256(text).hexdigest()
    assert registry.get("").name == "seed-0-10"  # the default


def test_unknown_protocol_lists_the_known_ones(registry):
    with pytest.raises(InvalidInput, match=re.escape(f"unknown protocol 'x'; known: {', '.join(BUILTIN)}")):
        registry.get("x")


def test_seed_protocol_has_a_prompt_per_category_and_chinese_names(registry):
    seed = registry.get("seed-0-10")
    variables = {"edit_instruction": "make the ice melt", "original_description": "an ice cube on a stove"}
    systems = {}
    for category in SEED_CATEGORIES:
        system, user = seed.render_question(seed.questions[0], category, variables)
        systems[category] = system
        assert "make the ice melt" in user and "an ice cube on a stove" in user
        assert '{"score": <integer 0-10>' in user  # literal JSON braces survive rendering
    assert len(set(systems.values())) == len(SEED_CATEGORIES)  # each category its own system prompt
    for chinese, english in SEED_CHINESE.items():
        assert seed.render_question(seed.questions[0], chinese, variables)[0] == systems[english]
    default_system, _ = seed.render_question(seed.questions[0], "something else", variables)
    assert default_system not in systems.values()


def test_missing_variables_are_named(registry):
    seed = registry.get("seed-0-10")
    with pytest.raises(InvalidInput, match=r"missing template variable\(s\): edit_instruction, original_description"):
        seed.check_variables("physical", {})
    seed.check_variables("physical", {"edit_instruction": "x", "original_description": "y"})


def test_strict_suffix_is_appended_for_the_second_attempt(registry):
    seed = registry.get("seed-0-10")
    variables = {"edit_instruction": "x", "original_description": "y"}
    _, first = seed.render_question(seed.questions[0], "", variables)
    _, second = seed.render_question(seed.questions[0], "", variables, strict=True)
    assert second.startswith(first) and second != first
    assert "exactly one line of JSON" in second


def test_viescore_questions_and_combination(registry):
    vie = registry.get("viescore")
    assert [(q.name, q.images, q.scores) for q in vie.questions] == [
        ("SC", ("source", "edited"), ("editing_success", "over_editing")),
        ("PQ", ("edited",), ("naturalness", "artifacts")),
    ]
    overall, subs = vie.combine_scores({"SC": [9.0, 4.0], "PQ": [8.0, 10.0]})
    assert overall == pytest.approx(math.sqrt(4 * 8))
    assert dict(subs) == {"SC.editing_success": 9, "SC.over_editing": 4, "PQ.naturalness": 8,
                          "PQ.artifacts": 10, "SC": 4, "PQ": 8, "O": pytest.approx(math.sqrt(32))}
    _, pq_user = vie.render_question(vie.questions[1], "", {"edit_instruction": "x"})
    assert "naturalness" in pq_user


def test_users_add_protocols_in_their_own_directory(tmp_path):
    (tmp_path / "my-1-5.json").write_text(
        '{"name": "my-1-5", "range": [1, 5], "questions": {"score": {"images": ["source", "edited"],'
        ' "user": "Rate {edit_instruction} from 1 to 5 for {audience}."}}}'
    )
    registry = load_protocols([tmp_path], default="my-1-5")
    mine = registry.get("")
    assert mine.name == "my-1-5" and (mine.low, mine.high) == (1, 5)
    assert mine.variables == ["audience", "edit_instruction"]
    assert mine.images == ["source", "edited"]
    assert registry.names() == sorted([*BUILTIN, "my-1-5"])


@pytest.mark.parametrize(
    "filename,text,message",
    [
        ("a.yaml", "name: b\nquestions: {score: {user: x}}", "must equal the file name"),
        ("a.yaml", "name: a\nquestions: {}", "questions must be a non-empty mapping"),
        ("a.yaml", "name: a\ncombine: median\nquestions: {score: {user: x}}", "unknown combine 'median'"),
        ("a.yaml", "name: a\nquestions: {score: {images: [target], user: x}}", "images must be"),
        ("a.yaml", "name: a\nquestions: {score: {images: [edited]}}", "user prompt is required"),
        ("a.yaml", "name: a\nquestions: {s: {scores: [x, y], user: u}}", "combine 'single' needs one question"),
        ("a.yaml", "name: a\n  bad: [", "cannot parse"),
        ("seed-0-10.yaml", "name: seed-0-10\nquestions: {score: {user: x}}", "defined twice"),
        ("a.yaml", "name: a\nresize: {edited: half}\nquestions: {score: {user: x}}", "resize.edited can only be"),
        ("a.yaml", "name: a\nresize: {max_pixels: 0}\nquestions: {score: {user: x}}", "resize.max_pixels must be"),
        ("a.yaml", "name: a\nresize: {width: 3}\nquestions: {score: {user: x}}", "resize takes"),
    ],
)
def test_malformed_protocol_files_are_refused_naming_the_file(tmp_path, filename, text, message):
    (tmp_path / filename).write_text(text)
    with pytest.raises(ProtocolError, match=message) as err:
        load_protocols([tmp_path])
    assert filename in str(err.value)


def test_a_protocols_resizing_rule_is_applied_before_any_backend(registry, tmp_path):
    from PIL import Image

    from editfleet_common.images import encode_png
    from scorer_service.samples import ScoreInput, prepare

    source, edited = encode_png(Image.new("RGB", (96, 64))), encode_png(Image.new("RGB", (60, 50)))
    vie = prepare(ScoreInput("v", source, edited, "make it red", "", "viescore"), registry)
    assert vie.protocol.resize == {"edited": "source"}  # GEdit-Bench's rule
    assert vie.images["edited"][0].size == (96, 64) and vie.images["source"][0].size == (96, 64)
    seed = prepare(ScoreInput("s", source, edited, "make it red", "physical", "seed-0-10",
                              {"original_description": "d"}), registry)
    assert seed.images["edited"][0].size == (60, 50)  # no rule: as sent
    (tmp_path / "small.yaml").write_text("name: small\nresize: {max_pixels: 1536}\nquestions: {score: {user: x}}")
    small = load_protocols([tmp_path])
    sample = prepare(ScoreInput("m", source, edited, "x", "", "small"), small)
    assert sample.images["source"][0].size == (48, 32)  # 6144 px scaled to 1536, aspect kept
    assert sample.images["edited"][0].size[0] * sample.images["edited"][0].size[1] <= 1536
