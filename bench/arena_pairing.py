"""Adaptive pairing against a full round-robin (issue 30 item 3), CPU only, no model: how many of
the round-robin's judge calls `orchestrator.arena.pairing` needs to reach the same top-k order.

    python bench/arena_pairing.py --out $OUT/arena_pairing.json
    python bench/arena_pairing.py --models 6 --prompts 6 --top-k 3 --seeds 2 --batch 4 --out $OUT/a.json  # dry run (orchestrator)

The population (one per seed): K models with known strengths evenly spaced --gap-elo Elo apart
(+ N(0, --jitter x gap)), each dimension (VC, VQ, IF) its own ability (+ N(0, 0.15) logits), each
prompt its own (+ N(0, --prompt-sd) per prompt, model and dimension); both effects centred, so the
known strengths are the mean abilities over the benchmark's prompts and dimensions. The judge: one
call judges a pair on one prompt in the three dimensions, showing the two edits in a random order
(a judge call here is one (prompt, pair); GEditBench v2 asks each dimension separately, three VLM
calls, the same factor for every arm); Davidson ties
(nu 0.3 / 0.1 / 0.25), a position bias (+0.3 logits to the image shown first) and a lapse rate
(5% of verdicts uniformly at random). Every (prompt, pair) is drawn once, so the round-robin and
the adaptive run read the same verdicts: with every call judged they coincide.

Arms (each fitted as the suite fits: `ratings.fit_davidson`, alpha 1, balanced weights):
round-robin (every pair on every prompt; its top-k order is the target); adaptive (every pair
once on a random prompt, then batches of --batch from `pairing.choose_model_pairs`); random (the
same first round, then the remaining calls in random order). Reported per seed: the share of the
round-robin's calls after which each arm's top-k order equals the round-robin's and stays equal up
to --cap (checked after every batch; "> cap" when it does not), and where the adaptive arm's
stopping rule (`pairing.separated`, z 1.96) fires, with whether its order is right there.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np

from orchestrator.arena.pairing import (choose_model_pairs, counts_from_matrices, fit_point, pair_information,
                                        separated)
from orchestrator.arena.ratings import ArenaConfig, ELO_SCALE, dimension_weights, fit_davidson

NU = (0.3, 0.1, 0.25)
DIM_SD = 0.15
POSITION_BIAS = 0.3
LAPSE = 0.05


def population(rng, k: int, prompts: int, gap_elo: float, prompt_sd: float, jitter: float = 0.0):
    """base: the known strengths (evenly spaced, + N(0, jitter * gap)); ability[p, m, d]: model m's
    on prompt p in dimension d, whose mean over the benchmark's prompts and dimensions is base
    (the per-dimension and per-prompt effects are centred), so base is what a round-robin on
    these prompts estimates."""
    gap = gap_elo / ELO_SCALE
    base = (np.arange(k)[::-1] - (k - 1) / 2) * gap + rng.normal(0, jitter * gap, size=k)
    by_dim = rng.normal(0, DIM_SD, size=(1, k, 3))
    by_prompt = rng.normal(0, prompt_sd, size=(prompts, k, 3))
    by_prompt -= by_prompt.mean(axis=0, keepdims=True)
    ability = base[None, :, None] + by_dim - by_dim.mean(axis=2, keepdims=True) + by_prompt
    return base, ability


def judge_all(rng, ability):
    """outcome[p, c, d] for every prompt p and pair c = (i < j): 0 i won, 1 j won, 2 tie."""
    prompts, k, _ = ability.shape
    iu, ju = np.triu_indices(k, 1)
    first_is_i = rng.random((prompts, len(iu))) < 0.5
    out = np.empty((prompts, len(iu), 3), dtype=np.int8)
    for d in range(3):
        ti, tj = ability[:, iu, d], ability[:, ju, d]
        si = ti + np.where(first_is_i, POSITION_BIAS, 0.0)
        sj = tj + np.where(first_is_i, 0.0, POSITION_BIAS)
        logits = np.stack([si, sj, math.log(2 * NU[d]) + 0.5 * (si + sj)])
        p = np.exp(logits - logits.max(axis=0))
        p /= p.sum(axis=0)
        u = rng.random(si.shape)
        verdict = np.where(u < p[0], 0, np.where(u < p[0] + p[1], 1, 2))
        lapse = rng.random(si.shape) < LAPSE
        out[:, :, d] = np.where(lapse, rng.integers(0, 3, size=si.shape), verdict)
    return out


class Tally:
    def __init__(self, k: int):
        self.k = k
        self.iu, self.ju = np.triu_indices(k, 1)
        self.wins = np.zeros((3, k, k))
        self.ties = np.zeros((3, k, k))
        self.calls = 0

    def add(self, outcome_pd: np.ndarray, c: int):
        i, j = self.iu[c], self.ju[c]
        for d in range(3):
            v = outcome_pd[d]
            if v == 0:
                self.wins[d, i, j] += 1
            elif v == 1:
                self.wins[d, j, i] += 1
            else:
                self.ties[d, i, j] += 1
        self.calls += 1

    def stats(self):
        return [counts_from_matrices(self.wins[d], self.ties[d]) for d in range(3)]

    def theta(self, config):
        stats = self.stats()
        w = dimension_weights([s.total for s in stats], config.weighting)
        return fit_davidson(stats, self.k, config.alpha, w, shrink_toward=config.shrink_toward)[0]


def top(theta, k):
    return tuple(int(i) for i in np.argsort(-theta, kind="stable")[:k])


def needed(trace, target, cap_calls):
    """The calls after which the order equals the target at every later checkpoint up to the cap."""
    first = None
    for calls, order in trace:
        if calls > cap_calls:
            break
        if order == target:
            first = calls if first is None else first
        else:
            first = None
    return first


def run_seed(seed: int, args, config: ArenaConfig) -> dict:
    rng = np.random.default_rng([seed, 0])  # the population, the judge and the first round
    k, n_prompts = args.models, args.prompts
    base, ability = population(rng, k, n_prompts, args.gap_elo, args.prompt_sd, args.jitter)
    outcome = judge_all(rng, ability)
    n_pairs = k * (k - 1) // 2
    total = n_prompts * n_pairs
    cap_calls = int(math.ceil(args.cap * total))

    full = Tally(k)
    for p in range(n_prompts):
        for c in range(n_pairs):
            full.add(outcome[p, c], c)
    target = top(full.theta(config), args.top_k)
    truth = top(base, args.top_k)

    # The first round, shared by both arms: every pair once, on prompts spread evenly
    first_round = [(int(p), c) for c, p in enumerate(rng.permutation(np.resize(np.arange(n_prompts), n_pairs)))]

    def start():
        tally = Tally(k)
        judged = np.zeros((n_prompts, n_pairs), dtype=bool)
        for p, c in first_round:
            tally.add(outcome[p, c], c)
            judged[p, c] = True
        return tally, judged

    # Adaptive
    rng = np.random.default_rng([seed, 1])  # its prompt choices
    tally, judged = start()
    per_prompt = judged.sum(axis=1).astype(float)
    trace, stop = [], None
    while True:
        theta, log_nu, weights, cov = fit_point(tally.stats(), k, config)
        trace.append((tally.calls, top(theta, args.top_k)))
        if stop is None and separated(theta, cov, args.top_k, args.z):
            stop = (tally.calls, trace[-1][1] == target)
        if tally.calls >= cap_calls:
            break
        available = np.zeros((k, k))
        available[tally.iu, tally.ju] = n_prompts - judged.sum(axis=0)
        info = pair_information(theta, log_nu, weights)
        batch = min(args.batch, cap_calls - tally.calls)
        for i, j in choose_model_pairs(theta, cov, info, available, batch, args.top_k):
            c = int(np.flatnonzero((tally.iu == i) & (tally.ju == j))[0])
            free = np.flatnonzero(~judged[:, c])
            fewest = free[per_prompt[free] == per_prompt[free].min()]
            p = int(rng.choice(fewest))
            judged[p, c] = True
            per_prompt[p] += 1
            tally.add(outcome[p, c], c)
    adaptive = needed(trace, target, cap_calls)

    # Random
    rng = np.random.default_rng([seed, 2])  # its order
    tally, judged = start()
    rest = np.flatnonzero(~judged.ravel())
    rest = rest[rng.permutation(len(rest))]
    rtrace = [(tally.calls, top(tally.theta(config), args.top_k))]
    for start_at in range(0, len(rest), args.batch):
        if tally.calls >= cap_calls:
            break
        for flat in rest[start_at:start_at + min(args.batch, cap_calls - tally.calls)]:
            p, c = divmod(int(flat), n_pairs)
            tally.add(outcome[p, c], c)
        rtrace.append((tally.calls, top(tally.theta(config), args.top_k)))
    random_needed = needed(rtrace, target, cap_calls)

    share = lambda calls: None if calls is None else calls / total  # noqa: E731
    return {
        "seed": seed,
        "round_robin_calls": total,
        "first_round_calls": n_pairs,
        "round_robin_top_k_is_true_top_k": target == truth,
        "adaptive_share": share(adaptive),
        "random_share": share(random_needed),
        "stop_share": share(stop[0]) if stop else None,
        "stop_order_right": stop[1] if stop else None,
    }


def summary(rows: list[dict], cap: float) -> dict:
    def stat(key):
        vals = [r[key] for r in rows]
        done = [v for v in vals if v is not None]
        return {"median": float(np.median([v if v is not None else np.inf for v in vals])),
                "mean_of_reached": float(np.mean(done)) if done else None,
                "max": max(done) if len(done) == len(vals) else f"> {cap}",
                "reached": f"{len(done)}/{len(vals)}"}
    stops = [r for r in rows if r["stop_share"] is not None]
    return {
        "adaptive": stat("adaptive_share"),
        "random": stat("random_share"),
        "stop_rule": {"fired": f"{len(stops)}/{len(rows)}",
                      "median_share": float(np.median([r["stop_share"] for r in stops])) if stops else None,
                      "order_right": f"{sum(bool(r['stop_order_right']) for r in stops)}/{len(stops)}"},
        "round_robin_equals_truth": f"{sum(r['round_robin_top_k_is_true_top_k'] for r in rows)}/{len(rows)}",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--gap-elo", type=float, default=30.0)
    parser.add_argument("--prompt-sd", type=float, default=0.6)
    parser.add_argument("--jitter", type=float, default=0.0,
                        help="N(0, jitter x gap) added to each strength")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--cap", type=float, default=0.8, help="stop each arm at this share of the round-robin")
    parser.add_argument("--z", type=float, default=1.96)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    config = ArenaConfig(bootstrap=0)

    t0 = time.time()
    rows = []
    for seed in range(args.seeds):
        row = run_seed(seed, args, config)
        rows.append(row)
        fmt = lambda v: "  >cap" if v is None else f"{v:6.1%}"  # noqa: E731
        print(f"seed {seed}: adaptive {fmt(row['adaptive_share'])}  random {fmt(row['random_share'])}  "
              f"stop rule {fmt(row['stop_share'])} (order right: {row['stop_order_right']})  "
              f"RR top-{args.top_k} = true: {row['round_robin_top_k_is_true_top_k']}", flush=True)
    result = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "judge": {"nu": NU, "position_bias": POSITION_BIAS, "lapse": LAPSE, "dimension_sd": DIM_SD},
              "seeds": rows, "summary": summary(rows, args.cap),
              "machine": f"{platform.processor() or platform.machine()}", "seconds": round(time.time() - t0, 1)}
    print(json.dumps(result["summary"], indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
