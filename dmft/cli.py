"""Command line: a thin click layer over the Python API.

Every command turns a ``DmftError`` (bad input, divergence, unreadable file) into one
line on stderr and exit status 2, and leaves no partial output file behind.
"""

from __future__ import annotations

import atexit
import functools
import gc
import importlib
import logging
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, Callable

import click

from .errors import DmftError, ParameterError
from .options import DEFAULT_PRECISION, PRECISIONS

# The commands import what they run (numpy, numba, scipy, h5py) in their bodies: `dmft --help`
# and a mistyped option do not wait for those imports.

# Problem options shared by `solve`, `simulate` and grids. Defaults live in the dataclasses:
# here every default is None, so a value given on the command line can be told apart
# from one to be taken from --config or from the dataclass default.
PROBLEM_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("--dataset", dict(type=click.Choice(["gmm2", "gmm3", "random-labels", "teacher-student"]),
                       help="Data model [gmm2].")),
    ("--alpha", dict(type=float, help="Samples per dimension n/d [2]."), ),
    ("--delta", dict(type=float, help="Noise variance Delta of the clusters [0.5].")),
    ("--rho", dict(type=float, help="Class probability rho [0.5].")),
    ("--theta", dict(type=float, help="Threshold of the gmm3 readout h^2 - theta [1].")),
    ("--label-noise", dict(type=float, help="Teacher-student: probability of flipping each label [0].")),
    ("--loss", dict(type=click.Choice(["logistic", "square", "square-hinge", "smooth-hinge", "hinge"]),
                    help="Loss [logistic].")),
    ("--margin", dict(type=float, help="Margin kappa of the hinge losses [1].")),
    ("--sharpness", dict(type=float, help="Sharpness beta of the smooth hinge [10].")),
    ("--ridge", dict(type=float, help="Ridge lambda [0.1].")),
    ("--algorithm", dict(type=click.Choice(["gd", "sgd", "persistent-sgd"]), help="Algorithm [sgd].")),
    ("--batch-fraction", dict(type=float, help="Batch fraction b [0.3].")),
    ("--persistence-time", dict(type=float, help="Persistence time tau of persistent SGD [2].")),
    ("--temperature", dict(type=float, help="Langevin temperature T [0].")),
    ("--momentum", dict(type=float, help="Heavy-ball momentum beta, 0 <= beta < 1 [0].")),
    ("--batch-average/--batch-sum", dict(default=None, help="Divide the minibatch gradient by b [--batch-sum].")),
    ("--dt", dict(type=float, help="Step size eta [0.1].")),
    ("--steps", dict(type=int, help="Number of steps N [100].")),
    ("--init-variance", dict(type=float, help="Initial variance sigma0^2 [1].")),
]


def add_options(options: list[tuple[str, dict[str, Any]]]) -> Callable:
    def decorate(command: Callable) -> Callable:
        for name, settings in reversed(options):
            command = click.option(name, **settings)(command)
        return command

    return decorate


def load_config(path: str | None) -> dict[str, Any]:
    """Flat keys of a TOML file; [problem]/[solver] tables are merged in."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise DmftError(f"config: no such file {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise DmftError(f"config: {path} is not valid TOML ({error})") from None
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("problem", "solver") and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def split_options(given: dict[str, Any], config: dict[str, Any], solver_keys: tuple[str, ...]
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Merge config and command line (command line wins) into (problem, solver) keyword dicts."""
    from .problem import PROBLEM_KEYS

    merged = {**config, **{key: value for key, value in given.items() if value is not None}}
    unknown = sorted(set(merged) - set(PROBLEM_KEYS) - set(solver_keys))
    if unknown:
        raise ParameterError(unknown[0], "unknown option")
    problem_kwargs = {key: merged[key] for key in PROBLEM_KEYS if key in merged}
    solver_kwargs = {key: merged[key] for key in solver_keys if key in merged}
    return problem_kwargs, solver_kwargs


def parse_steps(parameter: str, text: str) -> tuple[int, ...]:
    """'10,50,100' -> (10, 50, 100), naming the option when it is not a list of integers."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ParameterError(parameter, f"must be comma-separated integers, got {text!r}") from None


def one_line_errors(command: Callable) -> Callable:
    """Report DmftError as one line and exit 2 (click's own usage errors also exit 2)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DmftError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("Interrupted: nothing was written.", err=True)
            sys.exit(130)

    return wrapper


def imports_first(*modules: str) -> Callable:
    """Import ``modules`` before the command runs, with Python's cyclic garbage collector
    off, and keep what is then alive out of its reach while the command runs
    (``gc.freeze``), and again at exit.

    The collector otherwise walks all of numpy's, numba's, scipy's and h5py's objects
    (some 170,000) at every full collection: many times while they import, and again as
    the interpreter ends, for nothing, since they live as long as the process
    (docs/performance.md, "December 2026: the process around the solve"). The command's
    own imports of these modules then cost nothing. A process that goes on after the
    command (a test's) collects as before; one whose collector is off, or has objects
    frozen, manages it itself, and the command leaves it alone.
    """
    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not gc.isenabled() or gc.get_freeze_count():
                return command(*args, **kwargs)
            gc.disable()
            try:
                for name in modules:
                    importlib.import_module(name)
            finally:
                gc.freeze()
                gc.enable()
            atexit.unregister(gc.freeze)  # once, however many commands ran
            atexit.register(gc.freeze)
            try:
                return command(*args, **kwargs)
            finally:
                gc.unfreeze()

        return wrapper

    return decorate


class StepProgress:
    """A click progress bar fed by ``progress(done, total)`` callbacks; silent when not a terminal."""

    def __init__(self, label: str, enabled: bool = True):
        self.label, self.enabled, self.bar, self.done = label, enabled, None, 0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr, show_eta=True)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@click.group()
@click.version_option(package_name="dmft")
def main() -> None:
    """DMFT of (stochastic) gradient descent on high-dimensional classification."""


@main.command()
@add_options(PROBLEM_OPTIONS)
@click.option("--samples", type=int, help="Monte Carlo population N_s [10000].")
@click.option("--subpopulations", type=int, help="Independent subpopulations, for error bars [4].")
@click.option("--seed", type=int, help="Random seed [0].")
@click.option("--method", type=click.Choice(["march", "iterate"]), help="Causal march or fixed-point loop [march].")
@click.option("--response", type=click.Choice(["probe", "exact"]), help="Response estimator [probe].")
@click.option("--probes", type=int, help="Random probes per sample [1].")
@click.option("--damping", type=float, help="iterate: kernels <- damping old + (1 - damping) new [0.3].")
@click.option("--tolerance", type=float,
              help="iterate: stop when the kernel change is within this factor of Monte Carlo noise [1.2].")
@click.option("--max-iterations", type=int, help="iterate: at most this many iterations [100].")
@click.option("--replicas", type=int, help="2: two-replica DMFT with C_ab and the distance [1].")
@click.option("--keep-runs/--no-keep-runs", default=None,
              help="Keep each subpopulation's C, R, m, A for jackknife errors (e.g. of T_eff) [keep].")
@click.option("--gap-steps", type=str, help="Comma-separated steps at which to keep the gap distribution [final].")
@click.option("--precision", type=click.Choice(list(PRECISIONS)),
              help=f"Path storage: 16-bit block floating point, float32 or float64 [{DEFAULT_PRECISION}].")
@click.option("--memory-window", type=float,
              help="Approximation for long stationary runs: R and K vanish beyond this time lag [0: none].")
@click.option("--config", type=click.Path(dir_okay=False), help="TOML file with the same keys (underscores).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="HDF5 file to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@one_line_errors
@imports_first("dmft.io", "dmft.solvers", "dmft.warmup")
def solve(config: str | None, output: str, overwrite: bool, quiet: bool, **given: Any) -> None:
    """Solve the DMFT and write the solution to an HDF5 file."""
    from .io import save
    from .options import SOLVER_KEYS, SolverOptions
    from .problem import Problem
    from .solvers import solve as solve_problem
    from .warmup import CompileNotice, compile_for_run

    if Path(output).exists() and not overwrite:
        raise DmftError(f"{output} exists; pass --overwrite to replace it")
    if given.get("gap_steps") is not None:
        given["gap_steps"] = parse_steps("gap_steps", given["gap_steps"])
    problem_kwargs, solver_kwargs = split_options(given, load_config(config), SOLVER_KEYS)
    problem = Problem.from_flat(**problem_kwargs)
    options = SolverOptions.from_flat(**solver_kwargs)
    progress = StepProgress("solving", enabled=not quiet and sys.stderr.isatty())
    try:
        with CompileNotice(enabled=progress.enabled):
            compile_for_run(problem, options)  # on a first run, in two processes
            result = solve_problem(problem, options, progress=progress)
    finally:
        progress.close()
    save(result, output, overwrite=overwrite)
    click.echo(result.summary())
    click.echo(f"wrote {output}")


@main.command(name="compile")
@click.option("--all", "everything", is_flag=True,
              help="Every precision and response estimator, not only the defaults.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes compiling at once (numba compiles on one core each).")
@one_line_errors
@imports_first("dmft.warmup")
def compile_command(everything: bool, jobs: int) -> None:
    """Compile the numba kernels now (or check they load from the cache), so that no later run waits.

    numba compiles each kernel at its first use and caches it on disk; run this once after
    installing, in a container image, or on each Dask worker host. Without --all: the
    default precision with probe responses, one and two replicas, threaded and serial.
    """
    from .warmup import all_variants, compile_kernels, variants

    selected = all_variants() if everything else variants()
    click.echo(f"compiling {len(selected)} solver variants and the simulator (kernels already cached just load)")
    total = compile_kernels(selected, report=lambda what, seconds: click.echo(f"  {what:<36}{seconds:7.1f} s"),
                            jobs=jobs)
    click.echo(f"done in {total:.1f} s")


# ----------------------------------------------------------------------------- simulate, compare

def _simulation_config(path: str | None) -> dict[str, Any]:
    """``load_config`` plus a [simulation] table merged in."""
    config = load_config(path)
    table = config.pop("simulation", None)
    if isinstance(table, dict):
        config.update(table)
    elif table is not None:
        config["simulation"] = table  # refused below as an unknown option
    return config


@main.command()
@add_options(PROBLEM_OPTIONS)
@click.option("--dimension", "-d", type=int, help="Dimension d; n = round(alpha d) samples [1000].")
@click.option("--seeds", type=int, help="Independent runs (new data, init, noise each) [8].")
@click.option("--seed", type=int, help="Root random seed [0].")
@click.option("--correlation-times", help="Comma-separated times t' of C(t, t') [steps 0, N/4, N/2, 3N/4].")
@click.option("--response-times", help="Comma-separated times of the pulsed field for R(t, t') [correlation times].")
@click.option("--chi-times", help="Comma-separated switch-on times of the field for chi(t, t') [response times].")
@click.option("--gap-times", help="Comma-separated times at which to keep the gaps y phi(h) [final time].")
@click.option("--response-field", type=float,
              help="0: linearised response runs; eps > 0: twin runs with field eps [0].")
@click.option("--replicas", type=int, help="2: a second replica, records the distance [1].")
@click.option("--config", type=click.Path(dir_okay=False), help="TOML file with the same keys (underscores).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="HDF5 file to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@one_line_errors
@imports_first("dmft.io", "dmft.simulate")
def simulate(config: str | None, output: str, overwrite: bool, quiet: bool, **given: Any) -> None:
    """Simulate the algorithm at finite dimension d and write means and errors to an HDF5 file."""
    from .io import save
    from .problem import Problem
    from .simulate import SIMULATION_KEYS, SimulationOptions
    from .simulate import simulate as run_simulation

    if Path(output).exists() and not overwrite:
        raise DmftError(f"{output} exists; pass --overwrite to replace it")
    problem_kwargs, simulation_kwargs = split_options(given, _simulation_config(config), SIMULATION_KEYS)
    problem = Problem.from_flat(**problem_kwargs)
    options = SimulationOptions.from_flat(**simulation_kwargs)
    progress = StepProgress("simulating", enabled=not quiet and sys.stderr.isatty())
    try:
        result = run_simulation(problem, options, progress=progress)
    finally:
        progress.close()
    save(result, output, overwrite=overwrite)
    click.echo(result.summary())
    click.echo(f"wrote {output}")


@main.command()
@click.argument("dmft_file", type=click.Path(dir_okay=False))
@click.argument("simulation_file", type=click.Path(dir_okay=False))
@click.option("--plot", type=click.Path(dir_okay=False), help="Write a PNG overlaying the curves.")
@click.option("--max-z", type=float, default=4.0, show_default=True,
              help="Fail (exit 1) when a z-score reaches this.")
@one_line_errors
@imports_first("dmft.compare")
def compare(dmft_file: str, simulation_file: str, plot: str | None, max_z: float) -> None:
    """Compare a `dmft solve` file with a `dmft simulate` file of the same problem.

    Exit status 0 when every z-score is below --max-z, 1 otherwise, 2 on bad input
    (including files of different problems).
    """
    from .compare import compare_files, family_threshold, plot_comparison

    if not (max_z > 0):
        raise ParameterError("max_z", f"must be > 0, got {max_z}")
    result, theory, simulation = compare_files(dmft_file, simulation_file)
    click.echo(f"DMFT {dmft_file} vs simulation {simulation_file} (d = {simulation.options.dimension}, "
               f"{simulation.options.seeds} seeds)")
    click.echo(result.table(max_z))
    click.echo(f"{result.points} points compared; a max z of "
               f"{family_threshold(result.points, simulation.options.seeds):.1f} has a 1% chance of being "
               f"exceeded by noise alone (Student t, {simulation.options.seeds - 1} dof, Bonferroni)")
    if plot is not None:
        plot_comparison(theory, simulation, plot)
        click.echo(f"wrote {plot}")
    passed = result.passed(max_z)
    click.echo(f"{'agree' if passed else 'DISAGREE'}: max z = {result.max_z:.2f} "
               f"({'<' if passed else '>='} {max_z:g})")
    sys.exit(0 if passed else 1)


# ----------------------------------------------------------------------------- grid, plot


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True,
              help="HDF5 file to write; an existing file of the same grid is resumed.")
@click.option("--workers", "-j", type=int, help="Local worker processes [number of cores].")
@click.option("--scheduler", help="Address of a Dask scheduler (e.g. tcp://host:8786): compute the points there.")
@click.option("--overwrite", is_flag=True, help="Discard an existing output file and start again.")
@click.option("--retry-failed", is_flag=True, help="Recompute the points recorded as failed.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@one_line_errors
@imports_first("dmft.grid")
def grid(config: str, output: str, workers: int | None, scheduler: str | None, overwrite: bool,
         retry_failed: bool, quiet: bool) -> None:
    """Solve the DMFT on every point of the parameter grid in CONFIG (TOML).

    CONFIG has [problem] and [solver] tables (the options of `dmft solve`, underscores),
    a [grid] table mapping keys to lists of values (their Cartesian product), and an
    optional top-level seed. Points are written one by one: run the same command again
    after an interruption to compute only the missing ones.
    """
    from .grid import GridProgress, GridSpec, run_grid

    spec = GridSpec.from_toml(config)  # every point validated before any work
    progress = GridProgress(Path(output).name, quiet=quiet)
    try:
        report = run_grid(spec, output, workers=workers, scheduler=scheduler, progress=progress,
                          overwrite=overwrite, retry_failed=retry_failed)
    except KeyboardInterrupt:
        progress.close()
        click.echo(f"Interrupted: the points finished so far are in {output}; "
                   "run the same command again to compute the others.", err=True)
        sys.exit(130)
    finally:
        progress.close()
    parts = [f"{report.done} done", f"{report.failed} failed"]
    parts += [f"{report.missing} missing"] if report.missing else []
    click.echo(f"{output}: {report.total} points, {', '.join(parts)} "
               f"({report.computed} computed now, {report.reused} already there)")
    for index, coords, error in report.failures[:10]:
        click.echo(f"  point {index} ({', '.join(f'{k}={v}' for k, v in coords.items())}) failed: {error}")
    if len(report.failures) > 10:
        click.echo(f"  ... and {len(report.failures) - 10} more failures (see the summary table)")
    if report.t_eff_note:
        click.echo(f"note: T_eff stored as NaN: {report.t_eff_note}")
    if report.missing:
        reason = report.lost[0][1] if report.lost else "not computed"
        click.echo(f"Error: {report.missing} points were not computed ({reason}); "
                   "run the same command again to compute them.", err=True)
        sys.exit(1)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--output-dir", type=click.Path(file_okay=False), help="Directory for the PNGs [beside FILE].")
@click.option("--x", "x", help="Grid files: the grid axis on the horizontal axis.")
@click.option("--y", "y", help="Grid files: the final observable (train_loss, train_error, test_error, m, "
                               "self_overlap, T_eff, wall_time); with --z, the grid axis on the vertical axis.")
@click.option("--hue", help="Grid files: one curve per value of this grid axis.")
@click.option("--point", type=int, help="Grid files: the time-resolved figures of this point.")
@click.option("--z", "z", help="Grid files: a phase diagram of this observable over the axes --x and --y "
                               "(heat map with contour lines, and its standard error).")
@click.option("--time", "at_time", type=float, help="With --z: the observable at this time instead of the final one.")
@one_line_errors
@imports_first("dmft.plots")
def plot(file: str, output_dir: str | None, x: str | None, y: str | None, hue: str | None,
         point: int | None, z: str | None, at_time: float | None) -> None:
    """Write the standard figures of a `dmft solve`, `dmft simulate` or `dmft grid` FILE as PNG.

    With --z, a grid's phase diagram: `dmft plot grid.h5 --x alpha --y batch_fraction --z test_error`.
    """
    if z is not None or at_time is not None:
        if z is None:
            raise ParameterError("time", "applies to a phase diagram: give --z too")
        if hue is not None or point is not None:
            raise ParameterError("hue" if hue is not None else "point", "does not apply to a phase diagram (--z)")
        from .plots.phase import phase_file

        paths = phase_file(file, x, y, z, at_time, output_dir=output_dir)
    else:
        from .plots import plot_file

        paths = plot_file(file, output_dir=output_dir, x=x, y=y, hue=hue, point=point)
    for path in paths:
        click.echo(f"wrote {path}")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="File to write.")
@click.option("--format", "file_format", type=click.Choice(["netcdf", "csv"]),
              help="NetCDF: every array, over labelled dimensions, with the parameters as attributes; "
                   "CSV: one table [from the --output suffix: .csv for CSV, else NetCDF].")
@click.option("--time-series", is_flag=True,
              help="CSV of a grid: one row per point and time step (the per-step observables) "
                   "instead of one row per point.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@one_line_errors
@imports_first("dmft.labelled")
def export(file: str, output: str, file_format: str | None, time_series: bool, overwrite: bool) -> None:
    """Write a `dmft solve`, `dmft simulate` or `dmft grid` FILE as NetCDF or CSV, for pandas, R or plotting tools.

    The arrays are those of dmft.open_dataset: a grid over one dimension per grid axis
    (pending and failed points NaN, so a grid still running can be exported), a solve or
    simulate file over time and time2. CSV holds a grid's points (or, with --time-series,
    its per-step observables) or a solve/simulate file's one-time observables.
    """
    from .labelled import export as export_file

    if file_format is None:
        file_format = "csv" if output.lower().endswith(".csv") else "netcdf"
    export_file(file, output, file_format, time_series=time_series, overwrite=overwrite)
    click.echo(f"wrote {output}")


# ----------------------------------------------------------------------------- teff (fluctuation-dissipation)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--final-time", "final_times", type=float, multiple=True,
              help="Final time t of the FDT curve (repeat for several) [the last step].")
@click.option("--lag-window", type=float, nargs=2, metavar="SMIN SMAX",
              help="Time lags s = t - t' fitted [3 noise correlation times (>= 3 dt) .. t/4].")
@click.option("--average-over", type=float, default=0.0, show_default=True,
              help="Fit the curve averaged over the final times in [t - this, t] (simulations: over reference times).")
@click.option("--through-origin", is_flag=True, help="Fit Delta C = T_eff chi (equilibrium form) [with intercept].")
@click.option("--connected/--full-correlation", default=True, show_default=True,
              help="Delta C from C - m m' - sigma0^2 A A' (same in a stationary regime, far less Monte Carlo noise) "
                   "or from the full C.")
@click.option("--tolerance", type=float, default=0.02, show_default=True,
              help="Relative drift above which the window is not stationary (unless within 3 standard errors).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (T_eff, T_eff_stderr, window, stationarity, ...).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Draw the parametric FDT plot (PNG) here.")
@click.option("--write", is_flag=True, help="Store the estimate in FILE as a group `fdt`.")
@click.option("--overwrite", is_flag=True, help="With --write: replace an existing `fdt` group.")
@one_line_errors
@imports_first("dmft.fdt", "dmft.plots.fdt")
def teff(file: str, final_times: tuple[float, ...], lag_window: tuple[float, float] | None, average_over: float,
         through_origin: bool, connected: bool, tolerance: float, as_json: bool, plot_path: str | None, write: bool,
         overwrite: bool) -> None:
    """Effective temperature T_eff from the fluctuation-dissipation relation of a dmft FILE.

    T_eff is the inverse slope of the integrated response chi(t, t') against
    Delta C = C(t, t) - C(t, t') over a window of time lags, in a regime that must be
    stationary: a FILE whose window drifts is refused, saying why. Reads `dmft solve`
    and `dmft simulate` files. The error bar from one stored file is an upper bound
    (the correlations between entries are not stored); `dmft.workflows.teff_with_errors`
    gives a jackknife error over independent runs.
    """
    from . import fdt
    from .plots.fdt import plot_fdt_estimate

    if not (0 < tolerance < 1):
        raise ParameterError("tolerance", f"must lie in (0, 1), got {tolerance}")
    times: list[float | None] = list(final_times) or [None]
    estimates = [fdt.estimate_from_file(file, t, lag_window, through_origin=through_origin, average_over=average_over,
                                        connected=connected, tolerance=tolerance) for t in times]
    if plot_path is not None:
        plot_fdt_estimate(estimates, plot_path)
    if write:
        fdt.write_fdt(file, estimates, overwrite=overwrite)
    if as_json:
        click.echo(fdt.estimates_json(estimates))
        return
    for estimate in estimates:
        click.echo(estimate.describe())
    if plot_path is not None:
        click.echo(f"wrote {plot_path}")
    if write:
        click.echo(f"stored in {file} (group `fdt`)")


# ----------------------------------------------------------------------------- reproduce (the papers' claims)


class _EchoHandler(logging.Handler):
    """Log records as timestamped lines on the current stderr (click's, so that tests capture them)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {record.getMessage()}", err=True)


@main.command()
@click.argument("name", required=False)
@click.option("--output", "-o", type=click.Path(file_okay=False),
              help="Directory for the figures, tables and claims.json.")
@click.option("--quick", is_flag=True, help="A reduced size that runs in seconds (what the tests run).")
@click.option("--list", "list_names", is_flag=True, help="List the claims and figures that can be reproduced.")
@click.option("--quiet", "-q", is_flag=True, help="No line per solved or simulated point on stderr.")
@one_line_errors
@imports_first("dmft.reproduce")
def reproduce(name: str | None, output: str | None, quick: bool, list_names: bool, quiet: bool) -> None:
    """Reproduce one of the papers' claims (or one of its figures): DMFT against simulation, with a verdict.

    Writes NAME's figures (PNG), the numbers behind them (CSV) and claims.json into
    --output: every statistical test with its Monte Carlo errors and a verdict (holds,
    does not hold, inconclusive at this precision) and the reason. `all` reproduces every
    claim into its own subdirectory.
    """
    from . import reproduce as reproduction

    if list_names:
        click.echo(reproduction.listing())
        return
    if name is None:
        raise ParameterError("name", f"give a claim to reproduce, or --list; known: {', '.join(reproduction.names())}")
    if output is None:
        raise ParameterError("output", "give the directory to write into with --output")
    logger = reproduction.LOG
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    if not any(isinstance(handler, _EchoHandler) for handler in logger.handlers):
        logger.addHandler(_EchoHandler())
    documents = reproduction.run(name, output, quick=quick)
    for document in ([documents] if "verdict" in documents else list(documents.values())):
        click.echo(f"claim {document['claim']} ({document['name']}): {document['verdict']} "
                   f"[{document['wall_time_seconds']:g} s]: {document['reason']}")
    click.echo(f"wrote {output}")
