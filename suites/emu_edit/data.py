"""The Emu Edit test set (facebook/emu_edit_test_set on Hugging Face), read from the downloaded dataset
folder itself (`hf download facebook/emu_edit_test_set --repo-type dataset --local-dir emu_edit_test_set`,
or its snapshot in the HF cache) by suites/shared/hf_dataset.py: its Parquet (or Arrow) files with the
columns

    idx, instruction, input_caption, output_caption, task, image (a `datasets` Image: the input image)

(`split` and `hash` are kept where present). Every split of the folder is read (the release has
validation and test); a sample's id is `<split>_<idx>`, its category the `task`; the variables
`input_caption` and `output_caption` are what CLIP-dir and CLIP-out compare the edit with. The test
set has no ground-truth output: the metrics compare the edit with the input image (emu_edit.yaml).
"""

from __future__ import annotations

from pathlib import Path

from suites.shared import hf_dataset as hf
from suites.shared.samples import Problem, Sample

FOLDER = True
TEXT = ("instruction", "input_caption", "output_caption", "task")
COLUMNS = ("idx", *TEXT, "image")


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    try:
        files = hf.data_files(path)
    except hf.HFDatasetError as exc:
        return [], [Problem(str(path), None, str(exc))]
    samples, problems = [], []
    for row in hf.iter_rows(files, columns=COLUMNS, optional=("split", "hash")):
        if row.record is None:
            problems.append(Problem(row.where, None, row.error, row.order))
            continue
        record = row.record
        idx = record.get("idx")
        if isinstance(idx, bool) or not isinstance(idx, (int, str)) or str(idx) == "":
            problems.append(Problem(row.where, None, f"idx must be an integer or a string, got {idx!r}", row.order))
            continue
        sample_id = f"{row.file.split}_{idx}"
        wrong = [name for name in TEXT if not isinstance(record.get(name), str)]
        if wrong:
            problems.append(Problem(row.where, sample_id, f"missing or non-string field(s): {', '.join(wrong)}", row.order))
            continue
        issue = row.error or (None if record.get("image") else "image: no image")
        if issue:
            problems.append(Problem(row.where, sample_id, issue, row.order))
            continue
        samples.append(Sample(
            id=sample_id, category=record["task"], instruction=record["instruction"], image_bytes=record["image"],
            language="en", where=row.where, order=row.order,
            variables={"input_caption": record["input_caption"], "output_caption": record["output_caption"]},
            extras={"split": row.file.split, "idx": idx, **({"hash": str(record["hash"])} if record.get("hash") else {})}))
    return samples, problems


def digest(path: Path) -> str:
    """sha256 over the folder's data files (relative path and bytes, in order)."""
    return hf.digest(hf.data_files(path))


def looks_like(path: Path, first: dict | None) -> bool:
    if not Path(path).is_dir():
        return False
    try:
        return set(COLUMNS) <= set(hf.columns(hf.data_files(Path(path))[0]))
    except hf.HFDatasetError:
        return False
