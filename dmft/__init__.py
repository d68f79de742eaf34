"""Dynamical mean-field theory of (stochastic) gradient descent on high-dimensional classification.

    >>> import dmft
    >>> problem = dmft.Problem.from_flat(algorithm="sgd", batch_fraction=0.3, steps=60)
    >>> result = dmft.solve(problem, dmft.SolverOptions(samples=4000))
    >>> dmft.save(result, "out.h5")
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import DivergenceError, DmftError, ParameterError

if TYPE_CHECKING:  # what the names below are, for type checkers and documentation tools
    from .algorithms import Algorithm
    from .datasets import Dataset
    from .io import load, load_simulation, save
    from .labelled import open_dataset
    from .losses import Loss
    from .options import SolverOptions
    from .problem import Problem
    from .result import Result, SimulationResult
    from .simulate import simulate
    from .simulation_options import SimulationOptions
    from .solvers import solve

__all__ = [
    "__version__", "Algorithm", "Dataset", "DivergenceError", "DmftError", "Loss", "ParameterError",
    "Problem", "Result", "SimulationOptions", "SimulationResult", "SolverOptions", "load", "load_simulation",
    "open_dataset", "save", "simulate", "solve",
]

# Each public name and the module defining it, imported at first use (PEP 562): `import dmft`
# and `dmft --help` then import no numba, scipy, h5py or xarray.
_LAZY = {
    "Algorithm": "algorithms", "Dataset": "datasets", "Loss": "losses", "Problem": "problem",
    "Result": "result", "SimulationResult": "result", "SimulationOptions": "simulation_options",
    "SolverOptions": "options", "load": "io", "load_simulation": "io", "save": "io", "open_dataset": "labelled",
    "simulate": "simulate", "solve": "solvers",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        # A submodule (dmft.io, dmft.fdt, ...), as when this module imported them eagerly.
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return importlib.import_module(f".{name}", __name__)
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups no longer come here
    return value


def __dir__() -> list[str]:
    # The public names, the module's dunders and the submodules imported so far; not this file's helpers.
    submodules = {name for name, value in globals().items()
                  if isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.{name}"}
    return sorted(set(__all__) | submodules | {name for name in globals() if name.startswith("__")})


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # Importing the submodule dmft.simulate binds it here, under the name of its function:
        # dmft.simulate stays the function, as when this module imported it eagerly.
        if name == "simulate" and isinstance(value, types.ModuleType):
            value = value.simulate
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
