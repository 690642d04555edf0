"""Exact permutation distributions of rank statistics, with or without ties.

Given the (mid)ranks of the observed data, the conditional null distribution of the two-sample rank sum
(each choice of ``m`` of the ``N`` pooled scores equally likely) and of the signed-rank statistic (each
absolute score positive or negative with probability 1/2) are counted exactly by dynamic programming over
the doubled scores, which are integers for midranks. Without ties this is the distribution R's
``wilcox.test`` uses below 50 observations per sample; with ties it is the one of
``exactRankTests::wilcox.exact`` (Streitberg & Röhmel 1986), which R's ``wilcox.test`` replaces by a
normal approximation.

References
----------
Streitberg, B. & Röhmel, J. (1986). Exact distributions for permutation and rank tests: an introduction to
some recently published algorithms. Statistical Software Newsletter 12(1), 10–17.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["RankNull", "rank_sum_null", "signed_rank_null"]

_EPS = 1e-9


@dataclass(frozen=True)
class RankNull:
    """A discrete null distribution: ``support`` (ascending statistic values) and their probabilities."""

    support: np.ndarray
    prob: np.ndarray
    #: the statistic's expectation under the null
    mean: float

    def cdf(self, value: float) -> float:
        """P(T <= value)."""
        return float(self.prob[self.support <= value + _EPS].sum())

    def sf(self, value: float) -> float:
        """P(T >= value)."""
        return float(self.prob[self.support >= value - _EPS].sum())

    def quantile(self, p: float) -> float:
        """Smallest support point whose cumulative probability reaches ``p``."""
        cum = np.cumsum(self.prob)
        below = np.flatnonzero(cum < p - 1e-12)
        index = below[-1] + 1 if len(below) else 0
        return float(self.support[min(index, len(self.support) - 1)])

    def two_sided_distance(self, value: float) -> float:
        """P(|T - E T| >= |t - E T|): the two-sided p-value of a two-sample rank test."""
        dist = abs(value - self.mean)
        if dist < _EPS:
            return 1.0
        centred = self.support - self.mean
        return float(min(1.0, self.prob[np.abs(centred) >= dist - _EPS].sum()))

    def two_sided_doubled(self, value: float) -> float:
        """min(1, 2 P(T <= t)) or min(1, 2 P(T >= t)): the two-sided p-value of a signed-rank test."""
        lower = self.cdf(value)
        return float(min(1.0, 2.0 * lower if 2.0 * lower <= 1.0 else 2.0 * self.sf(value)))


def _doubled(scores: np.ndarray) -> tuple[int, ...]:
    doubled = np.rint(2.0 * np.asarray(scores, dtype=float)).astype(np.int64)
    return tuple(sorted(int(v) for v in doubled))


def rank_sum_null(scores: np.ndarray, m: int) -> RankNull:
    """Null distribution of the sum of ``m`` scores drawn without replacement from ``scores`` (midranks)."""
    return _rank_sum_null(_doubled(scores), int(m))


@functools.lru_cache(maxsize=128)
def _rank_sum_null(doubled: tuple[int, ...], m: int) -> RankNull:
    total = sum(doubled)
    # counts[k, s]: number of k-subsets of the scores seen so far whose doubled sum is s
    counts = np.zeros((m + 1, total + 1))
    counts[0, 0] = 1.0
    for v in doubled:
        previous = counts[:-1, : total + 1 - v].copy()
        counts[1:, v:] += previous
    row = counts[m]
    support = np.flatnonzero(row)
    prob = row[support] / row.sum()
    n = len(doubled)
    return RankNull(support / 2.0, prob, mean=m / n * total / 2.0)


def signed_rank_null(scores: np.ndarray) -> RankNull:
    """Null distribution of the sum of the scores whose sign is positive (each sign a fair coin)."""
    return _signed_rank_null(_doubled(scores))


@functools.lru_cache(maxsize=128)
def _signed_rank_null(doubled: tuple[int, ...]) -> RankNull:
    total = sum(doubled)
    counts = np.zeros(total + 1)
    counts[0] = 1.0
    for v in doubled:
        counts[v:] = counts[v:] + counts[: total + 1 - v].copy()
    support = np.flatnonzero(counts)
    prob = counts[support] / counts.sum()
    return RankNull(support / 2.0, prob, mean=total / 4.0)


def mann_whitney_exact(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """U statistic of ``x`` (sum of its midranks minus m(m+1)/2) and its exact two-sided p-value."""
    m = len(x)
    ranks = stats.rankdata(np.concatenate([x, y]))
    rank_sum = float(ranks[:m].sum())
    null = rank_sum_null(ranks, m)
    return rank_sum - m * (m + 1) / 2.0, null.two_sided_distance(rank_sum)


def signed_rank_exact(d: np.ndarray) -> tuple[float, float, int]:
    """T+ of the non-zero differences ``d``, its exact two-sided p-value and the number of zeros dropped."""
    nonzero = d[d != 0]
    ranks = stats.rankdata(np.abs(nonzero))
    t_plus = float(ranks[nonzero > 0].sum())
    return t_plus, signed_rank_null(ranks).two_sided_doubled(t_plus), int(len(d) - len(nonzero))


def shift_interval_exact(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[float, float]:
    """Exact (1 - alpha) interval of the location shift x - y by inverting the exact rank-sum test.

    The rank statistic is evaluated at every pairwise difference (ties between shifted samples get
    midranks) and compared with the quantiles of the conditional null distribution of the observed ranks,
    as ``exactRankTests::wilcox.exact(conf.int = TRUE)`` does.
    """
    m = len(x)
    ranks = stats.rankdata(np.concatenate([x, y]))
    null = rank_sum_null(ranks, m)
    offset = m * (m + 1) / 2.0
    q_low = null.quantile(alpha / 2.0) - offset
    q_high = null.quantile(1.0 - alpha / 2.0) - offset
    diffs = np.sort(np.subtract.outer(x, y).ravel())
    shifted = np.concatenate([x[None, :] - diffs[:, None], np.broadcast_to(y, (len(diffs), len(y)))], axis=1)
    w = stats.rankdata(shifted, axis=1)[:, :m].sum(axis=1) - offset
    return _invert(diffs, w, q_low, q_high)


def pseudo_median_interval_exact(d: np.ndarray, alpha: float) -> tuple[float, float]:
    """Exact (1 - alpha) interval of the pseudo-median of ``d`` by inverting the exact signed-rank test.

    Zero differences are dropped first, for the interval as for the test (Wilcoxon's convention, as R's
    ``wilcox.test`` and ``exactRankTests::wilcox.exact`` do).
    """
    nonzero = d[d != 0]
    if len(nonzero) == 0:
        return 0.0, 0.0
    null = signed_rank_null(stats.rankdata(np.abs(nonzero)))
    q_low = null.quantile(alpha / 2.0)
    q_high = null.quantile(1.0 - alpha / 2.0)
    i, j = np.triu_indices(len(nonzero))
    walsh = np.sort((nonzero[i] + nonzero[j]) / 2.0)
    centred = nonzero[None, :] - walsh[:, None]
    ranks = stats.rankdata(np.abs(centred), axis=1)
    w = np.where(centred > 0, ranks, 0.0).sum(axis=1)
    return _invert(walsh, w, q_low, q_high)


def _invert(points: np.ndarray, w: np.ndarray, q_low: float, q_high: float) -> tuple[float, float]:
    # w decreases as the shift grows: keep the shifts the test at level alpha does not reject
    upper_set = points[w <= q_low + _EPS]
    lower_set = points[w > q_high + _EPS]
    upper = float(upper_set.min()) if len(upper_set) and q_low > w.min() + _EPS else float(points.max())
    lower = float(lower_set.max()) if len(lower_set) and q_high < w.max() - _EPS else float(points.min())
    return lower, upper
