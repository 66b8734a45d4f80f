"""The arena's files: arena.json (everything), leaderboard.csv, judgments.parquet, arena.html (page.py).
All rewritten from judgments.jsonl on every session, atomically."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..results import write_atomic, write_json_atomic
from . import matches as match_files
from .ratings import ArenaConfig, ArenaRatings, Judgment


def _dimension_counts(lines: list[dict], questions: list[str]) -> dict:
    """Per question: verdicts A / B / tie, no verdict, and the disagreements between the two orders."""
    out = {}
    for q in questions:
        c = Counter()
        for line in lines:
            if q not in line.get("fitted_questions", line.get("questions") or []):
                continue
            c[line["verdicts"].get(q) or "none"] += 1
            for verdict in line.get("pairwise") or []:
                if verdict["question"] == q:
                    c["asked_both_orders"] += len(verdict["orders"]) == 2
                    c["disagreements"] += bool(verdict["disagreement"])
        out[q] = {"A": c["A"], "B": c["B"], "tie": c["tie"], "no_verdict": c["none"],
                  "asked_both_orders": c["asked_both_orders"], "disagreements": c["disagreements"]}
    return out


def arena_data(*, manifest: dict, players, samples, questions: list[str], fit: ArenaConfig, options,
               possible_pairs, lines: list[dict], all_lines: list[dict], ratings: ArenaRatings | None,
               stop_reason: str) -> dict:
    statuses = Counter(line.get("status") for line in lines)
    pairs = {(line["prompt"], frozenset((line["model_a"], line["model_b"]))) for line in lines}
    return {
        "editfleet_arena": 1,
        "benchmark": manifest.get("benchmark"),
        "protocol": manifest.get("protocol"),
        "judge": manifest.get("judge"),
        "matches": manifest.get("matches") or [],
        "players": [p.describe() for p in players] if players else [
            {"name": m} for m in (ratings.overall.models if ratings else ())],
        "questions": questions,
        "orders": (manifest.get("sessions") or [{}])[-1].get("orders") if manifest.get("sessions") else None,
        "pairs": {"mode": getattr(options, "pairs", None), "budget": getattr(options, "budget", None),
                  "possible": possible_pairs, "judged": len(pairs), "stopped": stop_reason},
        "judgments": {"lines": len(all_lines), "fitted": len(lines), "statuses": dict(statuses),
                      "by_question": _dimension_counts(lines, questions)},
        "fit": {"alpha": fit.alpha, "weighting": fit.weighting, "dimensions": list(fit.dimensions),
                "bootstrap": fit.bootstrap, "seed": fit.seed, "percentiles": list(fit.percentiles),
                "shrink_toward": fit.shrink_toward,
                "reference": "GEditBench v2 src/common_utils/elo_score.py (ZhangqiJiang07/GEditBench_v2 82bc00ed): "
                             "Elo = 1000 + theta * 400 / ln 10"},
        "ratings": ratings.to_dict() if ratings else None,
        "samples": len(samples) if samples else None,
    }


def leaderboard_csv(data: dict) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["scope", "rank", "model", "elo", "lower", "upper", "score", "ci", "judgments", "dimensions_covered"])
    ratings = data.get("ratings") or {}
    scopes = [("overall", ratings.get("overall"))] + list((ratings.get("categories") or {}).items())
    for scope, board in scopes:
        if not board:
            continue
        for row in board["leaderboard"]:
            writer.writerow([scope, row["rank"], row["model"], f"{row['elo']:.4f}", f"{row['lower']:.4f}",
                             f"{row['upper']:.4f}", row["score"], row["ci"], row["judgments"], row["dimensions_covered"]])
    return buf.getvalue()


def _order(verdict: dict | None, swapped: bool) -> dict:
    for order in (verdict or {}).get("orders") or []:
        if order["swapped"] == swapped:
            return order
    return {}


def judgments_table(lines: list[dict], questions: list[str]) -> pa.Table:
    """One row per judgment line and question it settles: the verdict, both orders (what each read,
    its probabilities, its raw replies), status and provenance."""
    rows = []
    for line in lines:
        by_question = {v["question"]: v for v in line.get("pairwise") or []}
        for q in line.get("fitted_questions", line.get("questions") or []):
            verdict = by_question.get(q)
            first, second = _order(verdict, False), _order(verdict, True)
            rows.append({
                "key": line["key"], "prompt": line["prompt"], "category": line.get("category"),
                "model_a": line["model_a"], "model_b": line["model_b"], "question": q,
                "winner": line["verdicts"].get(q), "disagreement": (verdict or {}).get("disagreement"),
                "rule": (verdict or {}).get("rule"), "status": line.get("status"), "error": line.get("error"),
                "first_winner": first.get("winner"), "first_p_a": first.get("p_a"), "first_p_b": first.get("p_b"),
                "first_p_tie": first.get("p_tie"), "first_raw": first.get("raw_responses"), "first_error": first.get("error"),
                "swapped_winner": second.get("winner"), "swapped_p_a": second.get("p_a"), "swapped_p_b": second.get("p_b"),
                "swapped_p_tie": second.get("p_tie"), "swapped_raw": second.get("raw_responses"),
                "swapped_error": second.get("error"),
                "raw_responses": line.get("raw_responses") or [], "protocol": line.get("protocol"),
                "judge_hash": line.get("judge_hash"), "source": line.get("source"),
            })
    floats = {"first_p_a", "first_p_b", "first_p_tie", "swapped_p_a", "swapped_p_b", "swapped_p_tie"}
    lists = {"first_raw", "swapped_raw", "raw_responses"}
    names = ["key", "prompt", "category", "model_a", "model_b", "question", "winner", "disagreement", "rule", "status",
             "error", "first_winner", "first_p_a", "first_p_b", "first_p_tie", "first_raw", "first_error",
             "swapped_winner", "swapped_p_a", "swapped_p_b", "swapped_p_tie", "swapped_raw", "swapped_error",
             "raw_responses", "protocol", "judge_hash", "source"]

    def kind(name):
        if name in floats:
            return pa.float64()
        if name in lists:
            return pa.list_(pa.string())
        if name == "disagreement":
            return pa.bool_()
        return pa.string()

    return pa.table({n: pa.array([r[n] for r in rows], type=kind(n)) for n in names})


def write_match_files(folder: Path, lines: list[dict]) -> list[Path]:
    """The verdicts as GEditBench v2's match files, for the questions named as its dimensions (VC, VQ,
    IF): <folder>/matches/eval_<dim>_metadata/arena.jsonl, lines {"key", "results": {"winner"}} ("Failed"
    where there is no verdict, which its elo_score.py skips), in the judgments' order, so that its
    script ranks them too."""
    judgments = [Judgment(line["prompt"], line["model_a"], line["model_b"],
                          {q: line["verdicts"].get(q) for q in line.get("fitted_questions", line.get("questions") or [])})
                 for line in lines]
    written = []
    for dim, name in match_files.DIMENSION_FOLDERS.items():
        records = match_files.match_records(judgments, dim)
        if not records:
            continue
        path = Path(folder) / "matches" / name / "arena.jsonl"
        write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8"))
        written.append(path)
    return written


def write_outputs(folder: Path, data: dict, lines: list[dict], ratings, *, players, samples, examples: int) -> None:
    from .page import arena_page

    folder = Path(folder)
    if players:
        write_match_files(folder, lines)
    write_json_atomic(folder / "arena.json", data)
    write_atomic(folder / "leaderboard.csv", leaderboard_csv(data).encode("utf-8"))
    buf = pa.BufferOutputStream()
    pq.write_table(judgments_table(lines, data["questions"]), buf)
    write_atomic(folder / "judgments.parquet", buf.getvalue().to_pybytes())
    write_atomic(folder / "arena.html", arena_page(data, lines, players=players, samples=samples,
                                                   examples=examples).encode("utf-8"))


def console_table(data: dict) -> str:
    ratings = data.get("ratings")
    if not ratings:
        return "No verdicts yet: no ratings."
    board = ratings["overall"]
    width = max(len(r["model"]) for r in board["leaderboard"])
    out = [f"Leaderboard ({board['bootstrap_rounds']} bootstrap rounds over prompts, 95% interval; "
           f"verdicts: {', '.join(f'{d} {n}' for d, n in board['verdicts'].items())})"]
    out.append(f"{'rank':>4}  {'model':<{width}}  {'Elo':>7}  {'interval':>11}  judgments")
    for r in board["leaderboard"]:
        out.append(f"{r['rank']:>4}  {r['model']:<{width}}  {r['elo']:7.1f}  {r['ci']:>11}  {r['judgments']}")
    pairs = data["pairs"]
    if pairs.get("possible") is not None:
        out.append(f"Pairs judged: {pairs['judged']} of {pairs['possible']} ({pairs['stopped']})")
    dis = {q: c["disagreements"] for q, c in data["judgments"]["by_question"].items() if c["asked_both_orders"]}
    if dis:
        out.append("Orders disagreeing: " + ", ".join(
            f"{q} {n}/{data['judgments']['by_question'][q]['asked_both_orders']}" for q, n in dis.items()))
    return "\n".join(out)
