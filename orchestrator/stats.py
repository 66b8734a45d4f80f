"""The statistics of `compare`: bootstrap intervals over samples, paired differences, rank
correlations. numpy only (no scipy in the orchestrator's environment).

Every bootstrap draws from its own generator, seeded from the base seed and a key naming what is
resampled (category and model), so a number does not change when runs are added, removed or
reordered, and the same command gives the same intervals on every machine.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence

import numpy as np

LEVEL = 0.95
RESAMPLES = 2000
SEED = 0


def rng_for(seed: int, key: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{key}".encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _resampled_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The mean of each of `resamples` samples drawn with replacement (chunked: bounded memory)."""
    n = len(values)
    out = np.empty(resamples)
    chunk = max(1, 4_000_000 // max(n, 1))
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out


def bootstrap_mean(groups: dict[str, Sequence[float]], *, macro: bool = False, key: str = "",
                   seed: int = SEED, resamples: int = RESAMPLES, level: float = LEVEL) -> dict:
    """Mean and percentile bootstrap interval over samples.

    groups: category -> values. macro=False pools every value (micro mean; resampled as one group);
    macro=True is the mean of the group means, each group resampled on its own (stratified), empty
    groups left out. Returns {"mean", "lo", "hi", "n"}; lo/hi are None with fewer than 2 values.
    """
    groups = {k: np.asarray(v, dtype=float) for k, v in groups.items() if len(v)}
    n = int(sum(len(v) for v in groups.values()))
    if not groups:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    if macro:
        mean = float(np.mean([v.mean() for v in groups.values()]))
        draws = np.mean([_resampled_means(v, resamples, rng_for(seed, f"{key}/{name}"))
                         for name, v in sorted(groups.items())], axis=0)
    else:
        pooled = np.concatenate([groups[k] for k in groups])
        mean = float(math.fsum(pooled) / len(pooled))
        draws = _resampled_means(pooled, resamples, rng_for(seed, key))
    if n < 2:
        return {"mean": mean, "lo": None, "hi": None, "n": n}
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return {"mean": mean, "lo": float(lo), "hi": float(hi), "n": n}


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks from 1, ties sharing the mean of their ranks (as scipy.stats.rankdata 'average')."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    out = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        out[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else None


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho: the Pearson correlation of the (tie-averaged) ranks. None when either side
    is constant or there are fewer than 2 pairs (undefined, as scipy's nan)."""
    if len(x) != len(y):
        raise ValueError("spearman: x and y differ in length")
    if len(x) < 2:
        return None
    return _pearson(ranks(x), ranks(y))


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b (ties in either variable corrected for, as scipy.stats.kendalltau's default).
    O(n^2) time over pairs, O(n) memory: fine for benchmark sizes (thousands of samples)."""
    if len(x) != len(y):
        raise ValueError("kendall_tau_b: x and y differ in length")
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(a)
    if n < 2:
        return None
    concordant_minus_discordant = 0
    ties_x = ties_y = 0  # pairs tied in x (resp. y), ties in both included
    for i in range(n - 1):
        dx = np.sign(a[i + 1:] - a[i])
        dy = np.sign(b[i + 1:] - b[i])
        concordant_minus_discordant += int((dx * dy).sum())
        ties_x += int((dx == 0).sum())
        ties_y += int((dy == 0).sum())
    pairs = n * (n - 1) // 2
    denom = math.sqrt((pairs - ties_x) * (pairs - ties_y))
    return concordant_minus_discordant / denom if denom > 0 else None


def competition_ranks(values: dict[str, float | None], *, higher_is_better: bool = True) -> dict[str, int | None]:
    """1 for the best; equal values share a rank ("1, 2, 2, 4"); None for a missing value."""
    present = {k: v for k, v in values.items() if v is not None}
    out: dict[str, int | None] = {k: None for k in values}
    for name, value in present.items():
        better = sum(1 for v in present.values() if (v > value if higher_is_better else v < value))
        out[name] = better + 1
    return out
