"""GEditBench v2's match files, read and written (issue 30): published or cached pairwise
judgments ranked directly by `ratings.fit_ratings`.

The format, as GEditBench v2 writes it (``src/cli/autopipeline.py``, ``_write_eval_results``) and
reads it (``src/common_utils/elo_score.py``), at ZhangqiJiang07/GEditBench_v2
82bc00ed59963b597dea0b9162bdd9e38fc8fbe6: one JSONL file per dimension, each dimension judged by
its own pipeline config (``configs/pipelines/vlm_as_a_judge/eval_{if,vc,vq}.yaml``) and written to
``<save path>/<bench>/eval_if_metadata[_<metadata stem>]/<%Y%m%d_%H%M%S>.jsonl`` (the stem when the
gallery's metadata file is not ``metadata.jsonl``; ``scripts/elo.sh`` reads
``eval_if_metadata/example.jsonl``), one line per judged pair::

    {"key": "<prompt>_pair_<model A>_vs_<model B>", "results": {"winner": "Image A", ...}}

``winner`` is "Image A", "Image B" or "Tie" (``result`` is read where ``results`` is missing or
empty). The key is split at the first ``_pair_`` and then at the first ``_vs_``, as the reference
does. As there, a line whose key does not split is skipped whole; a line whose winner is anything
else (its pipeline's "Failed", a missing field) gives no verdict but its two models still take part
in the arena (they are players, rated from the prior alone if they have no verdict at all). Note
that GEditBench v2's own pipeline drops "Tie" and "Failed" lines when it writes these files, so its
published files hold no ties, though its fit models them.

The prompt is GEditBench v2's sample key, ``<task>_<six digits>`` (``background_change_000000``);
its category is the task (`category_of_prompt`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence

from .ratings import Judgment

WINNERS = {"Image A": "A", "Image B": "B", "Tie": "tie"}
#: Each dimension's result folder under GEditBench v2's ``e_openedit_pair_res/<bench>/``.
DIMENSION_FOLDERS = {"IF": "eval_if_metadata", "VC": "eval_vc_metadata", "VQ": "eval_vq_metadata"}
_TASK = re.compile(r"^(.+)_\d+$")


def parse_key(key: str) -> tuple[str, str, str]:
    """(prompt, model A, model B) of ``<prompt>_pair_<A>_vs_<B>``; ValueError if it does not split."""
    if "_pair_" not in key:
        raise ValueError(f"match key without '_pair_': {key!r}")
    prompt, pair = key.split("_pair_", 1)
    if "_vs_" not in pair:
        raise ValueError(f"match key without '_vs_': {key!r}")
    model_a, model_b = pair.split("_vs_", 1)
    return prompt, model_a, model_b


def make_key(prompt: str, model_a: str, model_b: str) -> str:
    """The key of a pair; ValueError where it would not split back into the same three parts."""
    key = f"{prompt}_pair_{model_a}_vs_{model_b}"
    if parse_key(key) != (prompt, model_a, model_b):
        raise ValueError(f"{key!r} does not split back into ({prompt!r}, {model_a!r}, {model_b!r})")
    return key


# GEditBench v2's pair orientation (src/common_utils/pairwise.py at 82bc00ed: tokenize_name,
# model_sort_key, canonical_pair): each pair is asked once, the model whose name sorts first by this key
# shown as Image A.
_NAME_TOKENS = re.compile(r"\d+|[a-zA-Z]+")


def model_sort_key(name: str):
    """Names compared token by token, numbers as numbers and letters lower-cased, then as written:
    Qwen_Image_Edit_2509 before Qwen_Image_Edit_2511, FLUX2_dev before FLUX2_dev_turbo."""
    tokens = [int(part) if part.isdigit() else part for part in _NAME_TOKENS.findall(name.lower())]
    return ([(0, t, "") if isinstance(t, int) else (1, 0, t) for t in tokens], name)


def canonical_pair(a: str, b: str) -> tuple[str, str]:
    """The pair in GEditBench v2's order: (the one shown as Image A, the one shown as Image B)."""
    return tuple(sorted((a, b), key=model_sort_key))  # type: ignore[return-value]


def parse_winner(value) -> Optional[str]:
    """"A", "B" or "tie"; None for anything else (no verdict)."""
    return WINNERS.get(value) if isinstance(value, str) else None


def category_of_prompt(prompt: str) -> Optional[str]:
    """GEditBench v2's task of a sample key: ``subject_add_000012`` -> ``subject_add``."""
    m = _TASK.match(prompt)
    return m.group(1) if m else None


def judgments_from_records(records: Iterable[dict], dimension: str,
                           category: Callable[[str], Optional[str]] = category_of_prompt) -> list[Judgment]:
    """One `Judgment` (on `dimension` alone) per record, in the records' order (which sets the
    order of the bootstrap's prompt clusters, as in the reference)."""
    out = []
    for item in records:
        try:
            prompt, model_a, model_b = parse_key(item["key"])
        except (KeyError, TypeError, ValueError):
            continue
        results = item.get("results") or item.get("result") or {}
        winner = parse_winner(results.get("winner")) if isinstance(results, dict) else None
        out.append(Judgment(prompt, model_a, model_b, {dimension: winner}, category(prompt)))
    return out


def read_match_file(path, dimension: str,
                    category: Callable[[str], Optional[str]] = category_of_prompt) -> list[Judgment]:
    with open(path, "r", encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return judgments_from_records(records, dimension, category)


def read_match_files(files: Mapping[str, object],
                     category: Callable[[str], Optional[str]] = category_of_prompt) -> list[Judgment]:
    """``{"VC": path, "VQ": path, "IF": path}`` -> the judgments of every file."""
    out: list[Judgment] = []
    for dimension, path in files.items():
        out.extend(read_match_file(path, dimension, category))
    return out


def find_match_files(root) -> dict[str, Path]:
    """The result file of each dimension under a GEditBench v2 results folder
    (``<root>/eval_{if,vc,vq}_metadata*/*.jsonl``). More than one file for a dimension is refused,
    naming them (pass the paths to `read_match_files` instead); a missing dimension is left out."""
    root = Path(root)
    found = {}
    for dimension, folder in DIMENSION_FOLDERS.items():
        files = sorted(f for d in root.glob(f"{folder}*") if d.is_dir() for f in d.glob("*.jsonl"))
        if len(files) > 1:
            names = ", ".join(str(f.relative_to(root)) for f in files)
            raise ValueError(f"{root}: {len(files)} result files for {dimension} ({names}); name one per dimension")
        if files:
            found[dimension] = files[0]
    if not found:
        raise FileNotFoundError(f"{root}: none of {', '.join(DIMENSION_FOLDERS.values())} holds a .jsonl file")
    return found


def match_records(judgments: Sequence[Judgment], dimension: str) -> list[dict]:
    """The records of one dimension's file: every judgment with that dimension; no verdict is
    written "Failed", as GEditBench v2's judge records it."""
    out = []
    inverse = {v: k for k, v in WINNERS.items()}
    for j in judgments:
        if dimension not in j.outcomes:
            continue
        outcome = j.outcomes[dimension]
        out.append({"key": make_key(j.prompt, j.model_a, j.model_b),
                    "results": {"winner": "Failed" if outcome is None else inverse[outcome]}})
    return out


def write_match_file(judgments: Sequence[Judgment], dimension: str, path) -> int:
    records = match_records(judgments, dimension)
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(records)
