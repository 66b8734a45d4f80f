"""RISEBench (PhoenixZ810/RISEBench), as released: one JSON list of rows

    {"index": "temporal_reasoning_1", "category": "temporal_reasoning", "instruction": "...",
     "image": "temporal_reasoning_images/1.png", "reference": "Rotten, blackened banana."}

with the images under the JSON's folder (gpt_eval.py's `--input`, default `data`; here
`benchmark.image_root`, by default the JSON's own folder). RISEBench-64 is `data/data_total.json` of
the GitHub repository (16 rows per category); RISEBench-360 is `datav2_total_w_subtask.json` of the
Hugging Face dataset PhoenixZ/RISEBench, the same rows plus `subtask` and the flags below. The two
are separate files: a run reports the set it was given (the release marks no 64-subset inside the 360).

Fields, as gpt_eval.py (`eval_vanilla`) reads them:
  category         temporal_reasoning | causal_reasoning | spatial_reasoning | logical_reasoning
  reference        the ground-truth description (temporal, causal, spatial without reference_img)
  reference_img    a ground-truth image (spatial, logical): shown to the judge instead of the input
                   image, for the reasoning *and* the consistency questions, as gpt_eval.py does
  reference_txt    the ground-truth answer (logical; wins over reference_img, as there)
  reasoning_img    set: the reasoning judge also sees the input image (temporal, causal, spatial)
  reasoning_wo_ins the logical reference-image prompt without the problem text: gpt_eval.py tests
                   `'reasoning_wo_ins' in item` on a pandas row, i.e. whether the *file* has that
                   key on any row, so every logical reference-image row of such a file gets it (kept)
  consistency_free set (true): no consistency question; accuracy needs reasoning and plausibility only
  subtask          optional: per-subtask numbers
A flag is set when its key is present and not null (gpt_eval.py: `not pd.isna(...)`), whatever the
value: "True" (as RISEBench++'s file writes flags), true, and also false, "False" or 0, all read as set,
as gpt_eval.py reads them. Except in one place: calculate_score tests consistency_free for its truth
value (`row['consistency_free']`), so a falsy one (false, 0, "") asks no consistency question but
weighs the missing consistency in the score, which is then NaN there: the row counts for Accuracy
(reasoning and plausibility 5) and is left out of the score means (`score_without_consistency`
false, consistency not judged). A list or object is refused (pd.isna gives an array). gpt_eval.py also reads
`item['reasoning_img']` without a default and groups by `subtask`, so it stops (KeyError) on
RISEBench-64, which has neither key; here a missing flag is not set and subtasks are optional.

The sample id is `index` (the file name the suite's layout uses), the category `category`. What the
judge needs goes to the scorer as text variables (`reference_text`: `reference`, or `reference_txt`
for logical rows; the flags as "true") and reference images (Sample.reference_images).
"""

from __future__ import annotations

import math
from pathlib import Path

from suites.seed import data as seed
from suites.shared.json_file import read_with_image_root
from suites.shared.samples import Problem, Sample, resolve_inside

CATEGORIES = ("temporal_reasoning", "causal_reasoning", "spatial_reasoning", "logical_reasoning")
REQUIRED = ("index", "category", "instruction", "image")
FLAGS = ("reasoning_img", "reasoning_wo_ins", "consistency_free")
ROWS = "a JSON list of rows {index, category, instruction, image, ...}"  # the file, as refused


def flag_set(value) -> bool:
    """gpt_eval.py's `not pd.isna(value)` (and RISEBench++'s gemini_eval.py's): any value but null (JSON
    null, or NaN)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _null_reads_as_nan(values: list) -> bool:
    """Whether pandas (3.x) makes an explicit null of a column NaN (truthy) rather than None: where
    the column's other values are all strings (its str dtype) or all numbers (float64), or where it
    has none and some row lacks the key (all NaN). With booleans or mixed values (object dtype) a
    null stays None (falsy); a missing key is NaN either way."""
    given = [v for v in values if flag_set(v)]
    if not given:
        return False
    return all(isinstance(v, str) for v in given) or all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in given)
# Accuracy is over the whole set, as gpt_eval.py's `data['complete'].mean()`.


def _text(item: dict, key: str) -> str | None:
    """A text field as gpt_eval.py sees it: None when absent or null."""
    value = item.get(key)
    return None if value is None else value


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    rows, root, problems = read_with_image_root(path, options, list, ROWS)
    if problems:
        return [], problems
    dicts = [r for r in rows if isinstance(r, dict)]
    # gpt_eval.py builds a DataFrame: a key on any row is a column of every row
    file_keys = {k for r in dicts for k in r}
    # ... and how pandas fills it (checked with pandas 3.0): a missing key is NaN (true); an explicit
    # null is NaN too where the column's values are all strings or all numbers, None (false) where they
    # are booleans or mixed; a column of nulls only is all NaN when a row lacks the key, all None when not
    free_values = [r.get("consistency_free") for r in dicts if "consistency_free" in r]
    free_any_missing = any("consistency_free" not in r for r in dicts)
    null_is_nan = _null_reads_as_nan(free_values) or (
        not any(flag_set(v) for v in free_values) and free_any_missing)
    samples = []
    for order, item in enumerate(rows):
        where = f"{path.name}[{order}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, None, f"expected an object {{index, category, instruction, image, ...}}, "
                                                 f"got {type(item).__name__}", order))
            continue
        index = item.get("index")
        sid = index if isinstance(index, str) and index else None
        missing = [f for f in REQUIRED if not isinstance(item.get(f), str) or not item[f]]
        if missing:
            problems.append(Problem(where, sid, f"missing, empty or non-string field(s): {', '.join(missing)}", order))
            continue
        category = item["category"]
        if category not in CATEGORIES:
            problems.append(Problem(where, sid, f"category {category!r} is not one of RISEBench's four "
                                                f"({', '.join(CATEGORIES)})", order))
            continue
        wrong = []
        flags = {}
        for flag in FLAGS:
            value = item.get(flag)
            if isinstance(value, (list, dict)):
                wrong.append(f"{flag}: a list or object, where gpt_eval.py's pd.isna needs one value")
            flags[flag] = flag_set(value)
        texts = {}
        for key in ("reference", "reference_img", "reference_txt", "subtask"):
            value = _text(item, key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                wrong.append(f"{key} must be a non-empty string when given, got {value!r}")
                value = None
            texts[key] = value
        variables: dict[str, str] = {}
        reference_rel = None
        if category == "logical_reasoning":
            if flags["consistency_free"]:
                wrong.append("consistency_free on a logical_reasoning row: gpt_eval.py has no score for it "
                             "(logical rows are judged on consistency and reasoning only)")
            if texts["reference_txt"] is not None:
                variables["reference_text"] = variables["reference_txt"] = texts["reference_txt"]
            elif texts["reference_img"] is not None:
                reference_rel = texts["reference_img"]
                if "reasoning_wo_ins" in file_keys:
                    variables["reasoning_wo_ins"] = "true"
            else:
                wrong.append("a logical_reasoning row needs reference_txt or reference_img "
                             "(gpt_eval.py has no judge prompt without one)")
        else:
            if category == "spatial_reasoning" and texts["reference_img"] is not None:
                reference_rel = texts["reference_img"]
            elif texts["reference"] is None:
                wrong.append(f"a {category} row needs reference (the ground-truth description)"
                             + (" or reference_img" if category == "spatial_reasoning" else ""))
            else:
                variables["reference_text"] = texts["reference"]
            for flag in ("reasoning_img", "consistency_free"):
                if flags[flag]:
                    variables[flag] = "true"
        image_path, issue = resolve_inside(root, item["image"])
        if issue:
            wrong.append(f"image: {issue.replace('the benchmark folder', 'the image root')}")
        reference_images = []
        if reference_rel is not None:
            ref_path, ref_issue = resolve_inside(root, reference_rel)
            if ref_issue:
                wrong.append(f"reference_img: {ref_issue.replace('the benchmark folder', 'the image root')}")
            elif not ref_path.is_file():
                wrong.append(f"reference_img: image not found: {ref_path}")
            else:
                reference_images.append(ref_path)
        problems.extend(Problem(where, sid, w, order) for w in wrong)
        extras = {
            "image": item["image"],
            "consistency_free": flags["consistency_free"],
            # calculate_score's `'consistency_free' in row and row['consistency_free']` (suites/rise.py)
            "score_without_consistency": "consistency_free" in file_keys and (
                True if "consistency_free" not in item else bool(item["consistency_free"])
                if flag_set(item["consistency_free"]) else null_is_nan),
        }
        if texts["subtask"] is not None:
            extras["subtask"] = texts["subtask"]
        if reference_rel is not None:
            extras["reference_img"] = reference_rel
        samples.append(Sample(id=item["index"], category=category, instruction=item["instruction"],
                              image_path=image_path, language="en", where=where, order=order, extras=extras,
                              reference_images=reference_images, variables=variables))
    return samples, problems


def looks_like(path: Path, first: dict | None) -> bool:
    if path.suffix != ".json":
        return False
    try:
        row = seed.first_item(path)  # the first row only: detection tries every .json format in turn
    except OSError:
        return False
    return row is not None and all(f in row for f in REQUIRED) and row.get("category") in CATEGORIES
