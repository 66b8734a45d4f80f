"""RISEBench++ (PhoenixZ810/RISEBench, folder RISEBench++/; the full set on Hugging Face,
VisionXLab/RISEBench-plusplus), as released: one JSON list of rows

    {"index": "temporal_reasoning_8", "category": "temporal_reasoning", "subcategory": "disciplinary_knowledge",
     "task_type": "chemistry", "instruction": "...", "instruction_chinese": "...",
     "image": ["temporal_reasoning_images/8_1.png", "temporal_reasoning_images/8_2.png"], "multi_img": "True",
     "consistency_img": "temporal_reasoning_images/8_cons.png", "reference_img": "temporal_reasoning_images/8_ref.png"}

with the images under the JSON's folder (gemini_eval.py's `--input`, default `data`; here
`benchmark.image_root`, by default the JSON's own folder). The repository's data/overall_data.json is a
60-case demo (10 per dimension); the 1,000-case set has the same fields.

Fields, as gemini_eval.py (`eval_vanilla`, `calculate_score`, `calculate_completion`, `main`) reads them:
  index            the id, and the output's file name
  category         temporal_reasoning | causal_reasoning | spatial_reasoning | logical_reasoning |
                   counterfactual_reasoning; for a multi-turn case a list, one per step
  multi_turn       set: a hybrid case (category hybrid_reasoning here, as its outputs folder): its
                   `instruction` is a list of steps, judged as "1. step\\n2. step..." (format_instruction);
                   judged with the logical prompts where a step is logical_reasoning
  image            the list of input images, in order (the edit's inputs; the first is the one the
                   reasoning-with-input prompts show)
  consistency_img  the image the consistency and plausibility questions compare with (else image[0])
  reference_img    a ground-truth image for the reasoning question (not read for counterfactual rows)
  reference_txt    the ground-truth description (reference_txt_chinese for a Chinese run)
  reasoning_img    set: the reasoning judge also sees the first input image
  consistency_free set: no consistency question
  subcategory, task_type   the per-group rows of the summary (lists for multi-turn cases, not grouped)
  instruction_chinese      a Chinese run's instruction (benchmark.language: cn)
A flag is set when its key is present and its value is not null, whatever the value ("True", "False",
true, false, 0: gemini_eval.py tests `not pd.isna(...)` everywhere), as the file writes them ("True").

What the judge needs goes to the scorer as variables (reference_text; cons_prompt / rea_prompt /
qua_prompt: the prompt of each dimension as eval_vanilla picks it) and reference images
([consistency image, reference_img]).
"""

from __future__ import annotations

from pathlib import Path

from suites.rise import data as rise
from suites.rise.data import flag_set  # gemini_eval.py's `not pd.isna(value)`, as gpt_eval.py's
from suites.seed import data as seed
from suites.shared.json_file import read_with_image_root
from suites.shared.samples import Problem, Sample, resolve_inside

CATEGORIES = ("temporal_reasoning", "causal_reasoning", "spatial_reasoning", "logical_reasoning",
              "counterfactual_reasoning")
HYBRID = "hybrid_reasoning"   # multi-turn cases: their outputs folder and their summary row
REQUIRED = ("index", "category", "instruction", "image")
FLAGS = ("multi_turn", "reasoning_img", "consistency_free", "multi_img")
LANGUAGES = {"en": ("instruction", "reference_txt"), "cn": ("instruction_chinese", "reference_txt_chinese")}


def format_instruction(value) -> str:
    """gemini_eval.py's format_instruction: a list of steps as "1. a\\n2. b", a string as it is."""
    if isinstance(value, list):
        return "\n".join(f"{i + 1}. {step}" for i, step in enumerate(value))
    return value


def choose_prompts(family: str, counterfactual_step: bool, flags: dict[str, bool], has_reference_img: bool) -> dict:
    """The prompt of each dimension, as eval_vanilla picks it: cons_prompt, rea_prompt, qua_prompt
    (absent where the dimension is not judged)."""
    out = {}
    if family in ("general", "spatial"):
        out["rea_prompt"] = (f"{family}_ref_img" if has_reference_img else
                             f"{family}_ref_txt_w_input" if flags["reasoning_img"] else f"{family}_ref_txt")
        out["cons_prompt"] = family
        out["qua_prompt"] = "spatial" if family == "spatial" else "counterfactual" if counterfactual_step else "general"
    elif family == "logical":
        if has_reference_img:
            out.update(cons_prompt="logical", rea_prompt="logical_ref_img")
        else:
            out.update(cons_prompt="logical_ans",
                       rea_prompt="logical_ref_txt_w_input" if flags["reasoning_img"] else "logical_ref_txt")
    else:  # counterfactual: reference_img is not read
        out.update(cons_prompt="general", qua_prompt="counterfactual",
                   rea_prompt="general_ref_txt_w_input" if flags["reasoning_img"] else "general_ref_txt")
    if flags["consistency_free"]:
        del out["cons_prompt"]
    return out


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    language = str(options.get("language") or "en")
    if language not in LANGUAGES:
        return [], [Problem(path.name, None, f"language {language!r}: RISEBench++ has en and cn")]
    instruction_key, reference_key = LANGUAGES[language]
    rows, root, problems = read_with_image_root(path, options, list, rise.ROWS)
    if problems:
        return [], problems
    samples = []
    for order, item in enumerate(rows):
        where = f"{path.name}[{order}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, None, f"expected an object, got {type(item).__name__}", order))
            continue
        sample, wrong = _sample(item, where, order, root, instruction_key, reference_key, language)
        problems.extend(Problem(where, sample.id if sample else (item.get("index") if isinstance(item.get("index"), str)
                                                                  else None), w, order) for w in wrong)
        if sample is not None:
            samples.append(sample)
    return samples, problems


def _image(root: Path, relative, field: str, wrong: list[str]) -> Path | None:
    if not isinstance(relative, str) or not relative:
        wrong.append(f"{field} must be an image path, got {relative!r}")
        return None
    resolved, issue = resolve_inside(root, relative)
    if issue:
        wrong.append(f"{field}: {issue.replace('the benchmark folder', 'the image root')}")
    return resolved


def _sample(item: dict, where: str, order: int, root: Path, instruction_key: str, reference_key: str, language: str):
    missing = [f for f in REQUIRED if item.get(f) in (None, "", [])]
    if missing:
        return None, [f"missing or empty field(s): {', '.join(missing)}"]
    wrong: list[str] = []
    index = item["index"]
    if not isinstance(index, str):
        return None, [f"index must be a string, got {index!r}"]
    flags = {}
    for flag in FLAGS:
        value = item.get(flag)
        if isinstance(value, (list, dict)):
            wrong.append(f"{flag}: a list or object, where gemini_eval.py's pd.isna needs one value")
        flags[flag] = flag_set(value)
    category = item["category"]
    multi = flags["multi_turn"]
    steps = category if isinstance(category, list) else [category]
    if not all(isinstance(c, str) and c in CATEGORIES for c in steps):
        wrong.append(f"category {category!r}: each must be one of RISEBench++'s five ({', '.join(CATEGORIES)})")
        return None, wrong
    if isinstance(category, list) and not multi:
        wrong.append("category is a list but multi_turn is not set (gemini_eval.py has no prompt for it)")
        return None, wrong
    logical_hybrid = multi and "logical_reasoning" in steps
    if (multi and not logical_hybrid) or category in ("temporal_reasoning", "causal_reasoning"):
        family = "general"
    elif category == "spatial_reasoning":
        family = "spatial"
    elif category == "logical_reasoning" or logical_hybrid:
        family = "logical"
    else:
        family = "counterfactual"
    if family == "logical" and flags["consistency_free"]:
        wrong.append("consistency_free on a logical case: gemini_eval.py has no score for it (it stops there)")
    instruction = item.get(instruction_key)
    if isinstance(instruction, list) and multi and instruction and all(isinstance(s, str) and s for s in instruction):
        instruction = format_instruction(instruction)
    if not isinstance(instruction, str) or not instruction:
        wrong.append(f"{instruction_key}: missing, or not a string (a list of strings for a multi-turn case)"
                     + (" (a Chinese run reads the Chinese fields)" if language == "cn" else ""))
        instruction = ""
    images = item["image"]
    if not isinstance(images, list) or not all(isinstance(i, str) and i for i in images):
        wrong.append(f"image must be a list of image paths (gemini_eval.py reads image[0]), got {images!r}")
        images = []
    paths = [p for i, rel in enumerate(images) if (p := _image(root, rel, f"image[{i}]", wrong)) is not None]
    has_reference_img = flag_set(item.get("reference_img")) and family != "counterfactual"
    prompts = choose_prompts(family, multi and "counterfactual_reasoning" in steps, flags, has_reference_img)
    variables = dict(prompts)
    if prompts["rea_prompt"].endswith("txt") or prompts["rea_prompt"].endswith("w_input") or \
            prompts.get("cons_prompt") == "logical_ans":
        reference = item.get(reference_key)
        if not isinstance(reference, str) or not reference.strip():
            wrong.append(f"{reference_key}: the ground-truth description its reasoning prompt shows is missing "
                         "(gemini_eval.py would send 'nan')")
        else:
            variables["reference_text"] = reference
    references = []
    if paths and ("cons_prompt" in prompts or "qua_prompt" in prompts or has_reference_img):
        cons = item.get("consistency_img")
        references.append(_image(root, cons, "consistency_img", wrong) if flag_set(cons) else paths[0])
    if has_reference_img:
        ref = _image(root, item["reference_img"], "reference_img", wrong)
        if ref is not None and references:
            references.append(ref)
    sample_category = HYBRID if multi else category
    extras = {"image": images, "family": family, "multi_turn": multi, "consistency_free": flags["consistency_free"],
              "steps": steps if multi else [category],
              "subcategory": item.get("subcategory"), "task_type": item.get("task_type")}
    if wrong:
        return None, wrong
    return Sample(id=index, category=sample_category, instruction=instruction, image_path=paths[0] if paths else None,
                  more_images=paths[1:], language=language, where=where, order=order, extras=extras,
                  reference_images=[p for p in references if p is not None], variables=variables), []


def looks_like(path: Path, first: dict | None) -> bool:
    if path.suffix != ".json":
        return False
    try:
        row = seed.first_item(path)
    except OSError:
        return False
    return (row is not None and all(f in row for f in REQUIRED) and isinstance(row.get("image"), list)
            and "subcategory" in row)
