"""OmniContext (VectorSpaceLab/OmniGen2 omnicontext/; the Hugging Face dataset OmniGen2/OmniContext,
split train), read either way:

- the downloaded Hugging Face dataset folder itself (`hf download OmniGen2/OmniContext --repo-type
  dataset --local-dir OmniContext`, or its snapshot in the HF cache): its Parquet or Arrow files, read by
  suites/shared/hf_dataset.py, with the columns the official scripts read (`key`, `task_type`,
  `instruction`, `instruction_language`, `input_images`: a list of `datasets` Images, embedded; the
  sample carries them as image_bytes and more_image_bytes, in the row's order). The release has one
  split (train, which omnicontext/inference.py loads); a folder with several is read in its train split.
- a local copy as JSON Lines with the dataset's own fields:

    {"key": "...", "task_type": "single_character", "instruction": "...", "instruction_language": "en",
     "input_images": ["images/<key>_0.png", "images/<key>_1.png"]}

  here `input_images` are paths relative to the JSONL file (they may not leave its folder). The README
  gives the export from the dataset (a few lines with `datasets`).

test_omnicontext_score.py reads exactly these fields of each row; every input image, in the dataset's
order, is an input of the edit and is shown to the judge. The id is `key`, the category `task_type`.
The same checks apply to both forms, each naming its line (file:line) or row (file[row]).

`language` (default "en", as calculate_statistics.py's --language) keeps the rows whose
`instruction_language` is it; "all" keeps every row (ids then `<key>_<language>`). A task type
containing "scene" is judged with the Scene prompts (test_omnicontext_score.py's
`task_type.find('scene') != -1`): the variable `with_scene`.
"""

from __future__ import annotations

from pathlib import Path

from suites.shared import hf_dataset as hf
from suites.shared.jsonl import read_json_lines
from suites.shared.samples import Problem, Sample, resolve_inside

REQUIRED = ("key", "task_type", "instruction", "instruction_language")
# The release's eight task types, in the paper's order (OmniGen2 tech report, OmniContext table:
# SINGLE character/object, MULTIPLE character/object/both, SCENE character/object/both). Others are
# accepted (the official scripts read task_type as given) and listed after these.
TASK_TYPES = ("single_character", "single_object", "multi_character", "multi_object", "multi_character_object",
              "scene_character", "scene_object", "scene_character_object")


def with_scene(task_type: str) -> bool:
    return task_type.find("scene") != -1


FOLDER = "either"  # a file (.jsonl) or the dataset folder as downloaded
HF_COLUMNS = (*REQUIRED, "input_images")


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    language = str(options.get("language") or "en")
    path = Path(path)
    samples, problems, languages = (_load_folder if path.is_dir() else _load_jsonl)(path, language)
    if not samples and not problems and language != "all":
        problems.append(Problem(path.name, None, f"no row has instruction_language {language!r} "
                                                 f"(the {'dataset' if path.is_dir() else 'file'} has: "
                                                 f"{', '.join(sorted(languages)) or 'none'}; benchmark.language, or all)"))
    return samples, problems


def _load_jsonl(path: Path, language: str) -> tuple[list[Sample], list[Problem], set[str]]:
    samples, problems = [], []
    languages: set[str] = set()
    for line_no, record, error in read_json_lines(path):
        where = f"{path.name}:{line_no}"
        if error:
            problems.append(Problem(where, None, error, line_no))
            continue
        sample = _sample(record, where, line_no, language, problems, languages)
        if sample is None:
            continue
        images = record.get("input_images")
        paths: list[Path] = []
        if not isinstance(images, list) or not images or not all(isinstance(i, str) for i in images):
            problems.append(Problem(where, sample.id, "input_images must be a non-empty list of image paths "
                                                      "(relative to the JSONL file)", line_no))
        else:
            for i, relative in enumerate(images):
                resolved, issue = resolve_inside(path.parent, relative)
                if issue:
                    problems.append(Problem(where, sample.id, f"input_images[{i}]: {issue}", line_no))
                else:
                    paths.append(resolved)
        sample.image_path, sample.more_images = (paths[0] if paths else None), paths[1:]
        sample.extras["input_images"] = list(images) if isinstance(images, list) else []
        samples.append(sample)
    return samples, problems, languages


def hf_files(path: Path) -> list[hf.DataFile]:
    """The dataset folder's data files: its one split, or its train split where it has several."""
    found = hf.splits(path)
    if len(found) == 1 and len(next(iter(found.values()))) == 1:
        return hf.data_files(path)
    return hf.data_files(path, split="train")


def _load_folder(path: Path, language: str) -> tuple[list[Sample], list[Problem], set[str]]:
    try:
        files = hf_files(path)
    except hf.HFDatasetError as exc:
        return [], [Problem(str(path), None, str(exc))], set()
    samples, problems = [], []
    languages: set[str] = set()
    for row in hf.iter_rows(files, columns=HF_COLUMNS):
        if row.record is None:
            problems.append(Problem(row.where, None, row.error, row.order))
            continue
        images = row.record.pop("input_images")
        sample = _sample(row.record, row.where, row.order, language, problems, languages)
        if sample is None:
            continue
        issue = row.error  # an image over a bound or not embedded, named by its index
        if issue is None and (not isinstance(images, list) or not images):
            issue = "input_images must be a non-empty list of images"
        elif issue is None:
            issue = next((f"input_images[{i}]: " + ("no image" if image is None else
                                                    "not an image (a list of Hugging Face Image cells)")
                          for i, image in enumerate(images) if not isinstance(image, bytes)), None)
        if issue:  # listed here; the sample's other fields are still checked
            problems.append(Problem(row.where, sample.id, issue, row.order))
        else:
            sample.image_bytes, sample.more_image_bytes = images[0], list(images[1:])
        samples.append(sample)
    return samples, problems, languages


def _sample(record: dict, where: str, order: int, language: str, problems: list[Problem],
            languages: set[str]) -> Sample | None:
    """The sample of a row, without its images; None where a field is wrong (listed) or the row is of
    another language."""
    key = record.get("key")
    key = key if isinstance(key, str) and key else None
    missing = [k for k in REQUIRED if not isinstance(record.get(k), str) or not record[k]]
    if missing:
        problems.append(Problem(where, key, f"missing, empty or non-string field(s): {', '.join(missing)}", order))
        return None
    lang = record["instruction_language"]
    languages.add(lang)
    if language != "all" and lang != language:
        return None
    task_type = record["task_type"]
    return Sample(id=key if language != "all" else f"{key}_{lang}", category=task_type,
                  instruction=record["instruction"], language=lang, where=where, order=order,
                  variables={"with_scene": "true"} if with_scene(task_type) else {}, extras={"key": key})


def digest(path: Path) -> str:
    """A dataset folder's: sha256 over its data files read (relative path and bytes, in order)."""
    return hf.digest(hf_files(path))


def looks_like(path: Path, first: dict | None) -> bool:
    if Path(path).is_dir():  # a dataset folder with OmniContext's columns (GEdit-Bench's has input_image)
        try:
            return set(HF_COLUMNS) <= set(hf.columns(hf_files(Path(path))[0]))
        except hf.HFDatasetError:
            return False
    return (path.suffix == ".jsonl" and first is not None and isinstance(first.get("input_images"), list)
            and "task_type" in first and "key" in first)
