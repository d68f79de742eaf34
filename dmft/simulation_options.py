"""How to simulate: dimension, seeds, and the reference times of the finite-d simulator."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from .errors import ParameterError
from .problem import Problem

# Refuse a data matrix larger than this (bytes): a typo in --dimension should not swap.
MAX_DATA_BYTES = 8 * 2**30
TIME_OPTIONS = ("correlation_times", "response_times", "chi_times", "gap_times")


def _times_tuple(name: str, value: Any) -> tuple[float, ...] | None:
    """Validate a list of times: finite, >= 0; returned sorted without duplicates."""
    if value is None:
        return None
    if isinstance(value, str):  # "0,1.5,3" from the command line; "" means none
        value = [part for part in value.split(",") if part.strip()]
    elif np.ndim(value) == 0:
        value = [value]
    try:
        times = [float(t) for t in value]
    except (TypeError, ValueError):
        raise ParameterError(name, f"must be a list of times, got {value!r}") from None
    for t in times:
        if not (math.isfinite(t) and t >= 0):
            raise ParameterError(name, f"times must be finite and >= 0, got {t}")
    return tuple(sorted(set(times)))


@dataclass(frozen=True)
class SimulationOptions:
    """Options of ``dmft.simulate.simulate``.

    dimension:          d; the training set has n = round(alpha d) samples.
    seeds:              independent runs (new data, centre, w_0, selections, noise each);
                        means and standard errors are taken over them (1: no error bars).
    seed:               root of ``np.random.SeedSequence(seed).spawn(seeds)``.
    correlation_times:  reference times t_j (multiples of dt) for C[k, j] = w_k.w_j/d;
                        None: t at steps 0, N/4, N/2, 3N/4.
    response_times:     times of the pulsed field for R[k, j]; None: correlation_times.
    chi_times:          switch-on times of the constant field for chi[k, j]; None:
                        response_times (so C_times == chi_times by default).
    gap_times:          times at which the gaps y phi(h) of the training set are kept;
                        None: the final time.
    response_field:     0: linearised response runs (exact eps -> 0 limit); eps > 0:
                        twin runs with a finite field eps.
    replicas:           2 adds a second run on the same data from the same w_0 with
                        independent selections and Langevin noise, and records the
                        distance D_k = |w^a_k - w^b_k|^2/d (docs/theory.md §7).
    """

    dimension: int = 1000
    seeds: int = 8
    seed: int = 0
    correlation_times: tuple[float, ...] | None = None
    response_times: tuple[float, ...] | None = None
    chi_times: tuple[float, ...] | None = None
    gap_times: tuple[float, ...] | None = None
    response_field: float = 0.0
    replicas: int = 1

    def __post_init__(self) -> None:
        for name, low in (("dimension", 1), ("seeds", 1), ("seed", 0), ("replicas", 1)):
            object.__setattr__(self, name, _integer(name, getattr(self, name), low))
        if self.replicas not in (1, 2):
            raise ParameterError("replicas", f"must be 1 or 2, got {self.replicas}")
        field_value = self.response_field
        if isinstance(field_value, bool) or not isinstance(field_value, (int, float, np.integer, np.floating)) \
                or not (math.isfinite(field_value) and field_value >= 0):
            raise ParameterError("response_field", f"must be a finite number >= 0, got {field_value!r}")
        object.__setattr__(self, "response_field", float(field_value))
        for name in TIME_OPTIONS:
            object.__setattr__(self, name, _times_tuple(name, getattr(self, name)))

    @classmethod
    def from_flat(cls, **options: Any) -> "SimulationOptions":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise ParameterError(unknown[0], f"unknown simulation option; known: {', '.join(sorted(known))}")
        return cls(**options)

    def flat(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def resolve(self, problem: Problem) -> "SimulationOptions":
        """The same options with every time list made explicit and checked against the grid."""
        n_steps = problem.steps
        default_steps = sorted({0, round(n_steps / 4), round(n_steps / 2), round(3 * n_steps / 4)})
        correlation = self.correlation_times
        if correlation is None:
            correlation = tuple(float(k * problem.dt) for k in default_steps)
        response = correlation if self.response_times is None else self.response_times
        chi = response if self.chi_times is None else self.chi_times
        gaps = (float(problem.time[-1]),) if self.gap_times is None else self.gap_times
        resolved = replace(self, correlation_times=correlation, response_times=response, chi_times=chi,
                           gap_times=gaps)
        for name in TIME_OPTIONS:
            time_steps(problem, name, getattr(resolved, name))
        n = sample_count(problem, self.dimension)
        if 8 * n * self.dimension > MAX_DATA_BYTES:
            raise ParameterError("dimension", f"the data matrix would take {8 * n * self.dimension / 2**30:.1f} GiB "
                                              f"(n = {n}, d = {self.dimension}); the limit is "
                                              f"{MAX_DATA_BYTES / 2**30:.0f} GiB")
        return resolved


def _integer(name: str, value: Any, low: int) -> int:
    ok = isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, (bool, np.bool_)) or not ok or value < low:
        raise ParameterError(name, f"must be an integer >= {low}, got {value!r}")
    return int(value)


SIMULATION_KEYS = tuple(SimulationOptions.__dataclass_fields__)


def sample_count(problem: Problem, dimension: int) -> int:
    """n = round(alpha d), at least 1."""
    n = int(round(problem.dataset.alpha * dimension))
    if n < 1:
        raise ParameterError("dimension", f"alpha d = {problem.dataset.alpha * dimension:g} gives no training sample")
    return n


def time_steps(problem: Problem, name: str, times: Sequence[float]) -> np.ndarray:
    """Grid indices k = t/dt of ``times``, refusing times off the grid or past the end."""
    steps = []
    for t in times:
        k = int(round(t / problem.dt))
        if abs(k * problem.dt - t) > 1e-9 * max(1.0, abs(t)):
            raise ParameterError(name, f"time {t:g} is not a multiple of dt = {problem.dt:g}")
        if k > problem.steps:
            raise ParameterError(name, f"time {t:g} is past the final time {problem.time[-1]:g}")
        steps.append(k)
    return np.asarray(steps, dtype=np.int64)
