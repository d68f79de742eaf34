"""Grid configuration: a validated Cartesian product of ``dmft.solve`` parameters.

A grid is a TOML file with a ``[problem]`` and a ``[solver]`` table (the options of
``dmft solve``, underscores) and a ``[grid]`` table mapping some of those keys to lists
of values; the points are the Cartesian product of the lists, the last key varying
fastest. An optional top-level ``seed`` (or ``[solver] seed``) is the grid seed::

    seed = 1
    [problem]
    steps = 60
    [solver]
    samples = 2000
    [grid]
    algorithm = ["sgd", "persistent-sgd"]
    batch_fraction = [0.1, 0.3]

Every point is validated (its ``Problem`` and ``SolverOptions`` are built) before any
work starts. Each point's seed is derived from the grid seed and the point's full
parameter set, so a point's numbers depend neither on the number of workers, nor on
the order of completion, nor on which other points share the grid.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DmftError, ParameterError
from ..options import SOLVER_KEYS, SolverOptions
from ..problem import PROBLEM_KEYS, Problem, coerce_like

# Defaults give each key its type (bool / int / float / str), as in Problem.from_flat.
_PROBLEM_DEFAULTS = Problem().flat()
_SOLVER_DEFAULTS = SolverOptions().flat()
_TOP_LEVEL = ("seed", "problem", "solver", "grid")


def _coerce(key: str, value: Any) -> Any:
    """Convert a TOML value to the type of ``key``'s default, naming the key if it cannot."""
    default = _PROBLEM_DEFAULTS[key] if key in _PROBLEM_DEFAULTS else _SOLVER_DEFAULTS[key]
    if isinstance(default, tuple):  # e.g. gap_steps: a list of integers
        items = value if isinstance(value, (list, tuple)) else [value]
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
            return tuple(int(v) for v in items)
        raise ParameterError(key, f"must be a list of integers, got {value!r}")
    return coerce_like(key, value, default)


def _message(error: ParameterError) -> str:
    """The message of a ParameterError without its 'parameter: ' prefix."""
    return str(error).removeprefix(f"{error.parameter}: ")


def format_coords(coords: Mapping[str, Any]) -> str:
    """Axis values as ``key=value, ...`` for messages and the progress display."""
    return ", ".join(f"{key}={value}" for key, value in coords.items())


def point_seed(grid_seed: int, parameters: Mapping[str, Any]) -> int:
    """The solver seed of one point: a function of the grid seed and the point's parameters only.

    The canonical parameter string (sorted keys, floats by repr) is hashed into the
    entropy of a ``numpy.random.SeedSequence``; the result is below 2**63 so that it fits
    the int64 HDF5 attributes and ``SolverOptions.seed``.
    """
    text = json.dumps({key: parameters[key] for key in sorted(parameters) if key != "seed"},
                      sort_keys=True, separators=(",", ":"))
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "little")
    words = np.random.SeedSequence([int(grid_seed), digest]).generate_state(2, np.uint32)
    return int(words[0]) | ((int(words[1]) & 0x7FFFFFFF) << 32)


@dataclass(frozen=True)
class GridPoint:
    """One validated point: its index in the product, its axis values and what to solve."""

    index: int
    coords: dict[str, Any]
    problem: Problem
    options: SolverOptions  # seed already derived with ``point_seed``

    def parameters(self) -> dict[str, Any]:
        """Every problem and solver parameter of the point (flat option names)."""
        return {**self.problem.flat(), **self.options.flat()}


@dataclass(frozen=True, eq=False)
class GridSpec:
    """A validated grid: fixed problem/solver values, ordered axes, grid seed.

    Construction validates every point up front; a bad value anywhere raises
    ``ParameterError`` naming the key before any work starts.
    """

    problem: Mapping[str, Any] = field(default_factory=dict)
    solver: Mapping[str, Any] = field(default_factory=dict)
    axes: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    seed: int = 0
    source: str = ""  # the TOML text, kept in the output file for provenance
    points: tuple[GridPoint, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for key in (*self.problem, *self.solver):
            _check_key(key, "problem" if key in self.problem else "solver")
        problem = {key: _coerce(key, value) for key, value in dict(self.problem).items()}
        solver = {key: _coerce(key, value) for key, value in dict(self.solver).items()}
        if "seed" in solver:
            raise ParameterError("seed", "give the grid seed as GridSpec(seed=...), not in solver")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ParameterError("seed", f"must be an integer >= 0, got {self.seed!r}")
        axes: dict[str, tuple[Any, ...]] = {}
        for key, values in dict(self.axes).items():
            if key == "seed":
                raise ParameterError("seed", "cannot be a grid axis: each point's seed is derived from the grid "
                                             "seed and its parameters (use subpopulations for error bars)")
            if key not in PROBLEM_KEYS and key not in SOLVER_KEYS:
                raise ParameterError(key, f"unknown grid key; known: {', '.join(PROBLEM_KEYS + SOLVER_KEYS)}")
            if key in problem or key in solver:
                raise ParameterError(key, f"given both in [{'problem' if key in problem else 'solver'}] and in "
                                          "[grid]: keep one")
            if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence):
                raise ParameterError(key, f"[grid] values must be a list, got {values!r}")
            if len(values) == 0:
                raise ParameterError(key, "[grid] list is empty")
            coerced = tuple(_coerce(key, value) for value in values)
            if len(set(coerced)) != len(coerced):
                raise ParameterError(key, f"[grid] list has repeated values: {list(values)!r}")
            axes[key] = coerced
        object.__setattr__(self, "problem", problem)
        object.__setattr__(self, "solver", solver)
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "points", self._build_points())

    def _build_points(self) -> tuple[GridPoint, ...]:
        points, errors = [], []
        for index, values in enumerate(itertools.product(*self.axes.values())):
            coords = dict(zip(self.axes, values))
            merged = {**self.problem, **self.solver, **coords}
            try:
                problem = Problem.from_flat(**{k: v for k, v in merged.items() if k in PROBLEM_KEYS})
                options = SolverOptions.from_flat(**{k: v for k, v in merged.items() if k in SOLVER_KEYS},
                                                  seed=self.seed)
            except ParameterError as error:
                errors.append((index, coords, error))
                continue
            seed = point_seed(self.seed, {**problem.flat(), **options.flat()})
            points.append(GridPoint(index, coords, problem, dataclasses.replace(options, seed=seed)))
        if errors:
            index, coords, error = errors[0]
            others = f" (and {len(errors) - 1} more bad points)" if len(errors) > 1 else ""
            where = f"grid point {index} ({format_coords(coords)})" if coords else "the configuration"
            raise ParameterError(error.parameter, f"{_message(error)} at {where}{others}")
        return tuple(points)

    # -- construction from TOML --------------------------------------------------------

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> "GridSpec":
        """Read and validate a grid configuration file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DmftError(f"config: no such file {path}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise DmftError(f"config: cannot read {path} ({error})") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise DmftError(f"config: {path} is not valid TOML ({error})") from None
        return cls.from_dict(data, source=text)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "") -> "GridSpec":
        """Validate a parsed TOML document ({"problem": {...}, "solver": {...}, "grid": {...}, "seed": s})."""
        for key in data:
            if key in _TOP_LEVEL:
                continue
            if key in PROBLEM_KEYS or key in SOLVER_KEYS:
                table = "problem" if key in PROBLEM_KEYS else "solver"
                raise ParameterError(key, f"top-level key: put it in [{table}] (or in [grid] to vary it)")
            raise ParameterError(key, "unknown table or key; a grid configuration has [problem], [solver], "
                                      "[grid] and an optional top-level seed")
        tables = {}
        for name in ("problem", "solver", "grid"):
            table = data.get(name, {})
            if not isinstance(table, Mapping):
                raise ParameterError(name, f"must be a table [{name}], got {table!r}")
            tables[name] = dict(table)
        for key in tables["problem"]:
            if key in SOLVER_KEYS and key not in PROBLEM_KEYS:
                raise ParameterError(key, "is a solver option: put it in [solver]")
        for key in tables["solver"]:
            if key in PROBLEM_KEYS:
                raise ParameterError(key, "is a problem parameter: put it in [problem]")
        solver = tables["solver"]
        seed = data.get("seed")
        if "seed" in solver:
            solver_seed = solver.pop("seed")
            if seed is not None and solver_seed != seed:
                raise ParameterError("seed", f"given twice with different values ({seed!r} at top level, "
                                             f"{solver_seed!r} in [solver])")
            seed = solver_seed
        if seed is None:
            seed = 0
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ParameterError("seed", f"must be an integer >= 0, got {seed!r}")
        return cls(problem=tables["problem"], solver=solver, axes=tables["grid"], seed=seed, source=source)

    # -- derived facts -----------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(values) for values in self.axes.values())

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(self.axes)

    def __len__(self) -> int:
        return len(self.points)

    def identity(self) -> dict[str, Any]:
        """What must match for a file to be resumed: every fixed parameter (defaults
        included, so a changed default is noticed), the axes in order, the grid seed."""
        fixed = {key: value for key, value in self.points[0].parameters().items()
                 if key not in self.axes and key != "seed"}
        return {"fixed": fixed, "axes": [[key, list(values)] for key, values in self.axes.items()],
                "seed": self.seed}

    def group_name(self, index: int) -> str:
        """``points/<index>``, zero-padded so that groups sort in grid order."""
        width = len(str(max(len(self.points) - 1, 0)))
        return f"{index:0{width}d}"


def _check_key(key: str, table: str) -> None:
    known = PROBLEM_KEYS if table == "problem" else SOLVER_KEYS
    if key not in known:
        raise ParameterError(key, f"unknown key in [{table}]; known: {', '.join(known)}")
