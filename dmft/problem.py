"""The learning problem: dataset, loss, algorithm, ridge, time grid, initial condition.

``Problem`` is validated once, on construction. ``Problem.from_flat`` and ``flat()``
convert to and from the flat option names shared by the command line, TOML
configurations and HDF5 attributes (``batch_fraction``, ``persistence_time``, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .algorithms import Algorithm
from .datasets import Dataset
from .errors import ParameterError
from .losses import Loss

# Flat option name -> (component, field name in that component).
_COMPONENT_KEYS = {
    "dataset": ("dataset", "name"),
    "alpha": ("dataset", "alpha"),
    "delta": ("dataset", "delta"),
    "rho": ("dataset", "rho"),
    "theta": ("dataset", "theta"),
    "label_noise": ("dataset", "label_noise"),
    "loss": ("loss", "name"),
    "margin": ("loss", "margin"),
    "sharpness": ("loss", "sharpness"),
    "algorithm": ("algorithm", "name"),
    "batch_fraction": ("algorithm", "batch_fraction"),
    "persistence_time": ("algorithm", "persistence_time"),
    "temperature": ("algorithm", "temperature"),
    "batch_average": ("algorithm", "batch_average"),
    "momentum": ("algorithm", "momentum"),
}
_TOP_KEYS = ("ridge", "dt", "steps", "init_variance")
PROBLEM_KEYS = tuple(_COMPONENT_KEYS) + _TOP_KEYS

# Beyond this |w|^2/d the run has diverged: a step too large for the curvature.
DIVERGENCE_BOUND = 1e10


@dataclass(frozen=True)
class Problem:
    """Everything that defines the d -> infinity learning dynamics (docs/theory.md §1)."""

    dataset: Dataset = field(default_factory=Dataset)
    loss: Loss = field(default_factory=Loss)
    algorithm: Algorithm = field(default_factory=Algorithm)
    ridge: float = 0.1
    dt: float = 0.1
    steps: int = 100
    init_variance: float = 1.0

    def __post_init__(self) -> None:
        if not (self.ridge >= 0 and math.isfinite(self.ridge)):
            raise ParameterError("ridge", f"must be >= 0 and finite, got {self.ridge}")
        if not (self.dt > 0 and math.isfinite(self.dt)):
            raise ParameterError("dt", f"must be > 0 and finite, got {self.dt}")
        if isinstance(self.steps, bool) or int(self.steps) != self.steps or self.steps < 1:
            raise ParameterError("steps", f"must be an integer >= 1, got {self.steps}")
        object.__setattr__(self, "steps", int(self.steps))
        if not (self.init_variance >= 0 and math.isfinite(self.init_variance)):
            raise ParameterError("init_variance", f"must be >= 0 and finite, got {self.init_variance}")
        if self.ridge * self.dt >= 2:
            raise ParameterError("dt", f"dt * ridge = {self.dt * self.ridge:g} >= 2: the ridge term alone diverges")
        self.algorithm.check_step(self.dt)

    @classmethod
    def from_flat(cls, **options: Any) -> "Problem":
        """Build from flat option names; unknown names are refused, missing ones take defaults."""
        unknown = sorted(set(options) - set(PROBLEM_KEYS))
        if unknown:
            raise ParameterError(unknown[0], f"unknown problem parameter; known: {', '.join(PROBLEM_KEYS)}")
        parts: dict[str, dict[str, Any]] = {"dataset": {}, "loss": {}, "algorithm": {}}
        top: dict[str, Any] = {}
        for key, value in options.items():
            if key in _COMPONENT_KEYS:
                component, name = _COMPONENT_KEYS[key]
                parts[component][name] = _coerce(key, value, component, name)
            else:
                top[key] = _coerce(key, value, None, key)
        return cls(
            dataset=Dataset(**parts["dataset"]),
            loss=Loss(**parts["loss"]),
            algorithm=Algorithm(**parts["algorithm"]),
            **top,
        )

    def flat(self) -> dict[str, Any]:
        """Flat option names -> values (the HDF5 attribute names)."""
        out: dict[str, Any] = {}
        for key, (component, name) in _COMPONENT_KEYS.items():
            out[key] = getattr(getattr(self, component), name)
        for key in _TOP_KEYS:
            out[key] = getattr(self, key)
        return out

    def replace(self, **options: Any) -> "Problem":
        """A copy with some flat options changed (validated anew)."""
        return Problem.from_flat(**{**self.flat(), **options})

    @property
    def time(self) -> np.ndarray:
        """t_k = k dt for k = 0..N."""
        return self.dt * np.arange(self.steps + 1)


def _default_of(component: str | None, name: str) -> Any:
    owner = {"dataset": Dataset, "loss": Loss, "algorithm": Algorithm, None: Problem}[component]
    for f in fields(owner):
        if f.name == name:
            return f.default if not callable(f.default_factory) else f.default_factory()  # type: ignore[misc]
    raise KeyError(name)


def _coerce(key: str, value: Any, component: str | None, name: str) -> Any:
    """Convert a value to the type of the field's default, naming the key if it cannot."""
    return coerce_like(key, value, _default_of(component, name))


def coerce_like(key: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default`` (bool, str, int or float), naming ``key`` if it cannot.

    Config files and HDF5 attributes give numpy scalars and floats such as 3.0 for integers.
    """
    if isinstance(default, bool):
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise ParameterError(key, f"must be true or false, got {value!r}")
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise ParameterError(key, f"must be a string, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ParameterError(key, f"must be an integer, got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    raise ParameterError(key, f"must be a number, got {value!r}")

