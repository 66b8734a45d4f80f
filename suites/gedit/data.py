"""GEdit-Bench (stepfun-ai/GEdit-Bench), read either way:

- the downloaded Hugging Face dataset folder itself (`hf download stepfun-ai/GEdit-Bench --repo-type
  dataset --local-dir GEdit-Bench`, or its snapshot in the HF cache): its Arrow or Parquet files, read
  by suites/shared/hf_dataset.py, with the columns Step1X-Edit's GEdit-Bench/generate_image_example.py
  and test_gedit_score.py read: key, task_type, instruction, instruction_language, input_image (a
  `datasets` Image: its embedded bytes are the sample's image), Intersection_exist. The release has one
  split (train); a folder with several is read in its train split. input_image_raw is not read.
- a local copy as JSON Lines:

    {"key": "...", "task_type": "background_change", "instruction": "...",
     "instruction_language": "en", "input_image": "images/<key>.png", "Intersection_exist": true}

  `input_image` is a path relative to the JSONL file (it may not leave its folder); a row may carry
  the image inline as `input_image_b64` instead.

The category is `task_type`. Every key exists once per language. `language` (default "en") picks
one; with "all" both are run and ids become `<key>_<language>` so they stay unique. The same checks
apply to both forms, each naming its line (file:line) or row (file[row]).
"""

from __future__ import annotations

import binascii
from pathlib import Path

from suites.shared import hf_dataset as hf
from suites.shared.samples import Problem, Sample, decode_b64, resolve_inside
from suites.shared.jsonl import read_json_lines

FOLDER = "either"  # a file (.jsonl) or the dataset folder as downloaded

REQUIRED = ("key", "task_type", "instruction", "instruction_language")
HF_COLUMNS = (*REQUIRED, "input_image")  # the release's columns read (Intersection_exist where present)
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
    return (_load_folder if Path(path).is_dir() else _load_jsonl)(Path(path), language)


def _load_jsonl(path: Path, language: str) -> tuple[list[Sample], list[Problem]]:
    samples, problems = [], []
    base_dir = path.parent
    for line_no, record, error in read_json_lines(path):
        where = f"{path.name}:{line_no}"
        if error:
            problems.append(Problem(where, None, error, line_no))
            continue
        sample = _sample(record, where, line_no, language, problems)
        if sample is None:
            continue
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
            problems.append(Problem(where, sample.id, issue, line_no))
        sample.image_path, sample.image_bytes = image_path, image_bytes
        samples.append(sample)
    return samples, problems


def hf_files(path: Path) -> list[hf.DataFile]:
    """The release folder's data files: its one split, or its train split where it has several."""
    found = hf.splits(path)
    if len(found) == 1 and len(next(iter(found.values()))) == 1:
        return hf.data_files(path)
    return hf.data_files(path, split="train")


def _load_folder(path: Path, language: str) -> tuple[list[Sample], list[Problem]]:
    try:
        files = hf_files(path)
    except hf.HFDatasetError as exc:
        return [], [Problem(str(path), None, str(exc))]
    samples, problems = [], []
    for row in hf.iter_rows(files, columns=HF_COLUMNS, optional=("Intersection_exist",)):
        if row.record is None:
            problems.append(Problem(row.where, None, row.error, row.order))
            continue
        record = {k: v for k, v in row.record.items() if not (k == "Intersection_exist" and v is None)}
        image, issue = record.pop("input_image"), row.error
        sample = _sample(record, row.where, row.order, language, problems)
        if sample is None:
            continue
        if issue is None and image is None:
            issue = "input_image: no image"
        if issue:  # listed here; the sample's other fields are still checked
            problems.append(Problem(row.where, sample.id, issue, row.order))
        sample.image_bytes = image
        samples.append(sample)
    return samples, problems


def _sample(record: dict, where: str, order: int, language: str, problems: list[Problem]) -> Sample | None:
    """The sample of a record (its image not set yet); None with its problems listed where a field is
    wrong, or where the record is of the other language."""
    key = str(record.get("key") or "")
    missing = [k for k in REQUIRED if not isinstance(record.get(k), str)]
    if missing:
        problems.append(Problem(where, key or None, f"missing or non-string field(s): {', '.join(missing)}", order))
        return None
    lang = record["instruction_language"]
    wrong = []
    if record["task_type"] not in GROUPS:
        wrong.append(f"task_type {record['task_type']!r} is not one of GEdit-Bench's 11 groups ({', '.join(GROUPS)})")
    if lang not in LANGUAGES:
        wrong.append(f"instruction_language {lang!r} is not en or cn")
    if "Intersection_exist" in record and not isinstance(record["Intersection_exist"], bool):
        wrong.append(f"Intersection_exist must be true or false, got {record['Intersection_exist']!r}")
    if wrong:
        problems.extend(Problem(where, key or None, w, order) for w in wrong)
        return None
    if language != "all" and lang != language:
        return None
    return Sample(
        id=key if language != "all" else f"{key}_{lang}",
        category=record["task_type"],
        instruction=record["instruction"],
        language=lang,
        where=where,
        order=order,
        extras={"key": key, "intersection": bool(record.get("Intersection_exist", False))},
    )


def digest(path: Path) -> str:
    """A release folder's: sha256 over its data files read (relative path and bytes, in order)."""
    return hf.digest(hf_files(path))


def looks_like(path: Path, first: dict | None) -> bool:
    if Path(path).is_dir():
        try:
            return set(HF_COLUMNS) <= set(hf.columns(hf_files(Path(path))[0]))
        except hf.HFDatasetError:
            return False
    return path.suffix == ".jsonl" and first is not None and "key" in first and "task_type" in first
