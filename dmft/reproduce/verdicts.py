"""Verdicts from Monte Carlo errors: estimates, statistical tests and how they combine.

Every number a claim measures is an ``Estimate``: a value, its standard error and the
number of independent runs the error comes from (DMFT subpopulations solved on their own,
or simulation seeds). A ``Test`` turns one or two estimates into a verdict:

* ``holds`` when the statistic passes a family-wise threshold,
* ``does not hold`` when the data contradict the claim beyond that threshold,
* ``inconclusive`` when the Monte Carlo error is too large to decide.

Thresholds are two-sided Student-t quantiles with the degrees of freedom of the noisier
error (runs - 1), Bonferroni-corrected over the comparisons a claim makes, so that a
claim's tests raise a false alarm by noise alone with probability at most
``FALSE_ALARM`` (``dmft.compare.family_threshold``, the rule the tests follow). Nothing
here is tuned to a result: the thresholds, the relevance bounds and the number of
bootstrap draws are fixed before a claim runs and written into its claims.json.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from typing import Any

import numpy as np

from ..compare import family_threshold
from ..statistics import mean_and_stderr

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)
# A test either weighs on the paper's claim, or checks the DMFT against the simulation.
ROLE_CLAIM, ROLE_CHECK = "claim", "check"
ROLES = (ROLE_CLAIM, ROLE_CHECK)
# Family-wise false-alarm probability of each claim's set of tests.
FALSE_ALARM = 0.01


@dataclass(frozen=True)
class Estimate:
    """A measured value, its standard error and the independent runs the error comes from."""

    value: float
    stderr: float
    runs: int
    source: str = ""  # "DMFT" or "simulation"

    @classmethod
    def of_runs(cls, values: Sequence[float], source: str = "") -> Estimate:
        """Mean of per-run values and its standard error from their spread."""
        mean, error = mean_and_stderr(np.asarray(values, dtype=float))
        return cls(float(mean), float(error), len(values), source)

    @property
    def dof(self) -> int:
        return max(self.runs - 1, 1)

    def to_dict(self) -> dict[str, Any]:
        return {"value": finite_or_none(self.value), "stderr": finite_or_none(self.stderr), "runs": self.runs,
                "source": self.source}

    def text(self, digits: int = 2) -> str:
        """'0.0123 +- 0.0004'."""
        if not math.isfinite(self.stderr):
            return f"{self.value:.4g}"
        return f"{self.value:.4g} ± {self.stderr:.{digits}g}"


@dataclass(frozen=True)
class Test:
    """One statistical test of a claim: what was measured, the statistic, the verdict and why."""

    quantity: str
    verdict: str
    reason: str
    statistic: float = math.nan
    threshold: float = math.nan
    dmft: Estimate | None = None
    simulation: Estimate | None = None
    details: dict[str, Any] = field(default_factory=dict)
    role: str = ROLE_CLAIM  # evidence for the paper's claim, or a check of the DMFT against the simulation

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")

    def as_check(self) -> Test:
        """The same test, counted as a check of the DMFT against the simulation."""
        return replace(self, role=ROLE_CHECK)

    def to_dict(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "role": self.role, "verdict": self.verdict, "reason": self.reason,
                "statistic": finite_or_none(self.statistic), "threshold": finite_or_none(self.threshold),
                "dmft": None if self.dmft is None else self.dmft.to_dict(),
                "simulation": None if self.simulation is None else self.simulation.to_dict(),
                "details": jsonable(self.details)}


def threshold(comparisons: int, dof: int, false_alarm: float = FALSE_ALARM) -> float:
    """Two-sided Student-t quantile (``dof`` degrees of freedom), Bonferroni over ``comparisons``."""
    return family_threshold(max(comparisons, 1), dof + 1, false_alarm)


def combined(*estimates: Estimate) -> tuple[float, int]:
    """Root-sum-square of the standard errors and the degrees of freedom of the noisiest."""
    errors = [e.stderr for e in estimates]
    return float(math.sqrt(sum(s * s for s in errors))), min(e.dof for e in estimates)


def agreement(quantity: str, dmft: Estimate, simulation: Estimate, comparisons: int, relevance: float,
              details: dict[str, Any] | None = None, typical_error: float | None = None) -> Test:
    """DMFT and simulation estimate the same number.

    ``holds`` when |z| is below the threshold and the test could have seen a difference of
    ``relevance`` (absolute): threshold x error <= relevance, with ``typical_error`` (say,
    the median over a curve) or else the combined error; ``does not hold`` when |z|
    exceeds the threshold; ``inconclusive`` when the errors are too large to see a
    difference of ``relevance``.
    """
    error, dof = combined(dmft, simulation)
    limit = threshold(comparisons, dof)
    # The two sides are named by their sources ("DMFT", "simulation" unless told otherwise).
    first, second = dmft.source or "DMFT", simulation.source or "simulation"
    difference = dmft.value - simulation.value
    z = abs(difference) / error if error > 0 else (0.0 if difference == 0 else math.inf)
    resolution = limit * (error if typical_error is None else typical_error)
    details = {"difference": difference, "relevance": relevance, "resolution": resolution, **(details or {})}
    if z >= limit:
        return Test(quantity, FAILS, f"{first} and {second} differ by {difference:.3g}, {z:.1f} standard errors "
                                     f"(threshold {limit:.1f})", z, limit, dmft, simulation, details)
    if resolution > relevance:
        return Test(quantity, INCONCLUSIVE, f"no significant difference (|z| = {z:.1f}), but the errors could hide "
                                            f"one of {relevance:.2g} (resolution {resolution:.2g})", z, limit, dmft,
                    simulation, details)
    return Test(quantity, HOLDS, f"{first} and {second} agree: |z| = {z:.1f} < {limit:.1f}", z, limit, dmft,
                simulation, details)


def ordering(quantity: str, larger: Estimate, smaller: Estimate, comparisons: int, what: str,
             details: dict[str, Any] | None = None) -> Test:
    """The claim says ``larger`` > ``smaller``: z = (larger - smaller) / error.

    ``holds`` when z exceeds the threshold, ``does not hold`` when -z does (the opposite
    order is significant), ``inconclusive`` otherwise. ``what`` names the comparison.
    """
    error, dof = combined(larger, smaller)
    limit = threshold(comparisons, dof)
    difference = larger.value - smaller.value
    z = difference / error if error > 0 else math.copysign(math.inf, difference) if difference else 0.0
    details = {"difference": difference, "first": larger.to_dict(), "second": smaller.to_dict(), **(details or {})}
    text = f"{what}: difference {difference:.3g} = {z:.1f} standard errors (threshold {limit:.1f})"
    verdict = HOLDS if z > limit else FAILS if z < -limit else INCONCLUSIVE
    return Test(quantity, verdict, text, z, limit, details=details)


def change(quantity: str, first: Estimate, second: Estimate, comparisons: int, relevance: float, what: str,
           details: dict[str, Any] | None = None) -> Test:
    """The claim says the two differ. ``holds`` when |z| exceeds the threshold; ``does not
    hold`` when the difference is bounded below ``relevance`` (|d| + threshold x error <
    relevance, absolute); ``inconclusive`` otherwise."""
    error, dof = combined(first, second)
    limit = threshold(comparisons, dof)
    difference = second.value - first.value
    z = abs(difference) / error if error > 0 else (math.inf if difference else 0.0)
    details = {"difference": difference, "relevance": relevance, "first": first.to_dict(),
               "second": second.to_dict(), **(details or {})}
    text = f"{what}: {first.text()} -> {second.text()}, |z| = {z:.1f} (threshold {limit:.1f})"
    if z > limit:
        return Test(quantity, HOLDS, text, z, limit, details=details)
    if abs(difference) + limit * error < relevance:
        return Test(quantity, FAILS, text + f"; the change is below {relevance:.2g}", z, limit, details=details)
    return Test(quantity, INCONCLUSIVE, text + "; not resolved", z, limit, details=details)


def combine(tests: Sequence[Test]) -> tuple[str, str]:
    """A claim's verdict from its tests: any ``does not hold`` wins, then any ``inconclusive``."""
    if not tests:
        return INCONCLUSIVE, "no test could be made"
    failed = [t.quantity for t in tests if t.verdict == FAILS]
    open_ = [t.quantity for t in tests if t.verdict == INCONCLUSIVE]
    if failed:
        return FAILS, f"{len(failed)} of {len(tests)} tests do not hold: {'; '.join(failed)}"
    if open_:
        return INCONCLUSIVE, (f"{len(open_)} of {len(tests)} tests cannot decide at this precision: "
                              f"{'; '.join(open_)}")
    return HOLDS, f"all {len(tests)} tests hold"


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 along the last axis (ties broken by position: draws are continuous)."""
    return np.argsort(np.argsort(values, axis=-1, kind="stable"), axis=-1, kind="stable").astype(float)


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rank correlation along the last axis."""
    rx, ry = ranks(np.asarray(x)), ranks(np.asarray(y))
    rx -= rx.mean(axis=-1, keepdims=True)
    ry -= ry.mean(axis=-1, keepdims=True)
    return np.sum(rx * ry, axis=-1) / np.sqrt(np.sum(rx * rx, axis=-1) * np.sum(ry * ry, axis=-1))


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's rho of two measured sequences and its Monte Carlo uncertainty.

    ``stderr``, ``p_nonpositive`` and ``p_nonnegative`` come from a parametric bootstrap:
    each measured value is redrawn as value + stderr x t (Student t with its runs - 1
    degrees of freedom), independently, ``draws`` times with a fixed seed.
    """

    rho: float
    stderr: float
    p_nonpositive: float
    p_nonnegative: float
    points: int
    draws: int

    def to_dict(self) -> dict[str, Any]:
        return jsonable(self.__dict__)


def rank_correlation(first: Sequence[Estimate], second: Sequence[Estimate], draws: int = 4000,
                     seed: int = 0) -> RankCorrelation:
    """Spearman's rho between two sequences of estimates, with its bootstrap uncertainty."""
    if len(first) != len(second) or len(first) < 3:
        raise ValueError("need two sequences of the same length >= 3")
    rng = np.random.default_rng(seed)

    def redraw(estimates: Sequence[Estimate]) -> np.ndarray:
        values = np.array([e.value for e in estimates])
        errors = np.nan_to_num(np.array([e.stderr for e in estimates]))
        dofs = np.array([e.dof for e in estimates], dtype=float)
        return values + errors * rng.standard_t(dofs, size=(draws, len(estimates)))

    rho = float(spearman(np.array([e.value for e in first]), np.array([e.value for e in second])))
    samples = spearman(redraw(first), redraw(second))
    return RankCorrelation(rho=rho, stderr=float(np.std(samples, ddof=1)),
                           p_nonpositive=float(np.mean(samples <= 0)), p_nonnegative=float(np.mean(samples >= 0)),
                           points=len(first), draws=draws)


def positive_association(quantity: str, correlation: RankCorrelation, comparisons: int,
                         details: dict[str, Any] | None = None) -> Test:
    """The claim says the two sequences rank alike. ``holds`` when the bootstrap puts rho <= 0
    below the family-wise false-alarm probability, ``does not hold`` when it puts rho >= 0
    there, ``inconclusive`` otherwise."""
    level = FALSE_ALARM / max(comparisons, 1)
    text = (f"Spearman rho = {correlation.rho:.2f} ± {correlation.stderr:.2f} over {correlation.points} points; "
            f"P(rho <= 0) = {correlation.p_nonpositive:.3g} under the Monte Carlo errors (level {level:.2g})")
    details = {"rank_correlation": correlation.to_dict(), "level": level, **(details or {})}
    if correlation.p_nonpositive < level:
        verdict = HOLDS
    elif correlation.p_nonnegative < level:
        verdict = FAILS
    else:
        verdict = INCONCLUSIVE
    return Test(quantity, verdict, text, correlation.rho, level, details=details)


def finite_or_none(value: Any) -> float | None:
    """A float for JSON, None for NaN or infinity."""
    value = float(value)
    return value if math.isfinite(value) else None


def jsonable(value: Any) -> Any:
    """Plain JSON types: NaN and infinities as None, numpy scalars and arrays as numbers and lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return finite_or_none(value)
    if isinstance(value, (Estimate, RankCorrelation)):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):  # settings such as a DmftSize
        return jsonable(asdict(value))
    return value
