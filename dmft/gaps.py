"""The gap (stability) distribution y phi(h) over the training set: the width of the decision boundary.

A training sample with gap y phi(h) <= 0 is misclassified; one with gap below the margin
kappa of a hinge loss still pushes the weights. In the over-parametrized regime the
training error vanishes and the lower edge of the gap distribution (its smallest values,
the fraction below the margin) measures how far the solution sits from the samples.

``summarize`` reduces one set of gaps to quantiles, the fractions below 0 and kappa, the
smallest gap and a histogram (written beside the gaps in the HDF5 files); ``summary_of``
and ``groups_of`` do it for the gaps a result kept. This module works on arrays and
imports nothing else of dmft, so the results and the files can use it.
``compare_gaps`` is the two-sample test between the DMFT population and simulations: the
empirical CDFs are evaluated on a grid of gap values, each with a standard error taken
from independent groups (DMFT subpopulations, simulation seeds), and the statistic is
the largest z-score of their difference (a studentised Kolmogorov-Smirnov distance).
Independent groups, not individual samples, carry the errors because the gaps of one
group share that group's weights (simulation) or kernels (DMFT).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

QUANTILE_LEVELS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
HISTOGRAM_BINS = 60
# Gap values at which the CDFs are compared: these quantiles of the pooled samples. The
# tails are left out (too few samples per group for a Gaussian error there).
CDF_LEVELS = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2))


@dataclass(frozen=True)
class GapSummary:
    """One gap distribution at one time."""

    time: float
    count: int
    margin: float
    quantile_levels: np.ndarray
    quantiles: np.ndarray
    fraction_nonpositive: float  # P(gap <= 0): the training error
    fraction_below_margin: float  # P(gap < kappa): samples a hinge loss still pushes
    smallest: float
    histogram_edges: np.ndarray
    histogram_density: np.ndarray

    def attributes(self) -> dict[str, Any]:
        """HDF5 attributes written beside the gaps."""
        return {"time": self.time, "count": self.count, "margin": self.margin,
                "quantile_levels": self.quantile_levels, "quantiles": self.quantiles,
                "fraction_nonpositive": self.fraction_nonpositive, "fraction_below_margin": self.fraction_below_margin,
                "smallest": self.smallest, "histogram_edges": self.histogram_edges,
                "histogram_density": self.histogram_density}

    def line(self) -> str:
        """One line for the command line."""
        median = float(np.interp(0.5, self.quantile_levels, self.quantiles))
        return (f"gaps at t = {self.time:g}: median {median:.4g}, smallest {self.smallest:.4g}, "
                f"P(gap <= 0) = {self.fraction_nonpositive:.4g}, P(gap < {self.margin:g}) = "
                f"{self.fraction_below_margin:.4g} ({self.count} samples)")


def summarize(values: np.ndarray, time: float, margin: float, bins: int = HISTOGRAM_BINS) -> GapSummary:
    """Quantiles, fractions below 0 and ``margin``, smallest value and histogram of ``values``."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("no gaps to summarize")
    density, edges = np.histogram(values, bins=bins, density=True)
    levels = np.asarray(QUANTILE_LEVELS)
    return GapSummary(time=float(time), count=int(values.size), margin=float(margin), quantile_levels=levels,
                      quantiles=np.quantile(values, levels), fraction_nonpositive=float(np.mean(values <= 0.0)),
                      fraction_below_margin=float(np.mean(values < margin)), smallest=float(values.min()),
                      histogram_edges=edges, histogram_density=density)


def summary_of(result: Any, key: float) -> GapSummary:
    """``summarize`` of the gaps a Result (``key``: a step) or SimulationResult (``key``: a time) kept."""
    return summarize(result.gaps[key], result.gap_time(key), result.problem.loss.margin)


def groups_of(result: Any, key: float) -> list[np.ndarray]:
    """The gaps a result kept at ``key``, cut into the independent subpopulations or seeds they came from."""
    return split(result.gaps[key], result.gap_group_sizes())


def split(values: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Cut pooled gaps back into their independent groups (subpopulations or seeds)."""
    values = np.asarray(values)
    if sum(sizes) != values.size:
        raise ValueError(f"{values.size} gaps do not split into groups of sizes summing to {sum(sizes)}")
    return np.split(values, np.cumsum(sizes)[:-1])


def empirical_cdf(groups: Sequence[np.ndarray], points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CDF at ``points``, pooled over groups (weighted by size), and its standard error.

    The error is the spread of the per-group CDFs (ratio estimator over groups), NaN with
    a single group.
    """
    sizes = np.array([len(g) for g in groups], dtype=float)
    counts = np.array([np.searchsorted(np.sort(g), points, side="right") for g in groups], dtype=float)
    cdf = counts.sum(axis=0) / sizes.sum()
    if len(groups) < 2:
        return cdf, np.full_like(cdf, np.nan)
    # Ratio estimator sum(counts)/sum(sizes): residuals counts - cdf * size over groups.
    residuals = counts - cdf[None, :] * sizes[:, None]
    mean_size = sizes.mean()
    variance = residuals.var(axis=0, ddof=1) / (len(groups) * mean_size**2)
    return cdf, np.sqrt(variance)


@dataclass(frozen=True)
class GapComparison:
    """Two-sample comparison of gap distributions at one time."""

    time: float
    points: np.ndarray  # gap values where the CDFs are compared
    cdf_first: np.ndarray
    cdf_second: np.ndarray
    z: np.ndarray
    degrees_of_freedom: int  # of the noisier error estimate: fewest groups - 1

    @property
    def ks_distance(self) -> float:
        """Largest |CDF difference| over the compared points."""
        return float(np.max(np.abs(self.cdf_first - self.cdf_second)))

    @property
    def max_z(self) -> float:
        return float(np.max(self.z))

    @property
    def at(self) -> float:
        """Gap value where z is largest."""
        return float(self.points[int(np.argmax(self.z))])


def compare_gaps(first: Sequence[np.ndarray], second: Sequence[np.ndarray], time: float = math.nan,
                 levels: Sequence[float] = CDF_LEVELS) -> GapComparison:
    """Studentised CDF difference of two gap samples, each given as independent groups.

    z(x) = |F_1(x) - F_2(x)| / sqrt(se_1(x)^2 + se_2(x)^2) at the pooled ``levels``
    quantiles x. Under the null each z is at worst Student-t with ``degrees_of_freedom``;
    a family-wise threshold for the maximum is ``compare.family_threshold(len(levels),
    degrees_of_freedom + 1)``.
    """
    if min(len(first), len(second)) < 2:
        raise ValueError("each sample needs at least two independent groups for an error bar")
    pooled = np.concatenate([np.concatenate(first), np.concatenate(second)])
    points = np.quantile(pooled, levels)
    cdf_first, se_first = empirical_cdf(first, points)
    cdf_second, se_second = empirical_cdf(second, points)
    # Floor: a CDF that is exactly 0 or 1 in every group has no spread (one group's worth of resolution).
    floor = 1.0 / (min(sum(len(g) for g in first), sum(len(g) for g in second)))
    z = np.abs(cdf_first - cdf_second) / np.sqrt(se_first**2 + se_second**2 + floor**2)
    return GapComparison(time=float(time), points=points, cdf_first=cdf_first, cdf_second=cdf_second, z=z,
                         degrees_of_freedom=min(len(first), len(second)) - 1)
