"""OmniContext (VectorSpaceLab/OmniGen2 omnicontext/; the Hugging Face dataset OmniGen2/OmniContext,
split train) from a local copy, as JSON Lines with the dataset's own fields:

    {"key": "...", "task_type": "single_character", "instruction": "...", "instruction_language": "en",
     "input_images": ["images/<key>_0.png", "images/<key>_1.png"]}

test_omnicontext_score.py reads exactly these fields of each row (`key`, `task_type`, `instruction`,
`instruction_language`, `input_images`: a list of images); here `input_images` are paths relative to
the JSONL file (they may not leave its folder), in the dataset's order: every one is an input of the
edit and is shown to the judge. The README gives the export from the dataset (a few lines with
`datasets`). The id is `key`, the category `task_type`.

`language` (default "en", as calculate_statistics.py's --language) keeps the rows whose
`instruction_language` is it; "all" keeps every row (ids then `<key>_<language>`). A task type
containing "scene" is judged with the Scene prompts (test_omnicontext_score.py's
`task_type.find('scene') != -1`): the variable `with_scene`.
"""

from __future__ import annotations

from pathlib import Path

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


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    language = str(options.get("language") or "en")
    samples, problems = [], []
    languages: set[str] = set()
    for line_no, record, error in read_json_lines(path):
        where = f"{path.name}:{line_no}"
        if error:
            problems.append(Problem(where, None, error, line_no))
            continue
        key = record.get("key")
        key = key if isinstance(key, str) and key else None
        missing = [k for k in REQUIRED if not isinstance(record.get(k), str) or not record[k]]
        if missing:
            problems.append(Problem(where, key, f"missing, empty or non-string field(s): {', '.join(missing)}", line_no))
            continue
        lang = record["instruction_language"]
        languages.add(lang)
        if language != "all" and lang != language:
            continue
        sid = key if language != "all" else f"{key}_{lang}"
        images = record.get("input_images")
        paths: list[Path] = []
        if not isinstance(images, list) or not images or not all(isinstance(i, str) for i in images):
            problems.append(Problem(where, sid, "input_images must be a non-empty list of image paths "
                                                "(relative to the JSONL file)", line_no))
        else:
            for i, relative in enumerate(images):
                resolved, issue = resolve_inside(path.parent, relative)
                if issue:
                    problems.append(Problem(where, sid, f"input_images[{i}]: {issue}", line_no))
                else:
                    paths.append(resolved)
        task_type = record["task_type"]
        variables = {"with_scene": "true"} if with_scene(task_type) else {}
        samples.append(Sample(id=sid, category=task_type, instruction=record["instruction"],
                              image_path=paths[0] if paths else None, more_images=paths[1:], language=lang,
                              where=where, order=line_no, variables=variables,
                              extras={"key": key, "input_images": list(images) if isinstance(images, list) else []}))
    if not samples and not problems and language != "all":
        problems.append(Problem(path.name, None, f"no row has instruction_language {language!r} "
                                                 f"(the file has: {', '.join(sorted(languages)) or 'none'}; "
                                                 "benchmark.language, or all)"))
    return samples, problems


def looks_like(path: Path, first: dict | None) -> bool:
    return (path.suffix == ".jsonl" and first is not None and isinstance(first.get("input_images"), list)
            and "task_type" in first and "key" in first)
