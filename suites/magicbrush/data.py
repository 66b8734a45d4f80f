"""MagicBrush's test set (OSU-NLP-Group/MagicBrush; the test split ships as a zip, its `test/` folder):

    test/edit_sessions.json       {"<img_id>": [{"input": "<img_id>-input.png", "mask": "<img_id>-mask1.png",
                                                  "output": "<img_id>-output1.png", "instruction": "..."},
                                                 {"input": "<img_id>-output1.png", ...}, ...], ...}
    test/images/<img_id>/         the session's input, ground-truth outputs and masks
    test/local_descriptions.json  {"<img_id>": {"<img_id>-output1.png": "caption", ...}, ...}  (CLIP-T)

The benchmark is the FOLDER holding edit_sessions.json. One sample per turn: the single-turn ("all
turns", independent editing) setting of evaluation/image_eval.py, where turn k edits the ground
truth's input of turn k (the session's input for turn 1, the ground-truth output of turn k-1 after:
`<img_id>_inde_<k>` in the official naming) and is compared with the ground-truth output of turn k
(the sample's reference image). A sample's id is `<img_id>_<k>` (k from 1), its category `turn<k>`;
`extras` keep the session id (`session`), the turn index (`turn`, 1-based), the number of turns in its
session (`turns`) and the file names of its input, output and mask. The variable `output_caption` is
the ground-truth output's caption from local_descriptions.json (else global_descriptions.json, keyed
the same way), which CLIP-T compares the edit with; without either file CLIP-T is not asked.

The multi-turn ("final turn", iterative editing) setting comes in the same benchmark: for each turn
k >= 2 of a session, a sample `<img_id>_iter_<k>` (category `iter<k>`, extras `setting: multi-turn`)
whose input is the edit of the turn before (`input_from`: `<img_id>_1`, the turn both settings share,
for k = 2, else `<img_id>_iter_<k-1>`), compared with the same ground-truth output of turn k: the
`<img_id>_iter_<k>` images of edit_cli_single_multi_turn.py and evaluation/README.md. One setting
alone: `--categories turn1,turn2,turn3` (single-turn), `--categories turn1,iter2,iter3` (multi-turn).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from suites.shared.samples import Problem, Sample, resolve_inside

FOLDER = True
SESSIONS = "edit_sessions.json"
CAPTION_FILES = ("local_descriptions.json", "global_descriptions.json")  # the first present is used
TURN_FIELDS = ("input", "output", "instruction")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 ({exc.reason})"
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})"


def digest(path: Path) -> str:
    """sha256 over edit_sessions.json and the caption file used (name and bytes)."""
    h = hashlib.sha256()
    for name in (SESSIONS, *CAPTION_FILES[:1 + (not (path / CAPTION_FILES[0]).is_file())]):
        if (path / name).is_file():
            h.update(f"{name}\0".encode())
            h.update((path / name).read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def caption_file(path: Path) -> Path | None:
    return next((path / name for name in CAPTION_FILES if (path / name).is_file()), None)


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    sessions, error = _read_json(path / SESSIONS)
    if error:
        return [], [Problem(SESSIONS, None, error)]
    if not isinstance(sessions, dict):
        return [], [Problem(SESSIONS, None, f"expected a JSON object img_id -> list of turns, got {type(sessions).__name__}")]
    captions, caption_name = {}, ""
    found = caption_file(path)
    if found is not None:
        captions, error = _read_json(found)
        caption_name = found.name
        if error or not isinstance(captions, dict):
            return [], [Problem(caption_name, None, error or "expected a JSON object img_id -> {image name: caption}")]
    images_root = path / "images"
    samples, problems = [], []
    order = 0
    for session_id, turns in sessions.items():
        where = f"{SESSIONS}[{session_id!r}]"
        if not isinstance(turns, list) or not turns:
            problems.append(Problem(where, str(session_id), "expected a non-empty list of turns", order))
            order += 1
            continue
        first = len(samples)  # this session's single-turn samples start here
        for index, turn in enumerate(turns, start=1):
            order += 1
            sample_id = f"{session_id}_{index}"
            twhere = f"{where}[{index - 1}]"
            if not isinstance(turn, dict):
                problems.append(Problem(twhere, sample_id, f"expected an object, got {type(turn).__name__}", order))
                continue
            missing = [f for f in TURN_FIELDS if not isinstance(turn.get(f), str) or not turn.get(f)]
            if missing:
                problems.append(Problem(twhere, sample_id, f"missing or non-string field(s): {', '.join(missing)}", order))
                continue
            folder = images_root / str(session_id)
            paths = {}
            for field in ("input", "output"):
                paths[field], issue = resolve_inside(folder, turn[field], root=path)
                if issue:
                    problems.append(Problem(twhere, sample_id, f"{field}: {issue}", order))
            if None in paths.values():
                continue
            variables = {}
            if captions:
                caption = (captions.get(str(session_id)) or {}).get(turn["output"]) if isinstance(
                    captions.get(str(session_id)), dict) else None
                if not isinstance(caption, str):
                    problems.append(Problem(twhere, sample_id, f"no caption for {turn['output']!r} in {caption_name} "
                                                               "(CLIP-T compares the edit with it)", order))
                    continue
                variables["output_caption"] = caption
            samples.append(Sample(
                id=sample_id, category=f"turn{index}", instruction=turn["instruction"], image_path=paths["input"],
                language="en", where=twhere, order=order, reference_images=[paths["output"]], variables=variables,
                extras={"session": str(session_id), "turn": index, "turns": len(turns), "input": turn["input"],
                        "output": turn["output"], "mask": turn.get("mask") or "", "captions": caption_name}))
        samples += multi_turn(samples[first:])
    return samples, problems


def multi_turn(single: list[Sample]) -> list[Sample]:
    """A session's multi-turn samples from its single-turn ones (turn 1, 2, ...; all of them loaded):
    turn k >= 2 edits the edit of turn k-1, against the same ground truth as its single-turn twin."""
    if len(single) < 2 or [s.extras["turn"] for s in single] != list(range(1, len(single) + 1)):
        return []  # a session with a turn that did not load has its problem listed already
    out = []
    for twin in single[1:]:
        session, turn = twin.extras["session"], twin.extras["turn"]
        extras = {k: v for k, v in twin.extras.items() if k != "input"}
        out.append(Sample(
            id=f"{session}_iter_{turn}", category=f"iter{turn}", instruction=twin.instruction, language=twin.language,
            where=twin.where, order=twin.order, reference_images=list(twin.reference_images),
            variables=dict(twin.variables), extras={**extras, "setting": "multi-turn"},
            input_from=f"{session}_1" if turn == 2 else f"{session}_iter_{turn - 1}"))
    return out


def looks_like(path: Path, first: dict | None) -> bool:
    return path.is_dir() and (path / SESSIONS).is_file() and (path / "images").is_dir()
