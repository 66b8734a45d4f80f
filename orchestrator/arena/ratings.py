"""Arena ratings: GEditBench v2's joint Davidson–Bradley–Terry fit, reproduced (issue 30).

Pure and transport-free: judgments in, ratings out. numpy only (no scipy in the orchestrator's
environment): the fit is a projected Newton method on the convex regularised likelihood, where the
reference (GEditBench v2's ``src/common_utils/elo_score.py`` at ZhangqiJiang07/GEditBench_v2
82bc00ed59963b597dea0b9162bdd9e38fc8fbe6, blob 949724e2) calls scipy's L-BFGS-B. Both minimise the
same strictly convex function; this one converges to its minimum to ~1e-12 where L-BFGS-B stops at
its default tolerances (pgtol 1e-5), so the two agree to the reference's own optimiser error
(measured in tests/orchestrator/test_arena_ratings.py).

The model, as the reference defines it
--------------------------------------
One ability ``theta_m`` per model, shared by all dimensions (instruction following IF, visual
consistency VC, visual quality VQ), and one tie propensity ``nu_d`` per dimension (Davidson)::

    P(A wins)  = exp(theta_a) / Z
    P(B wins)  = exp(theta_b) / Z
    P(tie)     = 2 nu_d exp((theta_a + theta_b) / 2) / Z,   Z the sum of the three numerators

Minimised: ``0.5 * alpha * sum(theta**2) - sum_d w_d * loglik_d(theta, nu_d)`` over the
abilities with the *last model in name order pinned at 0*: the penalty is on that
parametrisation, so the fit shrinks every model toward the name-last model, not toward the mean,
and the name-last model is itself unpenalised. A quirk of the reference, kept by default because it
moves the numbers: renaming a model can reorder the board (a checked case: a beats b 4-0, b beats c
2-0, alpha 1 gives c 941 above b 938, c being name-last; renamed so that the winner sorts last, the
order follows the results). ``ArenaConfig(shrink_toward="mean")`` is the plain ridge instead.
``log nu_d`` is boxed to [-12, 8] (a dimension without ties sits at the lower bound). The
abilities are then centred (mean 0) and put on the Elo scale ``1000 + theta * 400 / ln 10``.
The players are every model named in a judgment (self-pairs and excluded models aside), with or
without a verdict: a model seen only in "Failed" lines is on the board, rated by the prior alone.

Dimension weights ("balanced"): ``w_d = mean(n_d' over dimensions with matches) / n_d``, n_d the
dimension's number of verdicts (0 where it has none), so each dimension weighs the same in total;
"by_matches": every ``w_d = 1``.

Intervals: a bootstrap over prompt clusters. Each dimension's verdicts are grouped by prompt (the
key's part before ``_pair_``), clusters in order of first appearance in that dimension; each round
draws, for each dimension in turn, ``rng.integers(0, C_d, size=C_d)`` from one
``np.random.default_rng(seed)`` (a dimension without verdicts draws nothing), so a prompt is
resampled independently in each dimension. The weights are recomputed on the resample and the model
refitted; the interval is ``np.percentile`` 2.5 and 97.5 (linear) of each model's centred ability.
Where the reference's L-BFGS-B reports failure it skips that round (or, on the main fit, raises);
this fit does not fail, so on such data the two would differ by the skipped rounds (none in the
tests' fixtures with the shipped optimiser).

What is ours, not the reference's: the per-category leaderboards (the same fit on the category's
verdicts alone, with its own bootstrap from the same seed), the win-rate matrix, and the counts
behind each figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

#: GEditBench v2's dimensions, in the order its ``scripts/elo.sh`` passes the result files
#: (VC, VQ, IF): the order the bootstrap draws in, so it matters for reproducing its intervals.
DIMENSIONS: tuple[str, ...] = ("VC", "VQ", "IF")
OUTCOMES = ("A", "B", "tie")
ELO_BASE = 1000.0
ELO_SCALE = 400.0 / math.log(10.0)
TIE_LOG_NU_BOUNDS = (-12.0, 8.0)
WEIGHTINGS = ("balanced", "by_matches")
SHRINK_TOWARD = ("last", "mean")


@dataclass(frozen=True)
class Judgment:
    """One pair of edits of one prompt, judged on one or more dimensions.

    ``outcomes`` maps a dimension to "A", "B" or "tie"; ``None`` records that the pair was asked
    but gave no verdict (a refusal, an unreadable reply, GEditBench v2's "Failed"): it counts
    nothing, but its two models are still players of the arena, as in the reference.
    """

    prompt: str
    model_a: str
    model_b: str
    outcomes: Mapping[str, Optional[str]]
    category: Optional[str] = None

    def __post_init__(self):
        for dim, outcome in self.outcomes.items():
            if outcome is not None and outcome not in OUTCOMES:
                raise ValueError(f"{self.prompt}: outcome {outcome!r} for {dim} is not one of {OUTCOMES} or None")


@dataclass(frozen=True)
class ArenaConfig:
    """The fit's settings. The defaults are GEditBench v2's (README step 3 and scripts/elo.sh:
    ``--alpha 1 --dimension-weighting balanced --seed 42``; the README asks for 1000 bootstrap
    rounds, elo.sh defaults to 100)."""

    alpha: float = 1.0
    weighting: str = "balanced"
    dimensions: tuple[str, ...] = DIMENSIONS
    bootstrap: int = 1000
    seed: Optional[int] = 42
    percentiles: tuple[float, float] = (2.5, 97.5)
    tie_log_nu_bounds: tuple[float, float] = TIE_LOG_NU_BOUNDS
    exclude: tuple[str, ...] = ()
    #: "last": the reference's penalty, on the abilities with the name-last model pinned at 0, so
    #: every model is shrunk toward that one and renaming a model can reorder the board (see the
    #: module docstring); "mean": a plain ridge on every ability, toward the mean, name-free.
    shrink_toward: str = "last"

    def __post_init__(self):
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting {self.weighting!r}: one of {WEIGHTINGS}")
        if self.alpha < 0:
            raise ValueError("alpha must be >= 0")
        if self.shrink_toward not in SHRINK_TOWARD:
            raise ValueError(f"shrink_toward {self.shrink_toward!r}: one of {SHRINK_TOWARD}")
        if len(set(self.dimensions)) != len(self.dimensions):
            raise ValueError(f"dimensions repeat: {self.dimensions}")


# --------------------------------------------------------------------------------------------
# Sufficient statistics
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PairCounts:
    """Verdict counts of one dimension on ordered pairs (a, b): a won, b won, tied."""

    a: np.ndarray
    b: np.ndarray
    wins_a: np.ndarray
    wins_b: np.ndarray
    ties: np.ndarray

    @property
    def total(self) -> int:
        return int(round(float(self.wins_a.sum() + self.wins_b.sum() + self.ties.sum())))

    @staticmethod
    def empty() -> "PairCounts":
        i, f = np.empty(0, dtype=np.intp), np.empty(0)
        return PairCounts(i, i, f, f, f)


@dataclass(frozen=True)
class _Dimension:
    """One dimension's verdicts, by prompt cluster: row r is ordered pair pairs[r] in cluster
    cluster[r] with counts[r] = (wins_a, wins_b, ties)."""

    name: str
    n_clusters: int
    cluster: np.ndarray
    pair: np.ndarray
    counts: np.ndarray
    pairs: np.ndarray  # (P, 2) ordered model index pairs
    observed: np.ndarray  # model indices with a verdict in this dimension

    def aggregate(self, multiplicity: Optional[np.ndarray] = None) -> PairCounts:
        if self.n_clusters == 0 or len(self.pair) == 0:
            return PairCounts.empty()
        w = None if multiplicity is None else multiplicity[self.cluster]
        cols = []
        for k in range(3):
            weights = self.counts[:, k] if w is None else self.counts[:, k] * w
            cols.append(np.bincount(self.pair, weights=weights, minlength=len(self.pairs)))
        keep = (cols[0] + cols[1] + cols[2]) > 0
        return PairCounts(self.pairs[keep, 0], self.pairs[keep, 1], cols[0][keep], cols[1][keep], cols[2][keep])


def _build_dimension(name: str, votes: Sequence[tuple[str, int, int, str]]) -> _Dimension:
    """votes: (prompt, index a, index b, outcome) in the order given."""
    cluster_ids: dict[str, int] = {}
    pair_ids: dict[tuple[int, int], int] = {}
    rows: dict[tuple[int, int], list[float]] = {}
    observed: set[int] = set()
    for prompt, a, b, outcome in votes:
        c = cluster_ids.setdefault(prompt, len(cluster_ids))
        p = pair_ids.setdefault((a, b), len(pair_ids))
        row = rows.setdefault((c, p), [0.0, 0.0, 0.0])
        row[OUTCOMES.index(outcome)] += 1.0
        observed.update((a, b))
    keys = list(rows)
    return _Dimension(
        name=name,
        n_clusters=len(cluster_ids),
        cluster=np.asarray([k[0] for k in keys], dtype=np.intp),
        pair=np.asarray([k[1] for k in keys], dtype=np.intp),
        counts=np.asarray([rows[k] for k in keys], dtype=float).reshape(-1, 3),
        pairs=np.asarray(list(pair_ids), dtype=np.intp).reshape(-1, 2),
        observed=np.asarray(sorted(observed), dtype=np.intp),
    )


def dimension_weights(totals: Sequence[int], weighting: str = "balanced") -> np.ndarray:
    """GEditBench v2's dimension weights from each dimension's number of verdicts."""
    totals = np.asarray(totals, dtype=float)
    if weighting == "by_matches":
        return np.ones(len(totals))
    if weighting != "balanced":
        raise ValueError(f"weighting {weighting!r}: one of {WEIGHTINGS}")
    positive = totals[totals > 0]
    weights = np.zeros(len(totals))
    if len(positive):
        weights[totals > 0] = float(np.mean(positive)) / totals[totals > 0]
    return weights


# --------------------------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------------------------

_J = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 1.0]])  # d(logits)/d(theta_a, theta_b, log nu)
_LOG2 = math.log(2.0)


def _objective(x: np.ndarray, stats: Sequence[PairCounts], weights: np.ndarray, k: int, alpha: float,
               derivatives: bool = True, pinned: bool = True):
    """The objective at x = (theta_0..theta_{k-2}, log nu_0..log nu_{D-1}), theta_{k-1} pinned at
    0 (the reference's), or x = (theta_0..theta_{k-1}, log nu...) when not `pinned`; with its
    gradient and Hessian in x when `derivatives`."""
    d_count = len(stats)
    n_theta = k - 1 if pinned else k
    theta = np.append(x[:n_theta], 0.0) if pinned else x[:k]
    log_nu = x[n_theta:]
    f = 0.5 * alpha * float(theta @ theta)
    if derivatives:
        g = np.zeros(k + d_count)
        g[:k] = alpha * theta
        h = np.zeros((k + d_count, k + d_count))
        h[np.arange(k), np.arange(k)] = alpha
    for d, (w, s) in enumerate(zip(weights, stats)):
        if w == 0.0 or len(s.a) == 0:
            continue
        ta, tb = theta[s.a], theta[s.b]
        logits = np.column_stack([ta, tb, log_nu[d] + 0.5 * (ta + tb) + _LOG2])
        top = logits.max(axis=1, keepdims=True)
        e = np.exp(logits - top)
        z = e.sum(axis=1, keepdims=True)
        log_z = (top + np.log(z))[:, 0]
        c = np.column_stack([s.wins_a, s.wins_b, s.ties])
        n = c.sum(axis=1)
        f += w * float(np.sum(n * log_z - (c * logits).sum(axis=1)))
        if not derivatives:
            continue
        p = e / z
        r = w * (n[:, None] * p - c)  # gradient in the three logits
        idx = np.column_stack([s.a, s.b, np.full(len(s.a), k + d)])
        np.add.at(g, idx, r @ _J)
        hl = (w * n)[:, None, None] * (np.einsum("ri,ij->rij", p, np.eye(3)) - p[:, :, None] * p[:, None, :])
        hp = np.einsum("ia,rij,jb->rab", _J, hl, _J)
        np.add.at(h, (idx[:, :, None], idx[:, None, :]), hp)
    if not derivatives:
        return f
    if not pinned:
        return f, g, h
    keep = np.r_[0: k - 1, k: k + d_count]
    return f, g[keep], h[np.ix_(keep, keep)]


def fit_davidson(stats: Sequence[PairCounts], n_models: int, alpha: float = 1.0,
                 weights: Optional[Sequence[float]] = None,
                 tie_log_nu_bounds: tuple[float, float] = TIE_LOG_NU_BOUNDS,
                 initial_theta: Optional[np.ndarray] = None,
                 initial_log_nu: Optional[np.ndarray] = None,
                 shrink_toward: str = "last",
                 tol: float = 1e-11, max_iter: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Minimise the reference's joint objective; returns (centred theta, log nu per dimension).

    ``shrink_toward="last"`` is the reference's penalty (the name-last model pinned at 0);
    ``"mean"`` penalises every ability (a plain ridge: shrinks toward the mean and does not depend
    on the models' names). They coincide at alpha 0.

    Projected Newton (Bertsekas): the log-nu coordinates at a bound whose gradient points out are
    held there, a Newton step is taken in the others, projected back into the box, with Armijo
    backtracking. The objective is strictly convex in theta for alpha > 0 and in each log nu with
    verdicts, so the minimum is unique and the start only changes the number of steps.
    """
    d_count = len(stats)
    if n_models == 0:
        return np.empty(0), np.empty(d_count)
    if n_models == 1:
        return np.zeros(1), np.zeros(d_count)
    weights = np.ones(d_count) if weights is None else np.asarray(weights, dtype=float)
    lo, hi = tie_log_nu_bounds
    if initial_log_nu is None:
        rates = [0.0 if s.total == 0 else float(s.ties.sum()) / s.total for s in stats]
        rates = np.clip(np.asarray(rates, dtype=float), 1e-6, 1.0 - 1e-6)
        initial_log_nu = np.log(rates / (1.0 - rates))
    log_nu0 = np.clip(np.asarray(initial_log_nu, dtype=float), lo, hi)
    if shrink_toward not in SHRINK_TOWARD:
        raise ValueError(f"shrink_toward {shrink_toward!r}: one of {SHRINK_TOWARD}")
    pinned = shrink_toward == "last" or alpha == 0
    k1 = n_models - 1 if pinned else n_models
    if initial_theta is None:
        theta0 = np.zeros(k1)
    else:
        t = np.asarray(initial_theta, dtype=float)
        theta0 = (t - t[-1])[:-1] if pinned else t - t.mean()  # the same abilities, last one at 0
    x = np.concatenate([theta0, log_nu0])
    lower = np.r_[np.full(k1, -np.inf), np.full(d_count, lo)]
    upper = np.r_[np.full(k1, np.inf), np.full(d_count, hi)]

    def project(v):
        return np.clip(v, lower, upper)

    for _ in range(max_iter):
        f, g, h = _objective(x, stats, weights, n_models, alpha, pinned=pinned)
        at_lower = (x <= lower) & (g > 0)
        at_upper = (x >= upper) & (g < 0)
        idle = (np.diag(h) == 0) & (g == 0)  # a dimension without verdicts (or, at alpha 0, an unseen model)
        free = ~(at_lower | at_upper | idle)
        if np.max(np.abs(g[free]), initial=0.0) <= tol * max(1.0, abs(f)):
            break
        step = np.zeros_like(x)
        hf = h[np.ix_(free, free)]
        try:
            step[free] = np.linalg.solve(hf, -g[free])
        except np.linalg.LinAlgError:
            step[free] = np.linalg.lstsq(hf + 1e-12 * np.eye(len(hf)), -g[free], rcond=None)[0]
        if not np.all(np.isfinite(step)) or g @ step >= 0:
            step = np.where(free, -g, 0.0)
        t = 1.0
        while True:
            x_new = project(x + t * step)
            f_new = _objective(x_new, stats, weights, n_models, alpha, derivatives=False, pinned=pinned)
            if f_new <= f + 1e-4 * float(g @ (x_new - x)) or t < 1e-12:
                break
            t *= 0.5
        moved = np.max(np.abs(x_new - x))
        x = x_new
        if moved < 1e-14:
            break
    theta = np.append(x[:k1], 0.0) if pinned else x[:k1].copy()
    return theta - theta.mean(), x[k1:].copy()


def theta_covariance(stats: Sequence[PairCounts], theta: np.ndarray, log_nu: np.ndarray, alpha: float = 1.0,
                     weights: Optional[Sequence[float]] = None,
                     tie_log_nu_bounds: tuple[float, float] = TIE_LOG_NU_BOUNDS,
                     shrink_toward: str = "last") -> np.ndarray:
    """The Laplace approximation of the centred abilities' covariance at a fit: the inverse
    Hessian of the objective (tie parameters at a bound held fixed, the others integrated out),
    mapped to centred theta. Not the reference's intervals (those are the bootstrap's): a cheap
    estimate for choosing pairs."""
    k = len(theta)
    if k <= 1:
        return np.zeros((k, k))
    weights = np.ones(len(stats)) if weights is None else np.asarray(weights, dtype=float)
    pinned = shrink_toward == "last" or alpha == 0
    t = np.asarray(theta, dtype=float)
    x = np.concatenate([(t - t[-1])[:-1] if pinned else t, np.asarray(log_nu, dtype=float)])
    _, g, h = _objective(x, stats, weights, k, alpha, pinned=pinned)
    n_theta = k - 1 if pinned else k
    lo, hi = tie_log_nu_bounds
    nu = x[n_theta:]
    keep = np.r_[np.ones(n_theta, dtype=bool), (nu > lo) & (nu < hi) & (np.diag(h)[n_theta:] > 0)]
    cov = np.linalg.pinv(h[np.ix_(keep, keep)])[:n_theta, :n_theta]
    if pinned:
        cov = np.pad(cov, ((0, 1), (0, 1)))
    centre = np.eye(k) - 1.0 / k
    return centre @ cov @ centre


def to_elo(theta) -> np.ndarray:
    return ELO_BASE + np.asarray(theta, dtype=float) * ELO_SCALE


def ci_string(elo: float, lower: float, upper: float) -> str:
    """The reference's interval label: offsets from the rounded-off rating, "-12/+15"."""
    lo = int(round(lower - elo))
    up = int(round(upper - elo))
    return f"{lo}/+{up}" if up > 0 else f"{lo}/{up}"


# --------------------------------------------------------------------------------------------
# Leaderboards
# --------------------------------------------------------------------------------------------

@dataclass
class WinMatrix:
    """Head-to-head counts over ordered model indices: wins[i, j] verdicts where i beat j (either
    side of the pair), ties[i, j] == ties[j, i]; pooled over dimensions, and by dimension."""

    models: tuple[str, ...]
    wins: np.ndarray
    ties: np.ndarray
    by_dimension: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def games(self) -> np.ndarray:
        """The number of verdicts behind each win rate."""
        return self.wins + self.wins.T + self.ties

    @property
    def win_rate(self) -> np.ndarray:
        """(wins + ties / 2) / verdicts, NaN where the two never met (and on the diagonal)."""
        games = self.games
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(games > 0, (self.wins + 0.5 * self.ties) / games, np.nan)


@dataclass
class Leaderboard:
    """One scope's fit (all judgments, or one category's). Arrays follow ``models`` (name order)."""

    scope: str
    models: tuple[str, ...]
    theta: np.ndarray
    elo: np.ndarray
    elo_lower: np.ndarray
    elo_upper: np.ndarray
    tie_log_nu: dict[str, float]
    weights: dict[str, float]
    n_judgments: np.ndarray  # per model: the verdicts it took part in, all dimensions (the reference's Match_Count)
    dimensions_covered: np.ndarray  # per model: the dimensions it has a verdict in
    verdicts: dict[str, int]  # per dimension: the verdicts fitted
    prompts: dict[str, int]  # per dimension: the prompt clusters
    bootstrap_theta: np.ndarray  # (rounds, models): each round's centred abilities
    win_matrix: WinMatrix
    alpha: float
    weighting: str
    seed: Optional[int]
    shrink_toward: str = "last"

    @property
    def tie_nu(self) -> dict[str, float]:
        return {d: math.exp(v) for d, v in self.tie_log_nu.items()}

    @property
    def n_verdicts(self) -> int:
        return sum(self.verdicts.values())

    def rows(self) -> list[dict]:
        """The leaderboard, best first (ties in rating by name): what the reference prints, with
        the unrounded numbers beside."""
        order = sorted(range(len(self.models)), key=lambda i: (-self.elo[i], self.models[i]))
        out = []
        for rank, i in enumerate(order, 1):
            out.append({
                "rank": rank,
                "model": self.models[i],
                "elo": float(self.elo[i]),
                "lower": float(self.elo_lower[i]),
                "upper": float(self.elo_upper[i]),
                "score": int(round(self.elo[i])),
                "ci": ci_string(self.elo[i], self.elo_lower[i], self.elo_upper[i]),
                "judgments": int(self.n_judgments[i]),
                "dimensions_covered": int(self.dimensions_covered[i]),
            })
        return out

    def to_dict(self) -> dict:
        rate = self.win_matrix.win_rate
        return {
            "scope": self.scope,
            "alpha": self.alpha,
            "weighting": self.weighting,
            "seed": self.seed,
            "shrink_toward": self.shrink_toward,
            "bootstrap_rounds": int(len(self.bootstrap_theta)),
            "verdicts": dict(self.verdicts),
            "prompts": dict(self.prompts),
            "dimension_weights": dict(self.weights),
            "tie_nu": self.tie_nu,
            "leaderboard": self.rows(),
            "win_rate": {
                "models": list(self.models),
                "rate": [[None if math.isnan(v) else float(v) for v in row] for row in rate],
                "verdicts": self.win_matrix.games.astype(int).tolist(),
            },
        }


@dataclass
class ArenaRatings:
    overall: Leaderboard
    categories: dict[str, Leaderboard]
    config: ArenaConfig

    def to_dict(self) -> dict:
        return {"overall": self.overall.to_dict(),
                "categories": {c: lb.to_dict() for c, lb in self.categories.items()}}


def _players(judgments: Iterable[Judgment], exclude: set[str]) -> list[str]:
    """Every model of a judgment other than a self-pair or an excluded model, with or without a
    verdict (the reference's extract_models reads only the key), in name order."""
    found = set()
    for j in judgments:
        if j.model_a == j.model_b or j.model_a in exclude or j.model_b in exclude:
            continue
        found.update((j.model_a, j.model_b))
    return sorted(found)


def fit_leaderboard(judgments: Sequence[Judgment], config: ArenaConfig = ArenaConfig(),
                    scope: str = "overall", players: Optional[Sequence[str]] = None) -> Leaderboard:
    """GEditBench v2's ``calculate_joint_leaderboard`` on these judgments: the joint fit, the
    prompt-cluster bootstrap, and the counts; plus the win-rate matrix."""
    exclude = set(config.exclude)
    judgments = list(judgments)
    models = sorted(players) if players is not None else _players(judgments, exclude)
    index = {m: i for i, m in enumerate(models)}
    k = len(models)
    dims = config.dimensions

    votes: dict[str, list[tuple[str, int, int, str]]] = {d: [] for d in dims}
    wins = np.zeros((k, k))
    ties = np.zeros((k, k))
    by_dim = {d: (np.zeros((k, k)), np.zeros((k, k))) for d in dims}
    for j in judgments:
        if j.model_a == j.model_b or j.model_a in exclude or j.model_b in exclude:
            continue
        if j.model_a not in index or j.model_b not in index:
            continue
        a, b = index[j.model_a], index[j.model_b]
        for d, outcome in j.outcomes.items():
            if outcome is None or d not in votes:
                continue
            votes[d].append((j.prompt, a, b, outcome))
            dw, dt = by_dim[d]
            if outcome == "A":
                wins[a, b] += 1
                dw[a, b] += 1
            elif outcome == "B":
                wins[b, a] += 1
                dw[b, a] += 1
            else:
                for m in (ties, dt):
                    m[a, b] += 1
                    m[b, a] += 1

    dimensions = [_build_dimension(d, votes[d]) for d in dims]
    stats = [dim.aggregate() for dim in dimensions]
    totals = [s.total for s in stats]
    weights = dimension_weights(totals, config.weighting)
    theta, log_nu = fit_davidson(stats, k, config.alpha, weights, config.tie_log_nu_bounds,
                                 shrink_toward=config.shrink_toward)

    rng = np.random.default_rng(config.seed)
    samples = []
    for _ in range(max(config.bootstrap, 0)):
        resampled = []
        for dim in dimensions:
            if dim.n_clusters == 0:
                resampled.append(PairCounts.empty())
                continue
            drawn = rng.integers(0, dim.n_clusters, size=dim.n_clusters)
            resampled.append(dim.aggregate(np.bincount(drawn, minlength=dim.n_clusters).astype(float)))
        w = dimension_weights([s.total for s in resampled], config.weighting)
        t, _ = fit_davidson(resampled, k, config.alpha, w, config.tie_log_nu_bounds,
                            initial_theta=theta, initial_log_nu=log_nu, shrink_toward=config.shrink_toward)
        samples.append(t)
    boot = np.asarray(samples).reshape(-1, k)
    if len(boot):
        lower = np.percentile(boot, config.percentiles[0], axis=0)
        upper = np.percentile(boot, config.percentiles[1], axis=0)
    else:
        lower, upper = theta.copy(), theta.copy()

    n_judgments = np.zeros(k, dtype=int)
    covered = np.zeros(k, dtype=int)
    for dim, s in zip(dimensions, stats):
        covered[dim.observed] += 1
        n = (s.wins_a + s.wins_b + s.ties).astype(int)
        np.add.at(n_judgments, s.a, n)
        np.add.at(n_judgments, s.b, n)

    return Leaderboard(
        scope=scope,
        models=tuple(models),
        theta=theta,
        elo=to_elo(theta),
        elo_lower=to_elo(lower),
        elo_upper=to_elo(upper),
        tie_log_nu={d: float(v) for d, v in zip(dims, log_nu)},
        weights={d: float(v) for d, v in zip(dims, weights)},
        n_judgments=n_judgments,
        dimensions_covered=covered,
        verdicts={d: t for d, t in zip(dims, totals)},
        prompts={dim.name: dim.n_clusters for dim in dimensions},
        bootstrap_theta=boot,
        win_matrix=WinMatrix(tuple(models), wins, ties, by_dim),
        alpha=config.alpha,
        weighting=config.weighting,
        seed=config.seed,
        shrink_toward=config.shrink_toward,
    )


def fit_ratings(judgments: Sequence[Judgment], config: ArenaConfig = ArenaConfig()) -> ArenaRatings:
    """The overall leaderboard and one per category (judgments without a category count only in
    the overall one). Each category is fitted on its own verdicts, its models those of its
    judgments, its bootstrap drawn from a fresh generator with the same seed."""
    judgments = list(judgments)
    overall = fit_leaderboard(judgments, config, scope="overall")
    by_category: dict[str, list[Judgment]] = {}
    for j in judgments:
        if j.category is not None:
            by_category.setdefault(j.category, []).append(j)
    categories = {c: fit_leaderboard(js, config, scope=c) for c, js in sorted(by_category.items())}
    return ArenaRatings(overall, categories, config)
