"""KRIS-Bench (mercurystraw/Kris_Bench) from its release folder, as the official scripts read it:

    KRIS_Bench/<category>/annotation.json   {"<id>": {"ori_img": "1.jpg" | ["1-1.jpg", ...],
                                                      "gt_img": "" | "1-gt.jpg",
                                                      "ins_en": "...", "explain_en": "..."}, ...}
    KRIS_Bench/<category>/<images>           the files annotation.json names, beside it

The benchmark is the FOLDER (the one holding the category folders); its sha256 is taken over every
annotation.json (relative path and bytes, in name order). A sample's id is `<category>_<id>` (ids
repeat across categories), the category the folder's name, the instruction `ins_en`; `ori_img` gives
the input images in order (several for multi-element_composition and temporal_prediction), `gt_img`
the reference image (viewpoint_change, whose instruction-following judge call sees it), and
`explain_en` the text variable the knowledge categories' IF+KP prompt sees.

temporal_prediction: the three given frames are `<id>-<n>.<ext>` with n among 1-4 and the frame to
predict is the missing one (metrics_temporal_prediction.py reads it so, and shows the judge the four
frames in frame order with the edit in the missing place); that frame number is the variable
`target_frame`. Where the frames do not say it, the official script guesses "the last frame + 1";
here such a sample is a load problem naming the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from editfleet_common.safe_files import OutsideRoot, real_inside
from suites.shared.samples import Problem, Sample, resolve_inside

FOLDER = True  # the benchmark is a folder, not a file

# The official scripts' categories (metrics_common.py, metrics_knowledge.py, metrics_view_change.py,
# metrics_multi_element.py, metrics_temporal_prediction.py) and which script judges each.
COMMON = ("count_change", "color_change", "anomaly_correction", "position_movement", "size_adjustment",
          "part_completion", "multi-instruction_execution")
KNOWLEDGE = ("abstract_reasoning", "mathematics", "practical_knowledge", "medicine", "rule-based_reasoning",
             "biology", "geography", "chemistry", "humanities", "physics")
VIEWPOINT = "viewpoint_change"
MULTI_ELEMENT = "multi-element_composition"
TEMPORAL = "temporal_prediction"
CATEGORIES = (*COMMON, *KNOWLEDGE, VIEWPOINT, MULTI_ELEMENT, TEMPORAL)
ANNOTATION = "annotation.json"
_FRAME = re.compile(r"(\d+)-(\d+)")  # metrics_temporal_prediction.py's frame-number pattern


def category_folders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and (p / ANNOTATION).is_file())


def digest(path: Path) -> str:
    """sha256 over every <category>/annotation.json: relative path and bytes, in name order."""
    h = hashlib.sha256()
    for folder in category_folders(path):
        h.update(f"{folder.name}/{ANNOTATION}\0".encode())
        h.update((folder / ANNOTATION).read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _strings(value) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def target_frame(names: list[str]) -> tuple[int | None, str | None]:
    """The frame to predict (the one of 1-4 the given frames lack), or why it cannot be told."""
    numbers = []
    for name in names:
        m = _FRAME.search(name)
        if not m:
            return None, f"ori_img {name!r} is not named <id>-<frame>"
        numbers.append(int(m.group(2)))
    missing = {1, 2, 3, 4} - set(numbers)
    if len(names) != 3 or len(set(numbers)) != 3 or len(missing) != 1:
        return None, (f"ori_img frames {numbers}: temporal_prediction needs three different frames of 1-4 "
                      "(the official script would guess the missing one)")
    return missing.pop(), None


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    samples, problems = [], []
    folders = category_folders(path)
    if not folders:
        return [], [Problem(path.name, None, f"no <category>/{ANNOTATION} in this folder (the KRIS_Bench release folder)")]
    order = 0
    for folder in folders:
        category = folder.name
        where_file = f"{category}/{ANNOTATION}"
        if category not in CATEGORIES:
            problems.append(Problem(where_file, None, f"category folder {category!r} is not one of KRIS-Bench's "
                                                      f"{len(CATEGORIES)} ({', '.join(CATEGORIES)})", order))
            order += 1
            continue
        try:  # every component once links are resolved: the folder, then annotation.json, inside the benchmark
            real_inside(path, folder)
            real_inside(path, folder / ANNOTATION)
        except OutsideRoot as exc:
            problems.append(Problem(where_file, None, f"not read: {exc} (the benchmark folder is {str(path)!r})", order))
            order += 1
            continue
        try:
            data = json.loads((folder / ANNOTATION).read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            problems.append(Problem(where_file, None, f"not UTF-8 ({exc.reason})", order))
            order += 1
            continue
        except json.JSONDecodeError as exc:
            problems.append(Problem(where_file, None, f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})", order))
            order += 1
            continue
        if not isinstance(data, dict):
            problems.append(Problem(where_file, None, f"expected a JSON object id -> {{ori_img, ins_en, ...}}, "
                                                      f"got {type(data).__name__}", order))
            order += 1
            continue
        for key, item in data.items():
            order += 1
            where = f"{where_file}[{key!r}]"
            sample_id = f"{category}_{key}"
            if not isinstance(item, dict):
                problems.append(Problem(where, sample_id, f"expected an object {{ori_img, ins_en, ...}}, got {type(item).__name__}", order))
                continue
            wrong = []
            names = _strings(item.get("ori_img"))
            if names is None:
                wrong.append("ori_img must be a file name or a non-empty list of file names")
            if not isinstance(item.get("ins_en"), str):
                wrong.append("ins_en: missing or not a string")
            for name in ("gt_img", "explain_en"):
                if name in item and not isinstance(item[name], str):
                    wrong.append(f"{name} must be a string, got {type(item[name]).__name__}")
            gt = item.get("gt_img") if isinstance(item.get("gt_img"), str) else ""
            if category == VIEWPOINT and not gt:
                wrong.append("gt_img: viewpoint_change needs the ground-truth image (its IF judge call shows it)")
            variables = {"explain_en": item.get("explain_en") if isinstance(item.get("explain_en"), str) else ""}
            if category == TEMPORAL and names is not None:
                frame, issue = target_frame(names)
                if issue:
                    wrong.append(issue)
                else:
                    variables["target_frame"] = str(frame)
            if wrong:
                problems.extend(Problem(where, sample_id, w, order) for w in wrong)
                continue
            paths = []
            for i, name in enumerate(names):
                resolved, issue = resolve_inside(folder, name)
                if issue:
                    label = "ori_img" if len(names) == 1 else f"ori_img[{i}]"
                    problems.append(Problem(where, sample_id, f"{label}: {issue.replace('the benchmark folder', 'its category folder')}", order))
                paths.append(resolved)
            reference = []
            if gt:
                resolved, issue = resolve_inside(folder, gt)
                if issue:
                    problems.append(Problem(where, sample_id, f"gt_img: {issue.replace('the benchmark folder', 'its category folder')}", order))
                else:
                    reference.append(resolved)  # base.validate checks that it exists and decodes
            samples.append(Sample(
                id=sample_id, category=category, instruction=item["ins_en"],
                image_path=paths[0], more_images=[p for p in paths[1:] if p is not None],
                language="en", where=where, order=order, extras={"key": str(key)},
                reference_images=reference, variables=variables,
            ))
    return samples, problems


def looks_like(path: Path, first: dict | None) -> bool:
    return path.is_dir() and bool(category_folders(path))
