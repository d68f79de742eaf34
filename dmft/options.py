"""How to solve: method, response estimator, Monte Carlo population, fixed-point settings."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import ParameterError

METHODS = ("march", "iterate")
RESPONSES = ("probe", "exact")
PRECISIONS = ("single", "double", "compact")
# The default path storage: within a tenth of the Monte Carlo error of float64 (tested),
# 6 bytes per sample and step instead of 10 (single) or 24 (double), and the fastest march.
DEFAULT_PRECISION = "compact"
# Chunk widths chosen by chunk_size = 0, widest first, and the chunks they must leave.
AUTOMATIC_CHUNKS = (256, 128, 64)
MIN_CHUNKS = 32


@dataclass(frozen=True)
class SolverOptions:
    """Options of ``dmft.solve``.

    samples:         N_s effective samples in the whole Monte Carlo population.
    subpopulations:  the population is split into this many independent parts, each
                     solved self-consistently on its own; the result is their mean and
                     the spread gives honest Monte Carlo error bars (1: no error bars).
    probes:          random probes per sample for the response (response="probe").
    damping:         iterate only: kernels <- damping * old + (1 - damping) * new.
    tolerance:       iterate only: stop when the RMS change of the kernels (all entries,
                     and their diagonals), in units of its Monte Carlo noise floor, stays
                     below this for two iterations (1 = pure noise).
    resample:        iterate only: fresh random draws every iteration (the classical
                     loop); False reuses one set of draws, whose fixed point is then
                     exactly the march's answer for the same draws.
    chunk_size:      samples per accumulation chunk; fixes the summation order so
                     results do not depend on the number of threads. 0 (the default):
                     the widest of 256, 128 and 64 that leaves at least 32 chunks in a
                     subpopulation (``chunk_width``).
    replicas:        2 solves the two-replica DMFT (docs/theory.md §7) and adds the
                     cross correlation C_ab and the replica distance; probe responses only.
    gap_steps:       steps k at which the gap distribution y phi(h_k) of the population is
                     kept (the final step always is).
    precision:       "compact" (the default) stores the sample paths f and lam du in 16
                     bits, int16 with one scale per chunk of samples and step (an
                     absolute error of at most 1/65534 of the row's largest magnitude),
                     and the Gaussian innovations as int8 multiples of 2^-4, rescaled to
                     variance 1 (the same law: population.ZETA_STEP), and sums over them
                     in float32 (Gamma_C, the weight side and the observables in
                     float64): less memory traffic, which bounds the march. "single"
                     stores the paths in float32 instead, "double" all in float64.
                     Compact and single reproduce double to a tenth of the Monte Carlo
                     error (tested).
    keep_runs:       keep each subpopulation's C, R, m, A (in ``diagnostics`` and the file),
                     so that derived quantities such as T_eff get jackknife error bars.
                     Costs 2 n_sub (N+1)^2 doubles; turn off for very long runs.
    memory_window:   an approximation for long runs whose responses decay (a ridge, a
                     stationary state): R(t, t') and K(t, t') are taken as zero for
                     t - t' > memory_window (in time units; 0: none, the exact equations).
                     The memory sums and the weight side then cost O(window) per step
                     instead of O(t); C and Gamma_C are kept whole. The diagnostics
                     ``memory_edge`` (largest |R| at the window's edge) and ``memory_tail``
                     (the integral of |R| beyond it, extrapolated) measure the cut: C
                     changes by about the tail (tested against an exact solution).
    """

    method: str = "march"
    response: str = "probe"
    samples: int = 10_000
    seed: int = 0
    subpopulations: int = 4
    probes: int = 1
    damping: float = 0.3
    tolerance: float = 1.2
    max_iterations: int = 100
    resample: bool = True
    chunk_size: int = 0
    replicas: int = 1
    gap_steps: tuple[int, ...] = ()
    precision: str = DEFAULT_PRECISION
    keep_runs: bool = True
    memory_window: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ParameterError("method", f"must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.response not in RESPONSES:
            raise ParameterError("response", f"must be one of {', '.join(RESPONSES)}, got {self.response!r}")
        minimums = (("samples", 2), ("subpopulations", 1), ("probes", 1), ("max_iterations", 1), ("chunk_size", 0))
        for name, low in minimums:
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < low:
                raise ParameterError(name, f"must be an integer >= {low}, got {value!r}")
            object.__setattr__(self, name, int(value))
        if isinstance(self.seed, bool) or int(self.seed) != self.seed or self.seed < 0:
            raise ParameterError("seed", f"must be an integer >= 0, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        if self.samples // self.subpopulations < 2:
            raise ParameterError("subpopulations", f"must leave >= 2 samples each; got {self.subpopulations} "
                                                   f"for {self.samples} samples")
        if self.precision not in PRECISIONS:
            raise ParameterError("precision", f"must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.replicas not in (1, 2):
            raise ParameterError("replicas", f"must be 1 or 2, got {self.replicas!r}")
        if self.replicas == 2 and self.response != "probe":
            raise ParameterError("response", "two replicas are solved with --response probe only")
        steps = tuple(self.gap_steps) if not isinstance(self.gap_steps, (int, float)) else (self.gap_steps,)
        if any(isinstance(k, bool) or int(k) != k or k < 0 for k in steps):
            raise ParameterError("gap_steps", f"must be steps k >= 0, got {self.gap_steps!r}")
        object.__setattr__(self, "gap_steps", tuple(sorted({int(k) for k in steps})))
        if not (0 <= self.damping < 1):
            raise ParameterError("damping", f"must lie in [0, 1), got {self.damping}")
        if not (self.tolerance > 0 and math.isfinite(self.tolerance)):
            raise ParameterError("tolerance", f"must be > 0 and finite, got {self.tolerance}")
        if isinstance(self.memory_window, bool) or not (self.memory_window >= 0 and math.isfinite(self.memory_window)):
            raise ParameterError("memory_window", f"must be >= 0 and finite (0: no window), got {self.memory_window!r}")
        object.__setattr__(self, "memory_window", float(self.memory_window))

    @classmethod
    def from_flat(cls, **options: Any) -> "SolverOptions":
        """Build from option names (config files, the command line), checking each value's type."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ParameterError(unknown[0], f"unknown solver option; known: {', '.join(sorted(known))}")
        for name, value in options.items():
            _check_type(name, value, cls.__dataclass_fields__[name].default)
        return cls(**options)

    def flat(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def memory_steps(self, dt: float) -> int | None:
        """The memory window in steps of size ``dt`` (at least one), or None without one."""
        if self.memory_window == 0:
            return None
        return max(int(round(self.memory_window / dt)), 1)

    def chunk_width(self, samples: int) -> int:
        """Samples per chunk in a population of ``samples``: ``chunk_size``, or if 0 the
        widest of AUTOMATIC_CHUNKS leaving at least MIN_CHUNKS chunks.

        Wider chunks stream faster (fewer, longer loops and per-chunk rows: the march at
        N = 2000, N_s = 10^4 took 10.7 s in chunks of 256 against 12.7 s in chunks of 64);
        32 chunks keep the batch-means errors of the fixed-point loop well estimated.
        """
        if self.chunk_size:
            return self.chunk_size
        return next((width for width in AUTOMATIC_CHUNKS if samples >= MIN_CHUNKS * width), AUTOMATIC_CHUNKS[-1])

    def steps_per_run(self, steps: int) -> int:
        """The progress of one subpopulation's solve in units: its steps + 1 (march) or its
        iterations at most (fixed-point loop)."""
        return steps + 1 if self.method == "march" else self.max_iterations

    def subpopulation_sizes(self) -> list[int]:
        """Samples in each independent subpopulation (sizes differ by at most one)."""
        base, extra = divmod(self.samples, self.subpopulations)
        return [base + (1 if i < extra else 0) for i in range(self.subpopulations)]


SOLVER_KEYS = tuple(SolverOptions.__dataclass_fields__)


def _check_type(name: str, value: Any, default: Any) -> None:
    """Refuse a value whose type does not match the option's (bool is not a number here)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, tuple):
        ok = isinstance(value, (tuple, list))
    else:
        ok = True
    if not ok:
        raise ParameterError(name, f"must be of type {type(default).__name__}, got {value!r}")
