"""Dynamical mean-field theory of (stochastic) gradient descent on high-dimensional classification.

    >>> import dmft
    >>> problem = dmft.Problem.from_flat(algorithm="sgd", batch_fraction=0.3, steps=60)
    >>> result = dmft.solve(problem, dmft.SolverOptions(samples=4000))
    >>> dmft.save(result, "out.h5")
"""

from pathlib import Path

from ._numba_cache import clear_stale_caches, numba_cache_dirs
from ._version import __version__
from .algorithms import Algorithm
from .datasets import Dataset
from .errors import DivergenceError, DmftError, ParameterError
from .io import load, load_simulation, save
from .losses import Loss
from .problem import Problem
from .result import Result, SimulationResult
from .simulate import simulate
from .simulation_options import SimulationOptions
from .solvers import SolverOptions, solve

# numba compiles a function, or loads it from its cache, at the first call; none runs at
# import (tests/test_numba_cache.py), so this still comes before any kernel is loaded.
clear_stale_caches(Path(__file__).parent, cache_dirs=numba_cache_dirs(__name__))

__all__ = [
    "__version__", "Algorithm", "Dataset", "DivergenceError", "DmftError", "Loss", "ParameterError",
    "Problem", "Result", "SimulationOptions", "SimulationResult", "SolverOptions", "load", "load_simulation",
    "open_dataset", "save", "simulate", "solve",
]


def __getattr__(name: str):  # noqa: ANN202 - module-level attribute hook
    # dmft.open_dataset lives in dmft.labelled, imported on first use: xarray and pandas
    # take longer to import than the rest of dmft.
    if name == "open_dataset":
        from .labelled import open_dataset

        return open_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
