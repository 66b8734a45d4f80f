"""`orchestrator arena RUN_DIR... -o ARENA_DIR`: the runs are players; pairs of their edits of each
sample are judged by a pairwise protocol over the judge fleet, and the players rated by GEditBench
v2's joint Davidson-Bradley-Terry fit (ratings.py).

    ARENA_DIR/manifest.json      the players (runs), benchmark, protocol, judge, sessions
    ARENA_DIR/judgments.jsonl    every judgment as it came (judging.py), appended, never rewritten
    ARENA_DIR/arena.json         the ratings (overall and per category, bootstrap intervals, win rates,
                                 counts), what was judged and how
    ARENA_DIR/judgments.parquet  one row per judgment and question: both orders, raw replies
    ARENA_DIR/leaderboard.csv    rank, rating, interval, judgments per model (overall, then per category)
    ARENA_DIR/arena.html         the page (page.py)
    ARENA_DIR/matches/           the verdicts as GEditBench v2 match files (eval_<dim>_metadata/arena.jsonl),
                                 which its elo_score.py reads
    ARENA_DIR/logs/              the judge's logs

Pairs: `--pairs all` judges every pair of players on every sample both have an edit of; `--pairs
adaptive --budget N` judges pairs chosen in rounds by pairing.next_pairs (the ones that most cut the
uncertainty of the ranking) until N pairs are judged or the neighbours' intervals separate. Each pair
is sent once, the players in GEditBench v2's order (matches.canonical_pair: its edit A), with the
questions not yet judged; the scorer asks them in the protocol's orders (`--orders` overrides).

Resume: every judgment is a line of judgments.jsonl once it arrives; a rerun (after a kill -9 too)
judges only the (pair, question)s without a final line for the players' current edits, so adding a
player judges only its pairs. A line by another judge build or protocol text is judged again (as a
run's score is); lines read from GEditBench v2 match files (`--matches`) are kept as they are.

`orchestrator arena --matches FILE_OR_FOLDER... -o DIR`: no runs, no judge: GEditBench v2's match files
ranked directly (matches.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from editfleet_common.channels import ServiceError
from scorer_service.client import ScorerClient, info_to_dict
from suites.shared.protocol import Protocol

from .. import manifest as mf
from ..benchmark import Sample, suite_of
from ..config import as_named, build_config, client_tls, merge_overrides, protocol_reply_budget
from ..fleet import make_fleet
from ..results import write_json_atomic
from . import matches as match_files
from .judging import FINAL, Judgments, PairJudge, PairTask, pair_id
from .pairing import fit_point, next_pairs, separated
from .players import ArenaError, Player, load_players
from .ratings import ArenaConfig, Judgment, fit_ratings

DEFAULT_PROTOCOL = "geditbench-v2"  # for suites without a pairwise protocol of their own
PAIRS = ("all", "adaptive")


@dataclass
class ArenaOptions:
    run_dirs: list[Path]
    output: Path
    labels: list[str] = field(default_factory=list)
    protocol: str | None = None
    pairs: str = "all"
    budget: int | None = None
    round_size: int | None = None      # adaptive: pairs per round (default: the judges' batch x replicas, >= 8)
    top_k: int | None = None           # adaptive: the ranks whose order decides (None: all)
    orders: str | None = None          # "one" | "both" | None: the protocol's
    dimensions: list[str] | None = None
    matches: list[str] = field(default_factory=list)
    fit: ArenaConfig = field(default_factory=ArenaConfig)
    judge_overrides: dict = field(default_factory=dict)   # run config keys -> values (judge.*, fleet.*, devices.*)
    progress: str = "plain"
    examples: int = 8                  # example pairs on the page


# -- the arena folder ---------------------------------------------------------------------------------
class ArenaDir:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.manifest_path = self.path / "manifest.json"
        self.judgments = Judgments(self.path / "judgments.jsonl")
        self.logs = self.path / "logs"

    def create(self) -> "ArenaDir":
        self.path.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        return self

    def read_manifest(self) -> dict | None:
        import json

        if not self.manifest_path.exists():
            return None
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ArenaError(f"{self.manifest_path}: unreadable ({exc})") from None

    def write_manifest(self, manifest: dict) -> None:
        write_json_atomic(self.manifest_path, manifest)


# -- match files ------------------------------------------------------------------------------------
def match_paths(specs: list[str]) -> dict[str, list[Path]]:
    """dimension -> files, from `--matches` values: a GEditBench v2 results folder (its
    eval_{if,vc,vq}_metadata*/ folders), a file inside such a folder, or DIM=FILE."""
    out: dict[str, list[Path]] = {}
    folders = {v: k for k, v in match_files.DIMENSION_FOLDERS.items()}
    for spec in specs:
        if "=" in spec and spec.split("=", 1)[0] in match_files.DIMENSION_FOLDERS:
            dim, path = spec.split("=", 1)
            out.setdefault(dim, []).append(Path(path))
            continue
        path = Path(spec)
        if path.is_dir():
            try:
                for dim, file in match_files.find_match_files(path).items():
                    out.setdefault(dim, []).append(file)
            except (ValueError, FileNotFoundError) as exc:
                raise ArenaError(str(exc)) from None
            continue
        if not path.is_file():
            raise ArenaError(f"--matches {spec}: no such file or folder")
        dim = next((d for prefix, d in folders.items() if path.parent.name.startswith(prefix)), None)
        if dim is None:
            raise ArenaError(f"--matches {spec}: which dimension? Its folder is not eval_{{if,vc,vq}}_metadata*; "
                             "write IF=FILE, VC=FILE or VQ=FILE")
        out.setdefault(dim, []).append(path)
    return out


def read_matches(specs: list[str], category=match_files.category_of_prompt) -> tuple[list[Judgment], list[dict]]:
    """The judgments of the match files, and a record of each file read."""
    judgments, read = [], []
    for dim, files in match_paths(specs).items():
        for file in files:
            try:
                found = match_files.read_match_file(file, dim, category)
            except (OSError, ValueError) as exc:
                raise ArenaError(f"{file}: cannot read it as a GEditBench v2 match file ({exc})") from None
            judgments.extend(found)
            read.append({"dimension": dim, "file": str(file.resolve()), "lines": len(found),
                         "verdicts": sum(j.outcomes.get(dim) is not None for j in found)})
    return judgments, read


# -- what is judged ---------------------------------------------------------------------------------
def oriented(a: str, b: str) -> tuple[str, str]:
    return match_files.canonical_pair(a, b)


def candidate_pairs(players: list[Player], samples: list[Sample]) -> list[tuple[Sample, Player, Player]]:
    """Every pair of players on every sample both have an edit of, in GEditBench v2's orientation."""
    by_name = {p.name: p for p in players}
    out = []
    for sample in samples:
        having = sorted((p.name for p in players if sample.id in p.edits), key=match_files.model_sort_key)
        for i, a in enumerate(having):
            for b in having[i + 1:]:
                x, y = oriented(a, b)
                out.append((sample, by_name[x], by_name[y]))
    return out


def _current(record: dict, by_name: dict[str, Player]) -> bool:
    """The line is about the players' current edits (a line from a match file: always)."""
    if str(record.get("source", "")).startswith("matches:"):
        return True
    a, b = by_name.get(record["model_a"]), by_name.get(record["model_b"])
    if a is None or b is None:
        return False
    ea, eb = a.edits.get(record["prompt"]), b.edits.get(record["prompt"])
    return bool(ea and eb and ea.get("sha256") == record.get("edit_a_sha256") and eb.get("sha256") == record.get("edit_b_sha256"))


def settled(arena: ArenaDir, players: list[Player], questions: list[str]) -> dict[tuple, dict]:
    """(prompt, {A, B}, question) -> the line that settles it: its latest, final and about the
    players' current edits."""
    by_name = {p.name: p for p in players}
    out = {}
    for key, record in arena.judgments.latest().items():
        if key[2] in questions and record.get("status") in FINAL and _current(record, by_name):
            out[key] = record
    return out


def fitted_judgments(arena: ArenaDir, players: list[Player], questions: list[str],
                     samples: list[Sample]) -> tuple[list[Judgment], list[dict]]:
    """One ratings.Judgment per line, with the questions for which it is the settling line; and
    those lines (for the tables)."""
    keep = settled(arena, players, questions)
    category = {s.id: s.category for s in samples}
    names = {p.name for p in players}
    per_line: dict[int, tuple[dict, list[str]]] = {}
    for (prompt, pair, question), record in keep.items():
        if not pair <= names:
            continue
        per_line.setdefault(id(record), (record, []))[1].append(question)
    judgments, lines = [], []
    # the file's order: the reference's bootstrap draws prompt clusters in order of first appearance
    for record, qs in sorted(per_line.values(), key=lambda rq: rq[0]["_line"]):
        outcomes = {q: record["verdicts"].get(q) for q in questions if q in qs}
        judgments.append(Judgment(record["prompt"], record["model_a"], record["model_b"], outcomes,
                                  category.get(record["prompt"], record.get("category"))))
        lines.append({**{k: v for k, v in record.items() if k != "_line"},
                      "fitted_questions": [q for q in questions if q in qs]})
    return judgments, lines


def import_matches(arena: ArenaDir, specs: list[str], players: list[Player], samples: list[Sample], ui) -> int:
    """Verdicts of GEditBench v2 match files among these players, added to judgments.jsonl (once)."""
    judgments, read = read_matches(specs)
    names = {p.name for p in players}
    ids = {s.id: s for s in samples}
    have = {(r["key"], tuple(r.get("questions") or []), r.get("source")) for r in arena.judgments.read()}
    added = 0
    files = {d["dimension"]: d["file"] for d in read}
    for j in judgments:
        if j.model_a not in names or j.model_b not in names or j.prompt not in ids:
            continue
        (dim, winner), = j.outcomes.items()
        key = match_files.make_key(j.prompt, j.model_a, j.model_b)
        source = f"matches:{files[dim]}"
        if (key, (dim,), source) in have:
            continue
        arena.judgments.append({
            "key": key, "prompt": j.prompt, "category": ids[j.prompt].category, "model_a": j.model_a,
            "model_b": j.model_b, "questions": [dim], "verdicts": {dim: winner},
            "status": "OK" if winner else "PARSE_FAILED", "error": "" if winner else "no verdict in the match file",
            "pairwise": [], "raw_responses": [], "response": "", "protocol": "", "protocol_hash": "",
            "orders": "", "judge_hash": "", "source": source})
        have.add((key, (dim,), source))
        added += 1
    ui.print(f"Read {sum(d['lines'] for d in read)} line(s) of {len(read)} match file(s): "
             f"{added} verdict(s) among these players added")
    return added


# -- the judge ----------------------------------------------------------------------------------------
def judge_config(players: list[Player], options: ArenaOptions, protocol_name: str):
    """The run config the judge fleet starts from: the first player's run config, the judge flags given,
    the protocol; no editing."""
    from ..run import config_from_run_dir

    config, _ = config_from_run_dir(players[0].edits_root)
    data = as_named(config)  # the pairwise protocol's own reply budget, not the run's protocol's
    data = merge_overrides(data, {**options.judge_overrides, "judge.protocol": protocol_name,
                                  "output": str(options.output), "progress": options.progress})
    config = build_config({**data, "_origin": "command line"})
    if config.judge.max_new_tokens is None:  # the protocol's own reply budget, as a run's judge gets it
        config.judge.max_new_tokens = protocol_reply_budget(config.judge)
    return config


def find_pairwise_protocol(config, name: str, questions: list[str] | None) -> Protocol:
    from ..judge_protocol import find_protocol

    protocol = find_protocol(config.judge)
    if protocol is None:
        raise ArenaError(f"no judge protocol {name!r} (the suites' protocols and the judge's --protocols-dir)")
    if not protocol.pairwise:
        raise ArenaError(f"protocol {name!r} is not pairwise (its questions answer one edit); "
                         f"an arena needs one whose questions have answer: pairwise, e.g. {DEFAULT_PROTOCOL}")
    names = [q.name for q in protocol.questions]
    unknown = [q for q in questions or [] if q not in names]
    if unknown:
        raise ArenaError(f"--dimensions {','.join(unknown)}: not questions of {name!r} (it asks {', '.join(names)})")
    return protocol


class _Judging:
    """The judge fleet for one session, started the first time it is needed."""

    def __init__(self, config, arena: ArenaDir, protocol: Protocol, ui):
        self.config, self.arena, self.protocol, self.ui = config, arena, protocol, ui
        self.fleet = None
        self.scorers = []
        self.info: dict = {}

    def start(self) -> None:
        if self.fleet is not None:
            return
        config = self.config
        if config.fleet.kind != "static" and not config.judge.model:
            raise ArenaError("no judge model: give --judge-model (or run the players' runs with one)")
        self.fleet = make_fleet(config, self.arena.logs)
        t0 = time.monotonic()
        self.ui.print(f"Starting the judge ({config.judge.model or config.fleet.kind + ' fleet'})...")
        self.scorers = self.fleet.start_scorers(config.judge_replicas)
        infos = {}
        for endpoint in self.scorers:
            with ScorerClient(endpoint.address, tls=client_tls(config.judge.tls)) as client:
                try:
                    infos[endpoint.name] = info_to_dict(client.info())
                except ServiceError as exc:
                    raise ArenaError(f"judge at {endpoint.address}: GetInfo failed: {exc}") from None
        info = infos[self.scorers[0].name]
        for name, other in infos.items():
            if (other["model"]["content_hash"], other["protocols"]) != (info["model"]["content_hash"], info["protocols"]):
                raise ArenaError(f"judge replica {name} runs another model or other protocols than {self.scorers[0].name}")
        if self.protocol.name not in info["protocols"]:
            raise ArenaError(f"the judge has no protocol {self.protocol.name!r} (it has: {', '.join(info['protocols'])})")
        self.info = info
        self.ui.print(f"Judge SERVING at {', '.join(e.address for e in self.scorers)} in {time.monotonic() - t0:.1f}s")

    @property
    def judge_hash(self) -> str:
        return self.info["model"]["content_hash"]

    @property
    def protocol_hash(self) -> str:
        return self.info["protocols"][self.protocol.name]["sha256"]

    def judge(self, tasks: list[PairTask], orders: str, total: int, done_before: int):
        config = self.config

        def restart(endpoint):
            replaced = self.fleet.restart_scorer(endpoint)
            return replaced.address if replaced is not None else None

        concurrency = config.judge.max_batch if config.judge.backend == "transformers" else config.judge.max_concurrency
        judge = PairJudge(judgments=self.arena.judgments, ui=self.ui, protocol=self.protocol.name, orders=orders,
                          batch_size=config.judge.max_batch,
                          max_in_flight=config.judge.max_in_flight or 4 * concurrency,
                          max_attempts=config.judge.max_attempts,
                          client_factory=partial(ScorerClient, tls=client_tls(config.judge.tls)), restart=restart,
                          judge_hash=self.judge_hash, stall_timeout_s=config.judge.stall_timeout_s,
                          total=total, done_before=done_before)
        return judge.run(self.scorers, tasks)

    def close(self) -> None:
        if self.fleet is not None:
            self.fleet.close()


def _tasks(todo: dict[tuple, list[str]], by_pair: dict[tuple, tuple], questions: list[str]) -> list[PairTask]:
    out = []
    for n, (pid, qs) in enumerate(todo.items()):
        sample, a, b = by_pair[pid]
        out.append(PairTask(n, sample, a, b, tuple(q for q in questions if q in qs)))
    return out


def run_arena(options: ArenaOptions, ui) -> dict:
    """The arena command (see the module docstring); returns arena.json's data."""
    from ..run import load_samples

    if options.pairs not in PAIRS:
        raise ArenaError(f"--pairs {options.pairs!r}: one of {', '.join(PAIRS)}")
    if options.pairs == "adaptive" and not options.budget:
        raise ArenaError("--pairs adaptive needs --budget N (the most pairs to judge)")
    if not options.run_dirs:
        if not options.matches:
            raise ArenaError("give the runs to rank (RUN_DIR...) or GEditBench v2 match files (--matches)")
        return rank_matches(options, ui)
    if len(options.run_dirs) < 2:
        raise ArenaError("an arena needs at least two runs (players)")

    players, samples, benchmark = load_players(options.run_dirs, options.labels, load_samples=load_samples)
    arena = ArenaDir(options.output).create()
    prior = arena.read_manifest()
    if prior and (prior.get("benchmark") or {}).get("sha256") != benchmark.get("sha256"):
        raise ArenaError(f"{arena.path} is an arena of another benchmark ({(prior.get('benchmark') or {}).get('path')}); "
                         "use another --output")
    suite = suite_of(benchmark.get("format"))
    protocol_name = options.protocol or (prior or {}).get("protocol", {}).get("name")
    if not protocol_name:
        own = suite.default_protocol if suite else ""
        protocol_name = own if own and _is_pairwise(own) else DEFAULT_PROTOCOL
    config = judge_config(players, options, protocol_name)
    protocol = find_pairwise_protocol(config, protocol_name, options.dimensions)
    if prior and (prior.get("protocol") or {}).get("name") not in (None, protocol_name):
        raise ArenaError(f"{arena.path} was judged with protocol {prior['protocol']['name']!r}; "
                         f"use another --output for {protocol_name!r}")
    all_questions = [q.name for q in protocol.questions]
    questions = [q for q in all_questions if not options.dimensions or q in options.dimensions]
    orders = options.orders or protocol.pairwise["orders"]
    fit = ArenaConfig(**{**options.fit.__dict__, "dimensions": tuple(all_questions)})

    manifest = dict(prior or {})
    manifest.update({
        "editfleet_arena": 1, "created": (prior or {}).get("created") or mf.now(), "updated": mf.now(),
        "command": mf.command_line(), "benchmark": benchmark,
        "players": {p.name: p.describe() for p in players} | {
            n: d for n, d in ((prior or {}).get("players") or {}).items() if n not in {p.name for p in players}},
        "protocol": {"name": protocol.name, "sha256": protocol.sha256, "questions": all_questions,
                     "pairwise": protocol.pairwise},
        "git": mf.git_state(), "host": mf.host(),
    })
    session = {"started": mf.now(), "status": "running", "players": [p.name for p in players],
               "pairs": options.pairs, "budget": options.budget, "orders": orders, "questions": questions}
    manifest.setdefault("sessions", []).append(session)
    arena.write_manifest(manifest)
    ui.print(f"Arena {arena.path}: {len(players)} players ({', '.join(p.name for p in players)}), "
             f"{len(samples)} samples of {benchmark.get('format')}, protocol {protocol.name} "
             f"({', '.join(questions)}; {'both orders' if orders == 'both' else 'one order'})")
    for p in players:
        missing = len(samples) - len(p.edits)
        if missing:
            ui.print(f"  {p.name}: {missing} sample(s) without a finished edit (left out of its pairs)")
    if options.matches:
        import_matches(arena, options.matches, players, samples, ui)

    pairs = candidate_pairs(players, samples)
    by_pair = {pair_id(s.id, a.name, b.name): (s, a, b) for s, a, b in pairs}
    judging = _Judging(config, arena, protocol, ui)
    status, stop_reason, unjudged = "failed", "", 0
    try:
        if options.pairs == "all":
            stop_reason, unjudged = _judge_all(arena, judging, players, questions, orders, by_pair, ui)
        else:
            stop_reason, unjudged = _judge_adaptive(arena, judging, players, samples, questions, orders, by_pair,
                                                    options, fit, ui)
        if judging.info:
            manifest["judge"] = {"model": judging.info["model"], "protocol_sha256": judging.protocol_hash,
                                 "replicas": {e.name: e.address for e in judging.scorers},
                                 "backend": judging.info["model"]["runtime"].get("backend", "transformers")}
        status = "complete" if not unjudged else "incomplete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        try:
            judging.close()
        finally:
            session.update(finished=mf.now(), status=status, stopped=stop_reason)
            arena.write_manifest(manifest)

    data = finish(arena, manifest, players, samples, questions, fit, options, by_pair, stop_reason, ui)
    if unjudged:
        raise ArenaError(f"the judge kept failing: {unjudged} pair(s) not judged (see {arena.logs}/); "
                         "rerun the same command to finish")
    return data


def _is_pairwise(name: str) -> bool:
    from suites.protocols import load_protocols

    try:
        return bool(load_protocols().get(name).pairwise)
    except Exception:  # noqa: BLE001 - a protocol the catalog cannot read is not this arena's
        return False


def _todo(arena, players, questions, pids) -> dict[tuple, list[str]]:
    done = settled(arena, players, questions)
    todo: dict[tuple, list[str]] = {}
    for pid in pids:
        missing = [q for q in questions if (*pid, q) not in done]
        if missing:
            todo[pid] = missing
    return todo


def _rejudge(arena, players, questions, pids, judging, todo) -> int:
    """Lines by another judge build or protocol text: their questions are judged again."""
    done = settled(arena, players, questions)
    n = 0
    for pid in pids:
        for q in questions:
            record = done.get((*pid, q))
            if record is None or record.get("source") != "judge":
                continue
            if (record.get("judge_hash"), record.get("protocol_hash")) != (judging.judge_hash, judging.protocol_hash):
                todo.setdefault(pid, [])
                if q not in todo[pid]:
                    todo[pid].append(q)
                    n += 1
    return n


def _judge_all(arena, judging, players, questions, orders, by_pair, ui) -> tuple[str, int]:
    todo = _todo(arena, players, questions, by_pair)
    if not todo:
        ui.print(f"Judging: nothing to do ({len(by_pair)} pair(s) of edits, every question judged)")
        return "all pairs judged", 0
    judging.start()
    again = _rejudge(arena, players, questions, by_pair, judging, todo)
    if again:
        ui.print(f"Judging again {again} question(s) of pairs judged by another judge build or protocol text")
    tasks = _tasks(todo, by_pair, questions)
    ui.print(f"Judging {len(tasks)} pair(s) of {len(by_pair)} ({len(by_pair) - len(tasks)} already judged)")
    outcome = judging.judge(tasks, orders, total=len(by_pair), done_before=len(by_pair) - len(tasks))
    return "all pairs judged", len(outcome.unjudged)


def _judged_pairs(arena, players, questions) -> set:
    return {(prompt, pair) for prompt, pair, _ in settled(arena, players, questions)}


def _judge_adaptive(arena, judging, players, samples, questions, orders, by_pair, options, fit, ui) -> tuple[str, int]:
    """Rounds of pairing.next_pairs over the samples every player has an edit of, until the budget
    of judged pairs or until the deciding neighbours' intervals separate."""
    names = sorted(p.name for p in players)
    prompts = [s.id for s in samples if all(s.id in p.edits for p in players)]
    round_size = options.round_size
    rng = np.random.default_rng(fit.seed if fit.seed is not None else 0)
    unjudged = 0
    while True:
        judged = _judged_pairs(arena, players, questions)
        if len(judged) >= options.budget:
            return f"budget of {options.budget} pair(s) reached", unjudged
        judgments, _ = fitted_judgments(arena, players, questions, samples)
        if judgments and _separated(judgments, names, fit, options.top_k):
            return "the deciding neighbours' intervals separate", unjudged
        if round_size is None:
            judging.start()
            round_size = max(8, judging.config.judge.max_batch * max(1, len(judging.scorers)))
        n = min(round_size, options.budget - len(judged))
        candidates = next_pairs(judgments, names, prompts, n, fit, options.top_k, rng)
        todo = {}
        for c in candidates:
            pid = pair_id(c.prompt, c.model_a, c.model_b)
            if pid in by_pair and pid not in judged:
                todo[pid] = list(questions)
        # a pair judged in part (some questions, a kill mid-way) is finished first
        for pid, qs in _todo(arena, players, questions, [p for p in by_pair if p in judged]).items():
            todo.setdefault(pid, qs)
        if not todo:
            return "no pair left to judge", unjudged
        judging.start()
        tasks = _tasks(todo, by_pair, questions)
        ui.print(f"Adaptive round: {len(tasks)} pair(s) ({len(judged)} judged of a budget of {options.budget})")
        outcome = judging.judge(tasks, orders, total=options.budget, done_before=len(judged))
        unjudged = len(outcome.unjudged)
        if unjudged:
            return "the judge kept failing", unjudged


def _separated(judgments, names, fit: ArenaConfig, top_k) -> bool:
    from .pairing import count_outcomes, counts_from_matrices

    index = {m: i for i, m in enumerate(names)}
    k = len(names)
    wins = {d: np.zeros((k, k)) for d in fit.dimensions}
    ties = {d: np.zeros((k, k)) for d in fit.dimensions}
    for j in judgments:
        a, b = index[j.model_a], index[j.model_b]
        count_outcomes(wins, ties, a, b, j.outcomes)
    stats = [counts_from_matrices(wins[d], ties[d]) for d in fit.dimensions]
    if all(s.total == 0 for s in stats):
        return False
    theta, _, _, cov = fit_point(stats, k, fit)
    return separated(theta, cov, top_k)


# -- results ----------------------------------------------------------------------------------------
def finish(arena, manifest, players, samples, questions, fit, options, by_pair, stop_reason, ui) -> dict:
    from .outputs import arena_data, console_table, write_outputs

    judgments, lines = fitted_judgments(arena, players, questions, samples)
    ratings = fit_ratings(judgments, fit) if judgments else None
    data = arena_data(manifest=manifest, players=players, samples=samples, questions=questions, fit=fit,
                      options=options, possible_pairs=len(by_pair), lines=lines, all_lines=arena.judgments.read(),
                      ratings=ratings, stop_reason=stop_reason)
    write_outputs(arena.path, data, lines, ratings, players=players, samples=samples, examples=options.examples)
    ui.print(console_table(data))
    ui.print(f"Arena: {arena.path / 'arena.html'} (and arena.json, leaderboard.csv, judgments.parquet)")
    return data


def rank_matches(options: ArenaOptions, ui) -> dict:
    """GEditBench v2 match files ranked directly: no runs, no judge."""
    from .outputs import arena_data, console_table, write_outputs

    judgments, read = read_matches(options.matches)
    if not judgments:
        raise ArenaError("the match files hold no judgment")
    dims = tuple(d for d in fit_dimensions(read) if d)
    fit = ArenaConfig(**{**options.fit.__dict__, "dimensions": dims})
    ratings = fit_ratings(judgments, fit)
    out = Path(options.output)
    out.mkdir(parents=True, exist_ok=True)
    lines = [{"key": match_files.make_key(j.prompt, j.model_a, j.model_b), "prompt": j.prompt, "category": j.category,
              "model_a": j.model_a, "model_b": j.model_b, "questions": list(j.outcomes),
              "fitted_questions": list(j.outcomes), "verdicts": dict(j.outcomes),
              "status": "OK" if any(v is not None for v in j.outcomes.values()) else "PARSE_FAILED",
              "error": "", "pairwise": [], "raw_responses": [], "source": "matches"} for j in judgments]
    manifest = {"matches": read, "created": mf.now(), "command": mf.command_line()}
    data = arena_data(manifest=manifest, players=[], samples=[], questions=list(dims), fit=fit, options=options,
                      possible_pairs=None, lines=lines, all_lines=lines, ratings=ratings, stop_reason="match files")
    write_outputs(out, data, lines, ratings, players=[], samples=[], examples=0)
    ui.print(console_table(data))
    ui.print(f"Arena: {out / 'arena.html'} (and arena.json, leaderboard.csv, judgments.parquet)")
    return data


def fit_dimensions(read: list[dict]) -> list[str]:
    """The dimensions read, in GEditBench v2's order (VC, VQ, IF: scripts/elo.sh's), others after."""
    present = list(dict.fromkeys(d["dimension"] for d in read))
    from .ratings import DIMENSIONS

    return [d for d in DIMENSIONS if d in present] + [d for d in present if d not in DIMENSIONS]


__all__ = ["ArenaError", "ArenaOptions", "run_arena", "rank_matches"]


def _arena_flags():
    from editfleet_common import settings

    from ..setting_flags import JUDGE_MAX_NEW_TOKENS, SCORE_FLAGS, SettingFlag

    return (*SCORE_FLAGS, JUDGE_MAX_NEW_TOKENS,
            SettingFlag("judge", settings.MAX_CONCURRENCY, "--judge-max-concurrency",
                        "openai judge: requests in flight at once."))


ARENA_FLAGS = _arena_flags()
