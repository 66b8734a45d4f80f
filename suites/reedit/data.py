"""RE-Edit (Yixuan-Ding-ZJU/RE-Edit; the data: Hugging Face dataset Yixuan-Ding-ZJU/RE-Edit, file
RE-Edit.json): the seed's records (benchmarks/seed.py reads them) plus the task's challenge,

    [{"subset": "physical", "src_img_b64": "<base64>", "edit_instruction_en": "...",
      "original_description_en": "...", "rationale_short_en": "...",
      "original_image_path": "generated_images_2/00000_physical_medium.png", ...}, ...]

1,000 items in five English subsets (physical, environmental, cultural, causal, referential: the
`data.categories` of single_scoring_part_vllm/scoring_config.yaml). Ids are the seed's
(`<subset>_<n>`). The judge prompts see `original_description_en`, `edit_instruction_en` and
`rationale_short_en` (the "Task Challenge"; the judge's variables `original_description` and
`rationale`), so the three are required here (the official loader would put "" in the prompt for a
missing one; an empty one is shown empty, as there).

The official scorer (single_scoring_part_vllm/data_loader.py) finds an item's edit by a number: the
first run of digits in the file name of `original_image_path` (`image_id`), matched against the
leading digits of the edit's file name in `<image_dir>/<subset>/`. An item without such a number,
or two items of one subset with the same one, could not be matched: each is a problem here (the
official scorer silently skips the first and scores one edit for both in the second case).
"""

from __future__ import annotations

import re
from pathlib import Path

from suites.seed import data as seed
from suites.shared.samples import Problem, Sample, id_problem

SUBSETS = ("physical", "environmental", "cultural", "causal", "referential")
REQUIRED = (*seed.REQUIRED, "original_description_en", "rationale_short_en", "original_image_path")
# The generic tables' overall pools every sample (statistics_calculator.calculate_overall_statistics).
# iterative_pipeline_v7.py's _SUBSET_ZH_TO_EN: the names its saved edits carry instead of the Chinese ones
_ZH_TO_EN = {"物理": "physical", "环境": "environmental", "社会": "cultural", "因果": "causal", "指代": "referential"}


def image_id(original_image_path: str) -> str | None:
    """data_loader.py's _extract_image_id: the first digits of the path's file name (without extension)."""
    match = re.search(r"(\d+)", Path(original_image_path).stem) if original_image_path else None
    return match.group(1) if match else None


def pair_id(original_image_path: str) -> str:
    """The name the RE-Edit pipeline gives an item's edit (benchmark_loader.py: the path's last part
    without .png/.jpg; iterative_pipeline_v7.py's _sanitize_filename_part: Chinese subset names in
    English). Its edit is saved as `<pair_id>_primary.png`."""
    name = original_image_path
    if "/" in name:
        name = name.split("/")[-1].replace(".png", "").replace(".jpg", "")
    for zh, en in _ZH_TO_EN.items():
        name = name.replace(zh, en)
    return name


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    samples, problems = seed.load(path, options, required=REQUIRED)
    first_with: dict[tuple[str, str], Sample] = {}
    for sample in samples:
        def problem(message: str, sample=sample):
            problems.append(Problem(sample.where, sample.id, message, sample.order))

        if sample.category not in SUBSETS:
            problem(f"subset {sample.category!r} is not one of RE-Edit's five ({', '.join(SUBSETS)})")
        original = sample.extras["original_image_path"]
        number = image_id(original)
        name = pair_id(original)
        if number is None:
            problem(f"original_image_path {original!r} has no number in its file name: RE-Edit's scorer "
                    "matches an edit to its item by that number")
        elif (sample.category, number) in first_with:
            problem(f"original_image_path {original!r}: image number {number} already used in subset "
                    f"{sample.category!r} by {first_with[(sample.category, number)].where}: RE-Edit's scorer "
                    "could not tell their edits apart")
        else:
            first_with[(sample.category, number)] = sample
        issue = id_problem(name)
        if number is not None and issue:
            problem(f"original_image_path {original!r}: its file name cannot name an edit ({issue})")
        sample.extras.update(image_id=number, pair_id=name)
        # the prompts' {rationale} and {original_description}; an empty one is shown empty, as there
        sample.variables = {"rationale": sample.extras["rationale_short_en"], "original_description": sample.description}
    return samples, problems


def looks_like(path: Path, first: dict | None) -> bool:
    """A seed-style .json list whose first item has the RE-Edit field rationale_short_en."""
    if path.suffix != ".json":
        return False
    item = seed.first_item(path)
    return item is not None and "subset" in item and "rationale_short_en" in item
