"""DMFT against finite-d simulation: same problem, curve by curve, in units of the error.

For every observable both results carry, the z-score at each time is

    z = |dmft - sim| / sqrt(se_dmft^2 + se_sim^2 + allowance^2)

with se the Monte Carlo standard errors of the two files and ``allowance`` an optional
absolute systematic tolerance per observable (finite-d corrections are O(1/d); the
command line uses none). ``Comparison.passed(max_z)`` is True when every z is below ``max_z``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np

from .errors import DmftError
from .gaps import compare_gaps, groups_of
from .io import load, load_simulation
from .problem import Problem
from .result import Result, SimulationResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Two numbers that agree to this relative precision are the same (HDF5 round trips are exact).
_SAME = 1e-12
# Floor of the combined error: quantities fixed by construction (R[j+1, j] = 1, m_0 = 0 in
# the DMFT) have zero error bars on both sides; round-off must not make them fail.
_FLOOR = 1e-9


class ProblemMismatch(DmftError):
    """Two files describe different problems; ``parameter`` names the first difference."""

    def __init__(self, parameter: str, message: str):
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


@dataclass(frozen=True)
class ObservableComparison:
    """One observable: the largest |difference| and z-score over the compared points."""

    name: str
    points: int
    max_difference: float
    max_z: float
    time: float  # t where z is largest
    reference_time: float | None = None  # t_j for two-time quantities

    def where(self) -> str:
        if self.reference_time is None:
            return f"t = {self.time:g}"
        return f"t = {self.time:g}, t' = {self.reference_time:g}"


@dataclass(frozen=True)
class Comparison:
    """All observables of one DMFT/simulation pair."""

    rows: tuple[ObservableComparison, ...]
    notes: tuple[str, ...] = ()

    @property
    def max_z(self) -> float:
        return max((row.max_z for row in self.rows), default=0.0)

    def passed(self, max_z: float = 4.0) -> bool:
        """True when every z-score is below ``max_z``."""
        return all(row.max_z < max_z for row in self.rows)

    @property
    def points(self) -> int:
        """Number of compared (time, reference time) points over all observables."""
        return sum(row.points for row in self.rows)

    def row(self, name: str) -> ObservableComparison:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def table(self, max_z: float | None = None) -> str:
        """A plain-text table, one line per observable."""
        lines = [f"{'observable':<14}{'points':>7}{'max |diff|':>13}{'max z':>9}  where"]
        for row in self.rows:
            flag = "" if max_z is None or row.max_z < max_z else "  <-- exceeds max z"
            lines.append(f"{row.name:<14}{row.points:>7}{row.max_difference:>13.3g}{row.max_z:>9.2f}  "
                         f"{row.where()}{flag}")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


def family_threshold(points: int, seeds: int, false_alarm: float = 0.01) -> float:
    """A max-z threshold that a correct solver exceeds with probability <= ``false_alarm``.

    Each z is at worst Student-t with seeds - 1 degrees of freedom (error bars from
    ``seeds`` runs; the DMFT's usually have more), and the maximum is taken over
    ``points`` comparisons (Bonferroni: conservative, neighbouring times are strongly
    correlated). With ~1000 points and 16 seeds it is about 6.5, not 4.
    """
    from scipy import stats

    if seeds < 2:
        return math.inf
    return float(stats.t.isf(false_alarm / (2 * max(points, 1)), seeds - 1))


def check_same_problem(first: Problem, second: Problem, labels: tuple[str, str] = ("DMFT", "simulation")) -> None:
    """Raise ``ProblemMismatch`` naming the first problem parameter that differs."""
    a, b = first.flat(), second.flat()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, float) or isinstance(y, float):
            same = math.isclose(float(x), float(y), rel_tol=_SAME, abs_tol=0.0)
        else:
            same = x == y
        if not same:
            raise ProblemMismatch(key, f"the files describe different problems: {key} = {x!r} in the {labels[0]} "
                                       f"file but {y!r} in the {labels[1]} file")


def _z_scores(theory: np.ndarray, theory_se: np.ndarray | None, sim: np.ndarray, sim_se: np.ndarray | None,
              allowance: float) -> tuple[np.ndarray, np.ndarray]:
    theory_se = np.zeros_like(theory) if theory_se is None else np.nan_to_num(theory_se, nan=0.0)
    sim_se = np.zeros_like(sim) if sim_se is None else np.nan_to_num(sim_se, nan=0.0)
    difference = np.abs(theory - sim)
    scale = np.sqrt(theory_se**2 + sim_se**2 + allowance**2 + _FLOOR**2)
    return difference, difference / scale


def _allowance(allowance: float | Mapping[str, float], name: str) -> float:
    if isinstance(allowance, Mapping):
        return float(allowance.get(name, 0.0))
    return float(allowance)


def curves(theory: Result, simulation: SimulationResult) -> dict[str, dict[str, np.ndarray]]:
    """The matched curves: name -> {dmft, dmft_se, sim, sim_se, time, reference_time}.

    One-time observables are arrays over k; two-time ones (C, R, chi) are arrays
    (N+1, references) restricted to the recorded reference times, NaN where undefined.
    """
    n = min(theory.problem.steps, simulation.problem.steps) + 1
    time = theory.time[:n]
    out: dict[str, dict[str, np.ndarray]] = {}

    def add(name, dmft, dmft_se, sim, sim_se, reference=None):
        out[name] = dict(dmft=dmft, dmft_se=dmft_se, sim=sim, sim_se=sim_se, time=time, reference_time=reference)

    for name in ("m", "train_loss", "train_error", "test_error"):
        add(name, getattr(theory, name)[:n], _cut(theory.stderr.get(name), n),
            getattr(simulation, name)[:n], _cut(simulation.stderr.get(name), n))
    c_se = theory.stderr.get("C")
    add("self_overlap", np.diagonal(theory.C)[:n], None if c_se is None else np.diagonal(c_se)[:n],
        simulation.self_overlap[:n], _cut(simulation.stderr.get("self_overlap"), n))
    steps = np.arange(n)

    def two_time(name, sim_values, sim_se, references, dmft_values, dmft_se):
        keep = references < n
        references = references[keep]
        sim_values = sim_values[:n, keep]
        sim_se = None if sim_se is None else sim_se[:n, keep]
        dmft = np.stack([dmft_values(j) for j in references], axis=1) if len(references) else np.zeros((n, 0))
        errors = [dmft_se(j) for j in references]
        dmft_errors = np.stack(errors, axis=1) if errors and all(e is not None for e in errors) else None
        add(name, dmft, dmft_errors, sim_values, sim_se, references * theory.problem.dt)

    R_se = theory.stderr.get("R")
    dt = theory.problem.dt
    two_time("C", simulation.C, simulation.stderr.get("C"), simulation.C_steps,
             lambda j: np.where(steps >= j, theory.C[:n, j], np.nan),
             lambda j: None if c_se is None else c_se[:n, j])
    two_time("R", simulation.R, simulation.stderr.get("R"), simulation.R_steps,
             lambda j: np.where(steps > j, theory.R[:n, j], 0.0),
             lambda j: None if R_se is None else np.where(steps > j, R_se[:n, j], 0.0))
    # chi[k, j] = dt sum_{i=j}^{k-1} R[k, i] from the DMFT R. Its error bar is bounded by
    # dt sum se(R[k, i]) (errors fully correlated): conservative, hence honest.
    lower = np.tril(np.ones((n, n)), -1)
    two_time("chi", simulation.chi, simulation.stderr.get("chi"), simulation.chi_steps,
             lambda j: dt * (theory.R[:n, j:n] * lower[:, j:n]).sum(axis=1),
             lambda j: None if R_se is None else dt * (R_se[:n, j:n] * lower[:, j:n]).sum(axis=1))
    theory_distance = getattr(theory, "distance", None)
    if theory_distance is not None and simulation.distance is not None:
        add("distance", np.asarray(theory_distance)[:n], _cut(theory.stderr.get("distance"), n),
            simulation.distance[:n], _cut(simulation.stderr.get("distance"), n))
    return out


def _cut(array: np.ndarray | None, n: int) -> np.ndarray | None:
    return None if array is None else array[:n]


def compare(theory: Result, simulation: SimulationResult,
            allowance: float | Mapping[str, float] = 0.0) -> Comparison:
    """Compare a DMFT result with a simulation of the same problem (``ProblemMismatch`` if not).

    ``allowance``: absolute systematic tolerance added in quadrature to the errors, one
    number or a mapping observable -> number (for finite-d corrections, O(1/d)).
    """
    check_same_problem(theory.problem, simulation.problem)
    rows, notes = [], []
    for name, curve in curves(theory, simulation).items():
        if curve["sim_se"] is None or not np.any(np.isfinite(curve["sim_se"])):
            notes.append(f"{name}: the simulation has no error bars (one seed?)")
        if curve["dmft_se"] is None or not np.any(np.isfinite(curve["dmft_se"])):
            notes.append(f"{name}: the DMFT solution has no error bars (one subpopulation?)")
        difference, z = _z_scores(curve["dmft"], curve["dmft_se"], curve["sim"], curve["sim_se"],
                                  _allowance(allowance, name))
        valid = np.isfinite(difference) & np.isfinite(z)
        if not np.any(valid):
            continue
        z_masked = np.where(valid, z, -np.inf)
        index = np.unravel_index(np.argmax(z_masked), z.shape)
        reference = None
        if curve["reference_time"] is not None:
            reference = float(curve["reference_time"][index[1]])
        rows.append(ObservableComparison(
            name=name, points=int(valid.sum()), max_difference=float(np.max(difference[valid])),
            max_z=float(z[index]), time=float(curve["time"][index[0]]), reference_time=reference,
        ))
    gap_rows, gap_notes = _compare_gap_distributions(theory, simulation)
    return Comparison(rows=tuple(rows + gap_rows), notes=tuple(notes + gap_notes))


def matching_gap_times(theory: Result, simulation: SimulationResult) -> list[tuple[int, float]]:
    """(DMFT step, simulation time) pairs at which both files keep the gap distribution."""
    dt = theory.problem.dt
    return [(step, t) for step in sorted(theory.gaps) for t in sorted(simulation.gaps)
            if abs(t - step * dt) <= 1e-9 * max(1.0, abs(t))]


def _compare_gap_distributions(theory: Result, simulation: SimulationResult
                               ) -> tuple[list[ObservableComparison], list[str]]:
    """One row per common gap time: the studentised CDF distance of ``gaps.compare_gaps``."""
    rows, notes = [], []
    for step, t in matching_gap_times(theory, simulation):
        dmft_groups, sim_groups = groups_of(theory, step), groups_of(simulation, t)
        if min(len(dmft_groups), len(sim_groups)) < 2:
            notes.append(f"gaps at t = {t:g}: one subpopulation or one seed, no error bar to compare with")
            continue
        result = compare_gaps(dmft_groups, sim_groups, t)
        rows.append(ObservableComparison(name=f"gaps(t={t:g})", points=len(result.points),
                                         max_difference=result.ks_distance, max_z=result.max_z, time=t))
    return rows, notes


def compare_files(dmft_path: str | os.PathLike, simulation_path: str | os.PathLike,
                  allowance: float | Mapping[str, float] = 0.0) -> tuple[Comparison, Result, SimulationResult]:
    """Load a ``dmft solve`` file and a ``dmft simulate`` file and compare them."""
    theory = load(dmft_path)
    simulation = load_simulation(simulation_path)
    return compare(theory, simulation, allowance), theory, simulation


def plot_comparison(theory: Result, simulation: SimulationResult, path: str | os.PathLike) -> "Figure":
    """PNG overlaying DMFT curves (line with a +-2 se band) and simulation means (+-2 se bars)."""
    # The object-oriented Agg canvas changes no global matplotlib state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = curves(theory, simulation)
    labels = {"m": "m = w.v/d", "self_overlap": "C(t,t) = |w|^2/d", "train_loss": "training loss",
              "train_error": "training error", "test_error": "test error", "C": "C(t,t')",
              "R": "R(t,t')", "chi": "chi(t,t')", "distance": "replica distance D"}
    names = [name for name in labels if name in data and np.size(data[name]["sim"])]
    gap_times = matching_gap_times(theory, simulation)
    columns = 3
    rows = math.ceil((len(names) + (1 if gap_times else 0)) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    for index, name in enumerate(names):
        axes = figure.add_subplot(rows, columns, index + 1)
        curve = data[name]
        dmft, sim = np.atleast_2d(curve["dmft"].T).T, np.atleast_2d(curve["sim"].T).T
        dmft_se = None if curve["dmft_se"] is None else np.atleast_2d(np.nan_to_num(curve["dmft_se"]).T).T
        sim_se = None if curve["sim_se"] is None else np.atleast_2d(np.nan_to_num(curve["sim_se"]).T).T
        for column in range(dmft.shape[1]):
            color = f"C{column}"
            time = curve["time"]
            suffix = ""
            if curve["reference_time"] is not None:  # two-time curves: only t >= t' (t > t' for R)
                reference = curve["reference_time"][column]
                suffix = f", t'={reference:g}"
                shown = time > reference + 1e-9 if name == "R" else time >= reference - 1e-9
                time = np.where(shown, time, np.nan)
            axes.plot(time, dmft[:, column], color=color, label=f"DMFT{suffix}")
            if dmft_se is not None:
                axes.fill_between(time, dmft[:, column] - 2 * dmft_se[:, column],
                                  dmft[:, column] + 2 * dmft_se[:, column], color=color, alpha=0.25, lw=0)
            stride = max(1, len(time) // 25)  # keep the markers readable
            axes.errorbar(time[::stride], sim[::stride, column],
                          yerr=None if sim_se is None else 2 * sim_se[::stride, column],
                          fmt="o", ms=3, color=color, mfc="none", label=f"d = {simulation.options.dimension}{suffix}")
        axes.set_xlabel("time t")
        axes.set_ylabel(labels[name])
        if index == 0 or curve["reference_time"] is not None:
            axes.legend(fontsize=6)
    if gap_times:  # CDFs of the gaps: DMFT lines, simulation markers
        axes = figure.add_subplot(rows, columns, len(names) + 1)
        for index, (step, t) in enumerate(gap_times):
            dmft_gaps, sim_gaps = np.sort(theory.gaps[step]), np.sort(simulation.gaps[t])
            axes.plot(dmft_gaps, np.arange(1, dmft_gaps.size + 1) / dmft_gaps.size, color=f"C{index}",
                      label=f"DMFT t={t:g}")
            stride = max(1, sim_gaps.size // 30)
            axes.plot(sim_gaps[::stride], (np.arange(1, sim_gaps.size + 1) / sim_gaps.size)[::stride], "o", ms=3,
                      mfc="none", color=f"C{index}", label=f"d = {simulation.options.dimension} t={t:g}")
        axes.set_xlabel("gap y phi(h)")
        axes.set_ylabel("fraction of training samples below")
        axes.legend(fontsize=6)
    p = theory.problem
    figure.suptitle(f"{p.dataset.name}, {p.loss.name}, {p.algorithm.name}: DMFT (lines, 2 se bands) vs "
                    f"simulation ({simulation.options.seeds} seeds, 2 se bars)", fontsize=9)
    figure.savefig(path, dpi=110)
    return figure
