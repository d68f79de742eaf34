"""Labelled arrays (dmft.labelled): grids, solve and simulate files as xarray Datasets, the
xarray backend, NetCDF/CSV export, and the phase diagrams of `dmft plot --z`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

import dmft
from dmft.cli import main
from dmft.grid import GridSpec, load_point, load_summary, run_grid
from dmft.labelled import DmftBackendEntrypoint, at_time, export, open_dataset, tables
from dmft.plots.phase import phase_figure

from grid_helpers import write_config

SERIES = ("m", "train_loss", "train_error", "test_error")

# Axes given out of alphabetical order, values out of increasing order: both must be kept.
ORDERED = """
    batch_fraction = [0.3, 0.6]
    alpha = [2.0, 1.0, 4.0]
"""

# gd on the square loss diverges at dt = 1: two done points, two failed ones; dt varies, so do the times.
FAILING_BASE = """
    seed = 7
    [problem]
    steps = 10
    algorithm = "gd"
    loss = "square"
    alpha = 4.0
    [solver]
    samples = 400
    subpopulations = 2
"""
FAILING = """
    dt = [0.1, 1.0]
    ridge = [0.0, 0.1]
"""


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("grid")
    output = folder / "grid.h5"
    run_grid(GridSpec.from_toml(write_config(folder, ORDERED)), output, workers=1)
    return output


@pytest.fixture(scope="module")
def failing_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("failing")
    output = folder / "failing.h5"
    run_grid(GridSpec.from_toml(write_config(folder, FAILING, base=FAILING_BASE)), output, workers=1)
    return output


@pytest.fixture(scope="module")
def solve_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("solve") / "solve.h5"
    problem = dmft.Problem.from_flat(steps=10, dt=0.1)
    dmft.save(dmft.solve(problem, dmft.SolverOptions(samples=400, subpopulations=2, replicas=2)), path)
    return path


@pytest.fixture(scope="module")
def simulate_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("simulate") / "simulate.h5"
    problem = dmft.Problem.from_flat(steps=10, dt=0.1)
    options = dmft.SimulationOptions(dimension=40, seeds=2, replicas=2, correlation_times=(0.0, 0.3),
                                     response_times=(0.2,), chi_times=(0.2,))
    dmft.save(dmft.simulate(problem, options), path)
    return path


# ----------------------------------------------------------------------------- grids


def test_grid_has_one_dimension_per_axis_in_the_configured_order(grid_file: Path) -> None:
    ds = dmft.open_dataset(grid_file)
    assert ds["status"].dims == ("batch_fraction", "alpha")
    assert ds["test_error"].dims == ("batch_fraction", "alpha", "time")
    assert (ds.sizes["batch_fraction"], ds.sizes["alpha"]) == (2, 3)
    assert list(ds["alpha"].values) == [2.0, 1.0, 4.0] and list(ds["batch_fraction"].values) == [0.3, 0.6]
    np.testing.assert_array_equal(ds["time"].values, 0.1 * np.arange(11))
    assert list(ds["status"].values.ravel()) == ["done"] * 6
    # Fixed parameters and provenance as attributes.
    assert ds.attrs["kind"] == "dmft-grid" and ds.attrs["steps"] == 10 and ds.attrs["samples"] == 400
    assert ds.attrs["algorithm"] == "sgd" and ds.attrs["batch_average"] == 0
    assert ds.attrs["dmft_source_sha256"] and ds.attrs["grid_seed"] == 7


def test_grid_values_equal_load_point_at_every_point(grid_file: Path) -> None:
    ds = open_dataset(grid_file)
    summary = load_summary(grid_file)
    shape = (ds.sizes["batch_fraction"], ds.sizes["alpha"])
    for index in range(6):
        at = dict(zip(("batch_fraction", "alpha"), np.unravel_index(index, shape)))
        point = ds.isel(at)
        result = load_point(grid_file, index)
        assert int(point["point"]) == index
        flat = result.problem.flat()
        assert float(point["alpha"]) == flat["alpha"] and float(point["batch_fraction"]) == flat["batch_fraction"]
        np.testing.assert_array_equal(point["time"].values, result.time)
        for name in SERIES:
            np.testing.assert_array_equal(point[name].values, getattr(result, name), err_msg=name)
            np.testing.assert_array_equal(point[f"{name}_stderr"].values, result.stderr[name], err_msg=name)
            assert float(point[f"final_{name}"]) == getattr(result, name)[-1]
            assert float(point[f"final_{name}"]) == summary[name][index]
        np.testing.assert_array_equal(point["self_overlap"].values, np.diagonal(result.C))
        np.testing.assert_array_equal(point["self_overlap_stderr"].values, np.diagonal(result.stderr["C"]))
        assert float(point["final_self_overlap"]) == result.C[-1, -1]
        assert int(point["seed"]) == result.options.seed
        assert str(point["status"].values) == "done" and str(point["error"].values) == ""


def test_failed_points_are_nan_and_statuses_are_strings(failing_file: Path) -> None:
    ds = open_dataset(failing_file)
    assert ds["status"].dtype.kind == "U"
    assert ds["status"].values.tolist() == [["done", "done"], ["failed", "failed"]]
    assert all("DivergenceError" in text for text in ds["error"].sel(dt=1.0).values)
    failed = ds.sel(dt=1.0)
    for name in [*SERIES, "self_overlap", "T_eff", "final_test_error", "final_m_stderr"]:
        assert np.all(np.isnan(failed[name].values)), name
    assert np.all(np.isfinite(ds["final_test_error"].sel(dt=0.1).values))
    # dt is an axis: no shared time coordinate, each point's times in `t`.
    assert "time" not in ds.coords and ds["t"].dims == ("dt", "ridge", "time")
    np.testing.assert_allclose(ds["t"].sel(dt=1.0, ridge=0.0).values, np.arange(11.0))
    np.testing.assert_array_equal(ds["t"].sel(dt=0.1, ridge=0.0).values, load_point(failing_file, 0).time)
    # The value at a time: each point's nearest step.
    at = at_time(ds, 0.5)
    np.testing.assert_array_equal(at["m"].sel(dt=0.1, ridge=0.1).values, load_point(failing_file, 1).m[5])


def test_partial_grid_opens_with_pending_points_nan_while_it_is_written(tmp_path: Path) -> None:
    config = write_config(tmp_path, ORDERED)
    output = tmp_path / "partial.h5"
    seen: list[tuple[int, int]] = []

    def progress(event) -> None:  # called between two points, the file closed by the writer
        if event.index is None:
            return
        ds = open_dataset(output)
        seen.append((event.done, int((ds["status"] == "done").sum())))
        if event.computed == 2:
            raise KeyboardInterrupt  # what Ctrl-C does: the points written so far stay

    with pytest.raises(KeyboardInterrupt):
        run_grid(GridSpec.from_toml(config), output, workers=1, progress=progress)
    assert seen == [(1, 1), (2, 2)]
    ds = open_dataset(output)
    pending = (ds["status"] == "pending").values
    assert pending.sum() == 4 and (ds["status"] == "done").sum() == 2
    for name in ("final_test_error", "T_eff", "test_error", "self_overlap"):
        assert np.all(np.isnan(ds[name].values[pending])), name
    assert np.all(np.isfinite(ds["test_error"].values[~pending]))
    np.testing.assert_array_equal(ds["time"].values, 0.1 * np.arange(11))  # from the configuration
    run_grid(GridSpec.from_toml(config), output, workers=1)  # finish: the first two points are kept as they were
    assert int((open_dataset(output)["status"] == "done").sum()) == 6


def test_replica_distance_where_present(tmp_path: Path) -> None:
    output = tmp_path / "replicas.h5"
    run_grid(GridSpec.from_toml(write_config(tmp_path, "replicas = [1, 2]\n")), output, workers=1)
    ds = open_dataset(output)
    assert ds["distance"].dims == ("replicas", "time")
    assert np.all(np.isnan(ds["distance"].sel(replicas=1).values))
    result = load_point(output, 1)
    np.testing.assert_array_equal(ds["distance"].sel(replicas=2).values, result.distance)
    np.testing.assert_array_equal(ds["distance_stderr"].sel(replicas=2).values, result.stderr["distance"])
    assert float(ds["final_distance"].sel(replicas=2)) == result.distance[-1]


# ----------------------------------------------------------------------------- single files


def test_solve_file_over_time_and_time2(solve_file: Path) -> None:
    ds = open_dataset(solve_file)
    result = dmft.load(solve_file)
    assert ds["C"].dims == ("time", "time2") and ds["R"].dims == ("time", "time2")
    assert ds["m"].dims == ("time",) and ds.attrs["kind"] == "dmft-solve"
    np.testing.assert_array_equal(ds["time2"].values, result.time)
    for name in ("m", "C", "R", "A", "C_ab", "distance", "train_loss", "test_error", "K", "Gamma_C", "mu_hat"):
        np.testing.assert_array_equal(ds[name].values, getattr(result, name), err_msg=name)
    np.testing.assert_array_equal(ds["C_stderr"].values, result.stderr["C"])
    np.testing.assert_array_equal(ds["self_overlap"].values, np.diagonal(result.C))
    assert ds["gaps"].dims == ("gap_time", "gap_sample")
    np.testing.assert_array_equal(ds["gaps"].sel(gap_time=1.0).values, result.gaps[10])
    assert ds["C_runs"].dims == ("run", "time", "time2") and ds.sizes["run"] == 2
    assert ds.attrs["samples"] == 400 and ds.attrs["replicas"] == 2 and ds.attrs["gap_steps"] == "[]"


def test_simulate_file_puts_the_reference_times_on_time2(simulate_file: Path) -> None:
    ds = open_dataset(simulate_file)
    simulation = dmft.load_simulation(simulate_file)
    assert ds.attrs["kind"] == "dmft-simulate" and ds["C"].dims == ("time", "time2")
    assert list(ds["step2"].values) == [0, 2, 3]  # the union of C's (0, 3), R's and chi's (2) steps
    np.testing.assert_array_equal(ds["time2"].values, simulation.time[[0, 2, 3]])
    np.testing.assert_array_equal(ds["C"].isel(time2=[0, 2]).values, simulation.C)
    assert np.all(np.isnan(ds["C"].isel(time2=1).values))
    np.testing.assert_array_equal(ds["R"].isel(time2=1).values, simulation.R[:, 0])
    np.testing.assert_array_equal(ds["chi_stderr"].isel(time2=1).values, simulation.stderr["chi"][:, 0])
    for name in ("m", "self_overlap", "test_error", "distance"):
        np.testing.assert_array_equal(ds[name].values, getattr(simulation, name), err_msg=name)


def test_xarray_engine_opens_grid_solve_and_simulate_files(grid_file: Path, failing_file: Path, solve_file: Path,
                                                           simulate_file: Path) -> None:
    assert "dmft" in xr.backends.list_engines(), "the entry point is registered on install: pip install -e ."
    for path in (grid_file, failing_file, solve_file, simulate_file):
        expected = open_dataset(path)
        for engine in ("dmft", DmftBackendEntrypoint):
            with xr.open_dataset(path, engine=engine) as ds:
                xr.testing.assert_identical(ds.load(), expected)
        with xr.open_dataset(path, engine="dmft", drop_variables=["status", "m"]) as ds:
            assert "m" not in ds and ("status" not in ds)
    backend = DmftBackendEntrypoint()
    assert backend.guess_can_open(str(grid_file)) and backend.guess_can_open(solve_file)
    assert not backend.guess_can_open("data.nc")


def test_other_files_are_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(dmft.DmftError, match="no such file"):
        open_dataset(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not HDF5")
    with pytest.raises(dmft.DmftError, match="not a readable HDF5 file"):
        open_dataset(tmp_path / "text.h5")


# ----------------------------------------------------------------------------- export


@pytest.mark.parametrize("name", ["grid_file", "failing_file", "solve_file", "simulate_file"])
def test_exported_netcdf_round_trips(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue(name)
    output = export(path, tmp_path / "out.nc")
    with xr.open_dataset(output, engine="h5netcdf") as back:
        xr.testing.assert_identical(back.load(), open_dataset(path))
    with pytest.raises(dmft.DmftError, match="exists"):
        export(path, output)
    assert [p.name for p in tmp_path.iterdir()] == ["out.nc"]  # no temporary left behind


def test_csv_tables(failing_file: Path, solve_file: Path, tmp_path: Path) -> None:
    ds = open_dataset(failing_file)
    points = pd.read_csv(export(failing_file, tmp_path / "points.csv", "csv"), keep_default_na=False,
                         na_values=[""])
    assert list(points.columns[:4]) == ["dt", "ridge", "point", "status"] and len(points) == 4
    assert list(points["status"]) == ["done", "done", "failed", "failed"]
    np.testing.assert_array_equal(points["final_test_error"].values, ds["final_test_error"].values.ravel())
    steps = pd.read_csv(export(failing_file, tmp_path / "steps.csv", "csv", time_series=True))
    assert len(steps) == 2 * 11  # the failed points' rows are left out
    assert list(steps.columns[:5]) == ["dt", "ridge", "point", "step", "t"]
    np.testing.assert_array_equal(steps["m"].values[:11], load_point(failing_file, 0).m)
    solve = tables(open_dataset(solve_file))
    assert len(solve) == 11 and "C" not in solve.columns and "self_overlap" in solve.columns


def test_export_command(failing_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(failing_file), "--output", str(tmp_path / "grid.csv")])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "grid.csv").shape[0] == 4  # CSV chosen from the suffix
    result = runner.invoke(main, ["export", str(failing_file), "-o", str(tmp_path / "grid.nc"), "--format", "netcdf"])
    assert result.exit_code == 0, result.output
    xr.testing.assert_identical(xr.load_dataset(tmp_path / "grid.nc", engine="h5netcdf"), open_dataset(failing_file))
    result = runner.invoke(main, ["export", str(failing_file), "-o", str(tmp_path / "grid.nc")])
    assert result.exit_code == 2 and "exists; pass --overwrite" in result.output


# ----------------------------------------------------------------------------- phase diagrams


def test_phase_diagram_figure(failing_file: Path, grid_file: Path) -> None:
    ds = open_dataset(failing_file)
    figure = phase_figure(ds, "dt", "ridge", "test_error")
    main_axes = figure.axes[0]
    assert main_axes.get_xscale() == "log" and main_axes.get_yscale() == "linear"  # dt spans a decade
    assert figure.axes[1].get_title() == "standard error of the final test error"
    figure = phase_figure(ds, "dt", "ridge", "wall_time")  # no standard error: which points are not done
    assert figure.axes[1].get_title() == "points not done: 2 of 4 (50%)"
    figure = phase_figure(open_dataset(grid_file), "alpha", "batch_fraction", "m", time=0.5)
    assert "at t = 0.5" in figure.axes[0].get_title()
    with pytest.raises(dmft.ParameterError, match="z"):
        phase_figure(ds, "dt", "ridge", "nonsense")
    with pytest.raises(dmft.ParameterError, match="x"):
        phase_figure(ds, "alpha", "ridge", "test_error")


def test_plot_command_draws_a_phase_diagram_and_keeps_the_curves(grid_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["plot", str(grid_file), "--output-dir", str(tmp_path)]
    result = runner.invoke(main, [*args, "--x", "alpha", "--y", "batch_fraction", "--z", "test_error"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "grid_test_error_over_alpha_batch_fraction.png").stat().st_size > 0
    result = runner.invoke(main, [*args, "--z", "T_eff"])  # axes default to the grid's first two
    assert result.exit_code == 0 and "grid_T_eff_over_batch_fraction_alpha.png" in result.output
    result = runner.invoke(main, [*args, "--z", "self_overlap", "--time", "0.3"])
    assert result.exit_code == 0 and "_t0.3.png" in result.output
    result = runner.invoke(main, [*args, "--x", "alpha", "--y", "test_error"])  # 1-D curves as before
    assert result.exit_code == 0 and "grid_test_error_vs_alpha.png" in result.output
    for extra, message in ((["--time", "1"], "give --z too"), (["--z", "m", "--hue", "alpha"], "hue"),
                           (["--z", "m", "--time", "99"], "must lie in")):
        result = runner.invoke(main, [*args, *extra])
        assert result.exit_code == 2 and message in result.output, result.output


def test_import_dmft_leaves_xarray_unloaded() -> None:
    code = "import sys, dmft; assert 'xarray' not in sys.modules; dmft.open_dataset; assert 'xarray' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_submodules_are_attributes_of_the_lazy_package() -> None:
    # `import dmft` imports no submodule, yet dmft.io, dmft.fdt, ... work as after an eager import;
    # an unknown name is still an AttributeError and dmft.simulate stays the function.
    code = ("import sys, dmft; assert 'dmft.io' not in sys.modules; assert callable(dmft.io.save_result); "
            "assert callable(dmft.fdt.effective_temperature); assert callable(dmft.simulate); "
            "assert not hasattr(dmft, 'no_such_name')")
    subprocess.run([sys.executable, "-c", code], check=True)
