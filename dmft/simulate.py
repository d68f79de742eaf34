"""Direct simulation of the learning dynamics at finite dimension d (THEORY.md section 1).

The simulator runs the algorithm exactly as defined on the same ``dmft.Problem`` the
DMFT solver takes, reusing the dataset's label law, the algorithm's selection process
and the numba loss terms, so that the two can only disagree through finite-d effects,
Monte Carlo error or a bug.

Per seed: fresh data (centre v, labels, noise z), fresh w_0, fresh selections and
Langevin noise, all from ``np.random.SeedSequence(seed).spawn(seeds)``. Every step costs
two BLAS matrix products ``X @ W`` and ``X.T @ F`` where the columns of W are the main
run, the optional second replica and the response runs, advanced in lockstep with the
same selections and noise (memory O(n d + columns d)).

Responses. ``R[k, j]`` is the response of w_k to a field added at update j
(w_{j+1} += dt eps kick), normalised so that R[j+1, j] = 1: the kick is a Gaussian
direction rescaled to |kick|^2 = d, and R[k, j] = dw_k(eps).kick / (eps d dt), an
unbiased estimate of Tr(dw_k/dfield_j)/d. ``chi[k, j] = dt sum_{i=j}^{k-1} R[k, i]`` is
measured directly by a run with the field on at every update i >= j. With
``response_field = 0`` (default) the response runs are linearised (tangent) runs, the
exact eps -> 0 limit of the twin runs; with ``response_field = eps > 0`` they are
genuine twin runs with a finite field (nonlinear, O(eps) bias), useful as a check.
"""

from __future__ import annotations

import json
import math
import os
import time as _time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import h5py
import numpy as np

from .errors import DivergenceError, ParameterError
from .io import FileFormatError, atomic_h5, attribute_value, format_version, older_layout, provenance
from .losses import loss_terms_array
from .problem import DIVERGENCE_BOUND, PROBLEM_KEYS, Problem
from .statistics import mean_and_stderr

if TYPE_CHECKING:
    from .gaps import GapSummary

KIND_SIMULATE = "dmft-simulate"
SIMULATION_FORMAT_VERSION = 1
# Refuse a data matrix larger than this (bytes): a typo in --dimension should not swap.
MAX_DATA_BYTES = 8 * 2**30
TIME_OPTIONS = ("correlation_times", "response_times", "chi_times", "gap_times")
# Observables averaged over seeds, with a standard error each.
SIM_OBSERVABLES = ("m", "self_overlap", "C", "R", "chi", "train_loss", "train_error", "test_error", "distance")

Progress = Callable[[int, int], None]


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
                        distance D_k = |w^a_k - w^b_k|^2/d (THEORY.md section 7).
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


@dataclass(frozen=True)
class SimulationResult:
    """Means over seeds of the finite-d observables, indexed by step k = 0..N.

    C[k, a] = w_k.w_j/d for j the a-th entry of ``C_steps`` (NaN for k < j: those
    would need w_k stored until step j). R[k, a] and chi[k, a] likewise for
    ``R_steps`` and ``chi_steps`` (exactly 0 for k <= j). ``*_times`` are the same
    references as times t = k dt. ``gaps[t]`` pools y phi(h) of the training sets of all
    seeds at time t. ``stderr[name]`` is std(ddof=1)/sqrt(seeds) over seeds (NaN for
    one seed). ``test_error`` is the exact generalisation error of each trained w
    (``Dataset.test_error`` of its m and |w|^2/d: given w, a fresh preactivation is
    exactly Gaussian), averaged over seeds. ``distance`` is None unless replicas = 2.
    """

    problem: Problem
    options: SimulationOptions
    time: np.ndarray
    m: np.ndarray
    self_overlap: np.ndarray
    C: np.ndarray
    C_times: np.ndarray
    R: np.ndarray
    R_times: np.ndarray
    chi: np.ndarray
    chi_times: np.ndarray
    train_loss: np.ndarray
    train_error: np.ndarray
    test_error: np.ndarray
    gaps: dict[float, np.ndarray] = field(default_factory=dict)
    distance: np.ndarray | None = None
    stderr: dict[str, np.ndarray] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def _steps(self, times: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(times) / self.problem.dt).astype(np.int64)

    @property
    def C_steps(self) -> np.ndarray:
        """Grid indices j of the columns of C."""
        return self._steps(self.C_times)

    @property
    def R_steps(self) -> np.ndarray:
        return self._steps(self.R_times)

    @property
    def chi_steps(self) -> np.ndarray:
        return self._steps(self.chi_times)

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Write the HDF5 file (atomically; see ``save_simulation``)."""
        save_simulation(self, path, overwrite=overwrite)

    def summary(self) -> str:
        """A few lines on the final state, for the command line."""
        k = self.problem.steps
        n = self.diagnostics.get("samples", "?")
        lines = [f"t = {self.time[k]:g} (k = {k}), d = {self.options.dimension}, n = {n}, "
                 f"{self.options.seeds} seeds, {self.diagnostics.get('wall_time', float('nan')):.2f} s"]
        names = ["m", "self_overlap", "train_loss", "train_error", "test_error"]
        if self.distance is not None:
            names.append("distance")
        for name in names:
            value = getattr(self, name)[k]
            error = self.stderr.get(name)
            suffix = f" +- {error[k]:.2g}" if error is not None and np.isfinite(error[k]) else ""
            lines.append(f"  {name:<13}{value:.5g}{suffix}")
        for t in self.gaps:
            lines.append("  " + self.gap_summary(t).line())
        return "\n".join(lines)

    def gap_summary(self, time: float) -> "GapSummary":
        """Quantiles, fractions below 0 and the margin, smallest gap at ``time`` (all seeds pooled)."""
        from .gaps import summarize

        return summarize(self.gaps[time], time, self.problem.loss.margin)

    def gap_groups(self, time: float) -> list[np.ndarray]:
        """The gaps at ``time`` cut into the independent seeds they came from."""
        from .gaps import split

        return split(self.gaps[time], [self.diagnostics["samples"]] * self.options.seeds)


# ----------------------------------------------------------------------------- simulation


def simulate(problem: Problem, options: SimulationOptions | None = None,
             progress: Progress | None = None) -> SimulationResult:
    """Simulate ``problem`` at dimension ``options.dimension`` over ``options.seeds`` seeds.

    ``progress(done, total)`` is called after every step of every seed.
    """
    options = (options or SimulationOptions()).resolve(problem)
    start = _time.perf_counter()
    total = options.seeds * (problem.steps + 1)
    runs = []
    for index, seed in enumerate(np.random.SeedSequence(options.seed).spawn(options.seeds)):
        offset = index * (problem.steps + 1)
        seed_progress = None
        if progress is not None:
            seed_progress = lambda done, _total, offset=offset: progress(offset + done, total)  # noqa: E731
        runs.append(_simulate_seed(problem, options, seed, seed_progress))
    return _combine(problem, options, runs, _time.perf_counter() - start)


def _simulate_seed(problem: Problem, options: SimulationOptions, seed: np.random.SeedSequence,
                   progress: Progress | None) -> dict[str, Any]:
    """One seed: draw data, w_0, kick; run the main, replica and response columns in lockstep."""
    d = options.dimension
    n = sample_count(problem, d)
    ds, loss, algorithm = problem.dataset, problem.loss, problem.algorithm
    dt, n_steps = problem.dt, problem.steps
    decay = 1.0 - dt * problem.ridge
    noise_scale = math.sqrt(2.0 * algorithm.temperature * dt)
    inv_b = 1.0 / algorithm.gradient_divisor
    loss_args = (loss.code, ds.readout_code, loss.margin, loss.sharpness, ds.theta)
    data_seed, init_seed, dynamics_seed, replica_seed, kick_seed = seed.spawn(5)

    # Data. X is stored already divided by sqrt(d) so that h = X @ w.
    data_rng = np.random.default_rng(data_seed)
    v = data_rng.standard_normal(d)
    v *= math.sqrt(d) / np.linalg.norm(v)
    c, y = ds.draw_labels(data_rng, n)
    X = data_rng.standard_normal((n, d))
    X *= math.sqrt(ds.delta)
    for rows_ in range(0, n, 1024):  # in blocks: no second n x d temporary
        X[rows_:rows_ + 1024] += np.outer(c[rows_:rows_ + 1024], v / math.sqrt(d))
    X /= math.sqrt(d)
    w0 = math.sqrt(problem.init_variance) * np.random.default_rng(init_seed).standard_normal(d)
    kick = np.random.default_rng(kick_seed).standard_normal(d)
    kick *= math.sqrt(d) / np.linalg.norm(kick)  # |kick|^2 = d exactly, so R[j+1, j] = 1

    # Columns of W: main run, [replica b], pulse runs (R), constant-field runs (chi).
    c_steps = time_steps(problem, "correlation_times", options.correlation_times)
    r_steps = time_steps(problem, "response_times", options.response_times)
    x_steps = time_steps(problem, "chi_times", options.chi_times)
    gap_steps = time_steps(problem, "gap_times", options.gap_times)
    replica = options.replicas == 2
    first_response = 2 if replica else 1
    # Response columns sorted by the update at which their field starts, so that the
    # tangent runs already under way are always a contiguous block (a view, no copy).
    starts = np.concatenate([r_steps, x_steps])
    constant = np.concatenate([np.zeros(len(r_steps), bool), np.ones(len(x_steps), bool)])
    order = np.argsort(starts, kind="stable")
    starts, constant = starts[order], constant[order]
    is_pulse = ~constant
    slot = np.empty(len(order), np.int64)  # slot[c]: index of column c in R (pulse) or chi (constant)
    slot[is_pulse] = order[is_pulse]
    slot[constant] = order[constant] - len(r_steps)
    ncol = first_response + len(starts)
    tangent = options.response_field == 0.0
    eps = 1.0 if tangent else options.response_field
    W = np.zeros((d, ncol))
    W[:, 0] = w0
    if replica:
        W[:, 1] = w0
    if not tangent:
        W[:, first_response:] = w0[:, None]  # twins start as copies of the main run
    responses = W[:, first_response:]
    rng_a = np.random.default_rng(dynamics_seed)
    rng_b = np.random.default_rng(replica_seed)
    s_a = algorithm.initial_selection(rng_a, n)
    s_b = algorithm.initial_selection(rng_b, n) if replica else None

    rows = n_steps + 1
    out = {name: np.empty(rows) for name in ("m", "self_overlap", "train_loss", "train_error")}
    out["C"] = np.full((rows, len(c_steps)), np.nan)
    out["R"] = np.zeros((rows, len(r_steps)))
    out["chi"] = np.zeros((rows, len(x_steps)))
    out["distance"] = np.zeros(rows) if replica else None
    out["gaps"] = {}
    references = np.zeros((d, len(c_steps)))
    F = np.empty((n, ncol))

    for k in range(rows):
        w = W[:, 0]
        # A tangent run is zero up to update start + 1: leave it out of the products until then.
        n_active = first_response + int(np.searchsorted(starts, k, side="left")) if tangent else ncol
        H = X @ W[:, :n_active]
        value, d1, d2, gap = loss_terms_array(*loss_args, y, np.ascontiguousarray(H[:, 0]))
        # Observables of step k (before the update k -> k+1).
        out["m"][k] = w @ v / d
        out["self_overlap"][k] = w @ w / d
        out["train_loss"][k] = value.mean()
        out["train_error"][k] = np.mean(gap <= 0.0)
        references[:, c_steps == k] = w[:, None]
        recorded = c_steps <= k
        out["C"][k, recorded] = (w @ references[:, recorded]) / d
        if tangent:
            projections = kick @ responses / d
        else:
            projections = kick @ (responses - w[:, None]) / (eps * d)
        out["R"][k, slot[is_pulse]] = projections[is_pulse] / dt
        out["chi"][k, slot[constant]] = projections[constant]
        if replica:
            out["distance"][k] = np.sum((w - W[:, 1]) ** 2) / d
        if k in gap_steps:
            out["gaps"][float(k * dt)] = gap.copy()
        if progress is not None:
            progress(k + 1, rows)
        if k == n_steps:
            break

        # Forces F[mu, col] = s_mu l'(h_mu)/B (tangent runs: the linearisation s l'' dh/B).
        Fa = F[:, :n_active]
        Fa[:, 0] = s_a * d1 * inv_b
        if replica:
            d1_b = loss_terms_array(*loss_args, y, np.ascontiguousarray(H[:, 1]))[1]
            Fa[:, 1] = s_b * d1_b * inv_b
        if tangent:
            np.multiply((s_a * d2 * inv_b)[:, None], H[:, first_response:], out=Fa[:, first_response:])
        else:
            for col in range(first_response, ncol):
                Fa[:, col] = s_a * loss_terms_array(*loss_args, y, np.ascontiguousarray(H[:, col]))[1] * inv_b
        active = W[:, :n_active]
        active *= decay
        active -= dt * (X.T @ Fa)
        if noise_scale > 0:
            xi = noise_scale * rng_a.standard_normal(d)
            W[:, 0] += xi
            if not tangent:
                responses += xi[:, None]  # twins share the main run's noise
            if replica:
                W[:, 1] += noise_scale * rng_b.standard_normal(d)
        # Fields: a pulse at update j for R, a constant field from update j on for chi.
        on = np.flatnonzero((starts == k) | (constant & (starts <= k)))
        if on.size:
            responses[:, on] += (dt * eps) * kick[:, None]
        _check_finite(k + 1, W[:, :first_response])
        s_a = algorithm.next_selection(rng_a, s_a, dt)
        if replica:
            s_b = algorithm.next_selection(rng_b, s_b, dt)

    out["test_error"] = ds.test_error(out["m"], out["self_overlap"])
    out["samples"] = n
    return out


def _check_finite(k: int, W: np.ndarray) -> None:
    overlap = np.einsum("ij,ij->j", W, W) / W.shape[0]
    if not np.all(np.isfinite(overlap)):
        raise DivergenceError(k, "the simulated weights are not finite: the dynamics diverged (try a smaller --dt)")
    if np.any(overlap > DIVERGENCE_BOUND):
        raise DivergenceError(k, f"|w|^2/d = {overlap.max():.3g} exceeds {DIVERGENCE_BOUND:g}: the dynamics "
                                 "diverged (try a smaller --dt)")


def _combine(problem: Problem, options: SimulationOptions, runs: list[dict[str, Any]],
             wall_time: float) -> SimulationResult:
    arrays: dict[str, Any] = {}
    stderr: dict[str, np.ndarray] = {}
    for name in SIM_OBSERVABLES:
        if runs[0][name] is None:
            arrays[name] = None
            continue
        arrays[name], stderr[name] = mean_and_stderr([run[name] for run in runs])
    gaps = {t: np.concatenate([run["gaps"][t] for run in runs]) for t in runs[0]["gaps"]}
    diagnostics = {"wall_time": wall_time, "samples": runs[0]["samples"]}
    return SimulationResult(
        problem=problem, options=options, time=problem.time,
        C_times=np.asarray(options.correlation_times, float), R_times=np.asarray(options.response_times, float),
        chi_times=np.asarray(options.chi_times, float), gaps=gaps, stderr=stderr, diagnostics=diagnostics,
        **arrays,
    )


# ----------------------------------------------------------------------------- storage
#
# Root datasets share the names of `dmft solve` for the shared quantities (time, m,
# train_loss, train_error, test_error, C with <name>_stderr beside each), plus
# self_overlap, C_times, R, R_times, chi, chi_times, [distance], and a group `gaps`
# with one dataset per time (attribute `time`). Root attributes: the problem
# parameters under their option names, the simulation options, kind, provenance.

_ARRAYS = ("m", "self_overlap", "C", "R", "chi", "train_loss", "train_error", "test_error", "distance")


def write_simulation(group: h5py.Group, result: SimulationResult) -> None:
    """Write ``result`` into an open HDF5 group."""
    group.create_dataset("time", data=result.time)
    for name in _ARRAYS:
        data = getattr(result, name)
        if data is None:
            continue
        group.create_dataset(name, data=data)
        if name in result.stderr:
            group.create_dataset(f"{name}_stderr", data=result.stderr[name])
    for name in ("C_times", "R_times", "chi_times"):
        group.create_dataset(name, data=getattr(result, name))
    gaps = group.create_group("gaps")
    for t, values in sorted(result.gaps.items()):
        k = int(round(t / result.problem.dt))
        dataset = gaps.create_dataset(f"step_{k}", data=values, compression="gzip", compression_opts=4)
        dataset.attrs.update(result.gap_summary(t).attributes())
    for key, value in result.problem.flat().items():
        group.attrs[key] = value
    for key, value in result.options.flat().items():
        group.attrs[key] = json.dumps(value) if key in TIME_OPTIONS else value
    for key, value in result.diagnostics.items():
        group.attrs[key] = value
    group.attrs["kind"] = KIND_SIMULATE
    for key, value in provenance().items():
        group.attrs[key] = value
    group.attrs["format_version"] = SIMULATION_FORMAT_VERSION


def save_simulation(result: SimulationResult, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Write ``result`` to ``path`` atomically (refuses to replace a file unless ``overwrite``)."""
    with atomic_h5(path, overwrite=overwrite) as handle:
        write_simulation(handle, result)


def read_simulation(group: h5py.Group) -> SimulationResult:
    """Rebuild a SimulationResult from a group written by ``write_simulation``."""
    attrs = {key: attribute_value(value) for key, value in group.attrs.items()}
    if attrs.get("kind") != KIND_SIMULATE:
        raise FileFormatError(f"{group.file.filename}: not a `dmft simulate` result (kind = {attrs.get('kind')!r})")
    format_version(group.attrs, group.file.filename, SIMULATION_FORMAT_VERSION, "simulation format")
    problem = Problem.from_flat(**{key: attrs[key] for key in PROBLEM_KEYS if key in attrs})
    flat = {key: attrs[key] for key in SIMULATION_KEYS if key in attrs}
    for key in TIME_OPTIONS:
        if key in flat:
            flat[key] = json.loads(flat[key])
    options = SimulationOptions.from_flat(**flat)
    arrays = {name: (group[name][()] if name in group else None) for name in _ARRAYS}
    stderr = {name: group[f"{name}_stderr"][()] for name in _ARRAYS if f"{name}_stderr" in group}
    gaps = {float(dataset.attrs["time"]): dataset[()] for dataset in group["gaps"].values()}
    diagnostics = {key: attrs[key] for key in ("wall_time", "samples") if key in attrs}
    return SimulationResult(
        problem=problem, options=options, time=group["time"][()],
        C_times=group["C_times"][()], R_times=group["R_times"][()], chi_times=group["chi_times"][()],
        gaps=gaps, stderr=stderr, diagnostics=diagnostics, **arrays,
    )


def load_simulation(path: str | os.PathLike) -> SimulationResult:
    """Read a ``dmft simulate`` file."""
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise FileFormatError(f"{path}: not a readable HDF5 file ({error})") from None
    with handle:
        try:
            return read_simulation(handle)
        except KeyError as error:
            version = format_version(handle.attrs, str(path), SIMULATION_FORMAT_VERSION, "simulation format")
            older = older_layout(version, SIMULATION_FORMAT_VERSION, "simulation format")
            raise FileFormatError(f"{path}: incomplete simulation file{older}, missing {error}") from None
