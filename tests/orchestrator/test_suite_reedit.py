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
from pathlib import Path

import pytest
from PIL import Image

from orchestrator.benchmarks import BenchmarkError, load_benchmark
from orchestrator.benchmarks.reedit import SUBSETS
from orchestrator.layouts import reedit as reedit_layout

# Samples per subset; each subset's items numbered from its own base, as the release numbers its images.
PER_SUBSET = {"physical": 3, "environmental": 3, "cultural": 2, "causal": 3, "referential": 3}


def png(color, size=(24, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def items() -> list[dict]:
    """The release's records (field order as in RE-Edit.json: the image before the rationale)."""
    out, n = [], 0
    for s, subset in enumerate(SUBSETS):
        for k in range(PER_SUBSET[subset]):
            path = f"generated_images_2/{n:05d}_{subset}_medium.png"
            if (subset, k) == ("causal", 2):
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
    assert first.extras["rationale"] == "Challenge 0: the physical consequence must show"
    assert (first.extras["image_id"], first.extras["pair_id"]) == ("00000", "00000_physical_medium")
    assert first.source_bytes() == png((0, 100, 50))
    odd = next(s for s in bench.samples if s.id == "causal_0002")
    # benchmark_loader.py strips the extension only from a path with a folder
    assert (odd.extras["image_id"], odd.extras["pair_id"]) == ("00042", "img_00042_causal.png")
    # where the scorer reads each edit: <subset>/<pair_id>_primary.png, or <image number>_primary.png
    assert reedit_layout.edit_relpath(first) == "physical/00000_physical_medium_primary.png"
    assert reedit_layout.edit_relpath(odd) == "causal/00042_primary.png"
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
