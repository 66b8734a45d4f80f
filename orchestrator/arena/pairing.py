"""Adaptive pairing (issue 30 item 3): the next pairs to judge are those that most reduce the
uncertainty of the ranking.

After each batch the ratings are refitted (`ratings.fit_davidson`, the suite's model and penalty,
no bootstrap) and their covariance taken from the Laplace approximation
(`ratings.theta_covariance`). The uncertainty of the ranking is the summed probability that a pair
of neighbours in the current order is the wrong way round, ``sum Phi(-|d| / sd)`` over the
neighbours that decide the order asked for (ranks 1..k+1 for the top k, every neighbour without
k). One more judgment of models i and j adds its Fisher information ``I_ij`` (summed over the
dimensions it gives a verdict in, each with its weight) along ``e_i - e_j``, a rank-one update of
the covariance; a batch is chosen greedily, each pick updating the covariance as if judged, so one
batch spreads over the pairs. Each chosen model pair is then given the prompt on which that pair
has not been judged and which has the fewest judgments so far, in a random presentation order.

Stopping: `separated` is true when every deciding neighbour pair's difference exceeds z standard
deviations (z = 1.96); the caller stops there or at its budget. Pure: judgments and state in,
pairs out; bench/arena_pairing.py measures it on a synthetic population.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

from .ratings import (ArenaConfig, Judgment, PairCounts, dimension_weights, fit_davidson,
                      theta_covariance)

_LOG2 = math.log(2.0)


@dataclass(frozen=True)
class Candidate:
    prompt: str
    model_a: str
    model_b: str


def counts_from_matrices(wins: np.ndarray, ties: np.ndarray) -> PairCounts:
    """PairCounts of one dimension from dense counts: wins[i, j] verdicts where i beat j, ties[i, j]
    (i < j read) ties between them."""
    k = len(wins)
    iu, ju = np.triu_indices(k, 1)
    wa, wb, t = wins[iu, ju], wins[ju, iu], ties[iu, ju]
    keep = (wa + wb + t) > 0
    return PairCounts(iu[keep], ju[keep], wa[keep].astype(float), wb[keep].astype(float), t[keep].astype(float))


def fit_point(stats: Sequence[PairCounts], n_models: int, config: ArenaConfig = ArenaConfig()):
    """(centred theta, log nu, weights, covariance of theta): the suite's fit without bootstrap."""
    weights = dimension_weights([s.total for s in stats], config.weighting)
    theta, log_nu = fit_davidson(stats, n_models, config.alpha, weights, config.tie_log_nu_bounds,
                                 shrink_toward=config.shrink_toward)
    cov = theta_covariance(stats, theta, log_nu, config.alpha, weights, config.tie_log_nu_bounds,
                           config.shrink_toward)
    return theta, log_nu, weights, cov


def pair_information(theta: np.ndarray, log_nu: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """I[i, j]: one judgment of the pair adds I[i, j] (e_i - e_j)(e_i - e_j)^T to the precision of
    theta, summed over the dimensions with a weight, each times its weight. For a verdict with
    probabilities (pA, pB, ptie) that is (pA + pB - (pA - pB)**2) / 4, the variance of the score
    along (1/2, -1/2, 0) in the three logits (moving theta_i by t is, up to a shift the likelihood
    ignores, moving the logits by (t/2, -t/2, 0)); without ties, p(1 - p) as in Bradley-Terry."""
    ta, tb = theta[:, None], theta[None, :]
    info = np.zeros((len(theta), len(theta)))
    for w, ln in zip(weights, log_nu):
        if w <= 0:
            continue
        logits = np.stack([np.broadcast_to(ta, info.shape), np.broadcast_to(tb, info.shape),
                           ln + 0.5 * (ta + tb) + _LOG2])
        p = np.exp(logits - logits.max(axis=0))
        p /= p.sum(axis=0)
        info += w * 0.25 * (p[0] + p[1] - (p[0] - p[1]) ** 2)
    np.fill_diagonal(info, 0.0)
    return info


def neighbour_pairs(theta: np.ndarray, top_k: Optional[int] = None) -> list[tuple[int, int]]:
    """The neighbours in the current order whose order decides the ranking asked for: the first
    min(top_k, K-1) neighbour pairs (the top k's order and the boundary with rank k+1)."""
    order = np.argsort(-np.asarray(theta), kind="stable")
    m = len(order) - 1 if top_k is None else min(top_k, len(order) - 1)
    return [(int(order[r]), int(order[r + 1])) for r in range(m)]


def _phi_tail(x: np.ndarray) -> np.ndarray:
    """P(N(0,1) > x)."""
    return 0.5 * np.vectorize(math.erfc)(np.asarray(x, dtype=float) / math.sqrt(2.0))


def ranking_risk(theta: np.ndarray, cov: np.ndarray, targets: Sequence[tuple[int, int]]) -> float:
    """The summed probability that a target neighbour pair is misordered (normal approximation)."""
    if not targets:
        return 0.0
    a = np.array([t[0] for t in targets])
    b = np.array([t[1] for t in targets])
    var = cov[a, a] + cov[b, b] - 2 * cov[a, b]
    return float(np.sum(_phi_tail(np.abs(theta[a] - theta[b]) / np.sqrt(np.maximum(var, 1e-300)))))


def separated(theta: np.ndarray, cov: np.ndarray, top_k: Optional[int] = None, z: float = 1.96) -> bool:
    """Every deciding neighbour pair's difference exceeds z of its standard deviations."""
    for a, b in neighbour_pairs(theta, top_k):
        sd = math.sqrt(max(cov[a, a] + cov[b, b] - 2 * cov[a, b], 0.0))
        if abs(theta[a] - theta[b]) <= z * sd:
            return False
    return True


def choose_model_pairs(theta: np.ndarray, cov: np.ndarray, info: np.ndarray, available: np.ndarray, n: int,
                       top_k: Optional[int] = None) -> list[tuple[int, int]]:
    """Greedily, n model pairs (i < j, a pair may come more than once) each cutting the ranking risk
    most given the ones before it; `available[i, j]` caps how often a pair can be picked (its
    prompts left). Pairs with no information left fall back to the least-judged available pair."""
    k = len(theta)
    targets = neighbour_pairs(theta, top_k)
    iu, ju = np.triu_indices(k, 1)
    left = available[iu, ju].astype(float).copy()
    cov = cov.copy()
    ta = np.array([t[0] for t in targets], dtype=int)
    tb = np.array([t[1] for t in targets], dtype=int)
    gap = np.abs(theta[ta] - theta[tb])
    chosen = []
    for _ in range(n):
        if not np.any(left > 0):
            break
        cv = cov[:, iu] - cov[:, ju]  # (K, C): cov @ (e_i - e_j)
        vv = cv[iu, np.arange(len(iu))] - cv[ju, np.arange(len(iu))]
        inf = info[iu, ju]
        if len(targets):
            ut = cv[ta] - cv[tb]  # (T, C)
            var_t = (cov[ta, ta] + cov[tb, tb] - 2 * cov[ta, tb])[:, None]
            new_var = var_t - inf * ut ** 2 / (1.0 + inf * vv)
            risk = _phi_tail(gap[:, None] / np.sqrt(np.maximum(new_var, 1e-300))).sum(axis=0)
            before = float(_phi_tail(gap / np.sqrt(np.maximum(var_t[:, 0], 1e-300))).sum())
            gain = before - risk
        else:
            gain = np.zeros(len(iu))
        gain = np.where(left > 0, gain, -np.inf)
        c = int(np.argmax(gain))
        if not gain[c] > 1e-15:  # nothing left to gain: the pair with the most prompts left
            c = int(np.argmax(np.where(left > 0, left, -np.inf)))
        i, j = int(iu[c]), int(ju[c])
        u = cv[:, c]
        cov -= info[i, j] * np.outer(u, u) / (1.0 + info[i, j] * vv[c])
        left[c] -= 1
        chosen.append((i, j))
    return chosen


def count_outcomes(wins: dict, ties: dict, a: int, b: int, outcomes: dict) -> None:
    """Add one judgment of model index a against b to the per-dimension win matrices (wins[d][i, j]: i
    beat j) and tie matrices (upper triangle); a dimension not counted or without a verdict is skipped."""
    for d, outcome in outcomes.items():
        if d not in wins or outcome is None:
            continue
        if outcome == "A":
            wins[d][a, b] += 1
        elif outcome == "B":
            wins[d][b, a] += 1
        else:
            ties[d][min(a, b), max(a, b)] += 1


def next_pairs(judgments: Iterable[Judgment], models: Sequence[str], prompts: Sequence[str], n: int,
               config: ArenaConfig = ArenaConfig(), top_k: Optional[int] = None,
               rng: Optional[np.random.Generator] = None) -> list[Candidate]:
    """The next n (prompt, model A, model B) to judge, none judged before (in either order), from
    the judgments so far of `models` on `prompts`."""
    rng = rng or np.random.default_rng(0)
    models = sorted(models)
    index = {m: i for i, m in enumerate(models)}
    k = len(models)
    dims = config.dimensions
    wins = {d: np.zeros((k, k)) for d in dims}
    ties = {d: np.zeros((k, k)) for d in dims}
    judged: set[tuple[str, int, int]] = set()
    per_prompt = {p: 0 for p in prompts}
    for j in judgments:
        if j.model_a not in index or j.model_b not in index or j.model_a == j.model_b:
            continue
        a, b = index[j.model_a], index[j.model_b]
        judged.add((j.prompt, min(a, b), max(a, b)))
        if j.prompt in per_prompt:
            per_prompt[j.prompt] += 1
        count_outcomes(wins, ties, a, b, j.outcomes)
    stats = [counts_from_matrices(wins[d], ties[d]) for d in dims]
    if all(s.total == 0 for s in stats):
        # Nothing judged yet: every pair once, least-used prompts first
        theta, log_nu = np.zeros(k), np.zeros(len(dims))
        weights = np.ones(len(dims))
        cov = np.eye(k) / max(config.alpha, 1e-3)
    else:
        theta, log_nu, weights, cov = fit_point(stats, k, config)
    available = np.zeros((k, k))
    for i in range(k):
        for jj in range(i + 1, k):
            available[i, jj] = sum((p, i, jj) not in judged for p in prompts)
    info = pair_information(theta, log_nu, weights)
    out = []
    for i, jj in choose_model_pairs(theta, cov, info, available, n, top_k):
        free = [p for p in prompts if (p, i, jj) not in judged]
        fewest = min(per_prompt[p] for p in free)
        options = [p for p in free if per_prompt[p] == fewest]
        prompt = options[int(rng.integers(len(options)))]
        judged.add((prompt, i, jj))
        per_prompt[prompt] += 1
        a, b = (i, jj) if rng.random() < 0.5 else (jj, i)
        out.append(Candidate(prompt, models[a], models[b]))
    return out
