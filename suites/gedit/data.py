"""GEdit-Bench (stepfun-ai/GEdit-Bench) from a local copy, as JSON Lines:

    {"key": "...", "task_type": "background_change", "instruction": "...",
     "instruction_language": "en", "input_image": "images/<key>.png", "Intersection_exist": true}

`input_image` is a path relative to the JSONL file (it may not leave its folder); a row may carry
the image inline as `input_image_b64` instead. See the README ("GEdit-Bench") for a five-line
export from the Hugging Face dataset. The category is `task_type`.

Every key exists once per language. `language` (default "en") picks one; with "all" both are run
and ids become `<key>_<language>` so they stay unique.
"""

from __future__ import annotations

import binascii
from pathlib import Path

from suites.shared.samples import Problem, Sample, decode_b64, resolve_inside
from suites.shared.jsonl import read_json_lines

REQUIRED = ("key", "task_type", "instruction", "instruction_language")
# The overall figure GEdit-Bench reports (calculate_statistics.py): the unweighted mean of the group means.
# The 11 task groups, in the order of Step1X-Edit's GEdit-Bench/calculate_statistics.py (GROUPS),
# and the two instruction languages of the release.
GROUPS = ("background_change", "color_alter", "material_alter", "motion_change", "ps_human", "style_change",
          "subject-add", "subject-remove", "subject-replace", "text_change", "tone_transfer")
LANGUAGES = ("en", "cn")


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    language = str(options.get("language") or "en")
    if language not in (*LANGUAGES, "all"):
        return [], [Problem(path.name, None, f"language {language!r}: GEdit-Bench has en and cn (or all)")]
    samples, problems = [], []
    base_dir = path.parent
    for line_no, record, error in read_json_lines(path):
        where = f"{path.name}:{line_no}"
        if error:
            problems.append(Problem(where, None, error, line_no))
            continue
        key = str(record.get("key") or "")
        missing = [k for k in REQUIRED if not isinstance(record.get(k), str)]
        if missing:
            problems.append(Problem(where, key or None, f"missing or non-string field(s): {', '.join(missing)}", line_no))
            continue
        lang = record["instruction_language"]
        wrong = []
        if record["task_type"] not in GROUPS:
            wrong.append(f"task_type {record['task_type']!r} is not one of GEdit-Bench's 11 groups ({', '.join(GROUPS)})")
        if lang not in LANGUAGES:
            wrong.append(f"instruction_language {lang!r} is not en or cn")
        if "Intersection_exist" in record and not isinstance(record["Intersection_exist"], bool):
            wrong.append(f"Intersection_exist must be true or false, got {record['Intersection_exist']!r}")
        if wrong:
            problems.extend(Problem(where, key or None, w, line_no) for w in wrong)
            continue
        if language != "all" and lang != language:
            continue
        sample_id = key if language != "all" else f"{key}_{lang}"
        image_path = image_bytes = None
        if isinstance(record.get("input_image"), str):
            image_path, issue = resolve_inside(base_dir, record["input_image"])
        elif isinstance(record.get("input_image_b64"), str):
            try:
                image_bytes = decode_b64(record["input_image_b64"]) or None
                issue = None if image_bytes else "input_image_b64 is empty"
            except (binascii.Error, ValueError) as exc:
                issue = f"input_image_b64 is not valid base64 ({exc})"
        else:
            issue = "no input_image (path) or input_image_b64"
        if issue:  # listed here; the sample's other fields are still checked
            problems.append(Problem(where, sample_id, issue, line_no))
        samples.append(
            Sample(
                id=sample_id,
                category=record["task_type"],
                instruction=record["instruction"],
                image_path=image_path,
                image_bytes=image_bytes,
                language=lang,
                where=where,
                order=line_no,
                extras={"key": key, "intersection": bool(record.get("Intersection_exist", False))},
            )
        )
    return samples, problems


def looks_like(path: Path, first: dict | None) -> bool:
    return path.suffix == ".jsonl" and first is not None and "key" in first and "task_type" in first
