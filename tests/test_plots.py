"""Figures of solve and grid files: files written, axes labelled, error bars where errors exist."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.container import ErrorbarContainer
from PIL import Image

import dmft
from dmft._version import __version__, source_digest
from dmft.cli import main
from dmft.errors import DmftError, ParameterError
from dmft.fdt import integrated_response
from dmft.grid import GridSpec, run_grid
from dmft.plots import grid_figure, plot_distance, plot_file, solve_figures

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result() -> dmft.Result:
    problem = dmft.Problem.from_flat(algorithm="sgd", batch_fraction=0.4, temperature=0.2, steps=10)
    return dmft.solve(problem, dmft.SolverOptions(samples=400, subpopulations=2, seed=1))


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = GridSpec.from_dict({
        "seed": 2,
        "problem": {"steps": 10, "algorithm": "persistent-sgd"},
        "solver": {"samples": 400, "subpopulations": 2},
        "grid": {"batch_fraction": [0.3, 0.5, 0.7], "persistence_time": [1.0, 3.0], "ridge": [0.0, 0.1]},
    })
    path = tmp_path_factory.mktemp("grid") / "grid.h5"
    run_grid(spec, path, workers=1)
    return path


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG), path
    # Every figure names the code that drew it (version and source digest), as files do.
    with Image.open(path) as image:
        assert image.text.get("Software") == f"dmft {__version__} (source sha256 {source_digest()})", path


def test_integrated_response_matches_its_definition() -> None:
    rng = np.random.default_rng(0)
    n, dt = 7, 0.3
    R = np.tril(rng.normal(size=(n, n)), k=-1)
    chi = integrated_response(R, dt)
    for k in range(n):
        for j in range(n):
            expected = dt * sum(R[k, i] for i in range(j, k)) if j < k else 0.0
            assert chi[k, j] == pytest.approx(expected, abs=1e-12)


def test_solve_figures_are_labelled_with_error_bars(result: dmft.Result) -> None:
    figures = solve_figures(result)
    assert set(figures) == {"m", "loss", "errors", "C", "fdt", "gaps"}  # gaps: kept at the final step
    m = figures["m"].axes[0]
    assert m.get_xlabel() == "time t" and m.get_ylabel().startswith("overlap m(t)")
    assert any(isinstance(c, ErrorbarContainer) for c in m.containers)  # 2 subpopulations: error bars
    assert "sgd b=0.4" in m.get_title() and "T=0.2" in m.get_title()
    errors = figures["errors"].axes[0]
    assert errors.get_ylabel() == "classification error"
    assert [t.get_text() for t in errors.get_legend().get_texts()] == ["training error", "test error"]
    assert figures["loss"].axes[0].get_ylabel().startswith("training loss")
    heat = figures["C"]
    assert heat.axes[0].get_xlabel() == "time t'" and heat.axes[0].get_ylabel() == "time t"
    assert heat.axes[0].images and heat.axes[1].get_ylabel() == "C(t, t')"  # the colour bar
    fdt = figures["fdt"].axes[0]
    assert fdt.get_xlabel() == "C(t, t) - C(t, t')" and fdt.get_ylabel() == "integrated response χ(t, t')"
    x, y = fdt.lines[0].get_data()
    k = result.problem.steps
    np.testing.assert_allclose(x, result.C[k, k] - result.C[k, : k + 1])
    np.testing.assert_allclose(y, integrated_response(result.R, result.problem.dt)[k, : k + 1])
    assert len(fdt.lines) == 2  # T > 0: the equilibrium line of slope 1/T


def test_no_error_bars_without_subpopulations() -> None:
    problem = dmft.Problem.from_flat(steps=6)
    single = dmft.solve(problem, dmft.SolverOptions(samples=200, subpopulations=1))
    axes = solve_figures(single)["m"].axes[0]
    assert not axes.containers and len(axes.lines) == 1


def test_plot_file_writes_the_solve_pngs(result: dmft.Result, tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    dmft.save(result, path)
    written = plot_file(path, output_dir=tmp_path)
    expected = (f"run_{name}.png" for name in ("m", "loss", "errors", "C", "fdt", "gaps"))
    assert sorted(p.name for p in written) == sorted(expected)
    for png in written:
        assert_png(png)
    with pytest.raises(ParameterError, match="grid files"):
        plot_file(path, x="ridge")


def test_gap_and_distance_figures_of_solve_and_simulate_files(tmp_path: Path) -> None:
    problem = dmft.Problem.from_flat(dataset="random-labels", alpha=0.3, loss="square-hinge", ridge=0.0,
                                     algorithm="sgd", batch_fraction=0.3, steps=20)
    theory = dmft.solve(problem, dmft.SolverOptions(samples=600, subpopulations=2, replicas=2, gap_steps=(5,)))
    simulation = dmft.simulate(problem, dmft.SimulationOptions(dimension=200, seeds=2, replicas=2,
                                                               gap_times=(0.5, 2.0)))
    dmft.save(theory, tmp_path / "dmft.h5")
    dmft.save(simulation, tmp_path / "sim.h5")
    written = {**plot_file(tmp_path / "dmft.h5"), **plot_file(tmp_path / "sim.h5")}
    names = {p.name for p in written}
    assert {"dmft_gaps.png", "dmft_distance.png", "sim_gaps.png", "sim_distance.png", "sim_m.png"} <= names
    for png, figure in written.items():
        assert_png(png)
        if png.name.endswith("_gaps.png"):
            axes = figure.axes[0]
            assert axes.get_xlabel() == "gap y φ(h)" and axes.get_ylabel() == "density over the training set"
            labels = [t.get_text() for t in axes.get_legend().get_texts()]
            assert labels[-1] == "margin κ = 1" and labels[0].startswith("t = 0.5: P(gap < κ) = ")
            assert len(axes.patches) == 2  # one histogram per kept time
        if png.name.endswith("_distance.png"):
            assert figure.axes[0].get_ylabel().startswith("replica distance D(t)")
    single = dmft.solve(problem, dmft.SolverOptions(samples=200, subpopulations=1))
    with pytest.raises(ParameterError, match="--replicas 2"):
        plot_distance(single)


def test_grid_figure_one_curve_per_hue_value(grid_file: Path) -> None:
    written = plot_file(grid_file, x="batch_fraction", y="test_error", hue="persistence_time")
    (png, figure), = written.items()
    assert png.name == "grid_test_error_vs_batch_fraction_by_persistence_time.png"
    assert_png(png)
    ax = figure.axes[0]
    assert ax.get_xlabel() == "batch_fraction" and ax.get_ylabel() == "final test error"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    # ridge also varies: its values are told apart by line style inside each hue colour.
    assert labels == ["persistence_time=1, ridge=0", "persistence_time=1, ridge=0.1",
                      "persistence_time=3, ridge=0", "persistence_time=3, ridge=0.1"]
    assert all(isinstance(c, ErrorbarContainer) for c in ax.containers) and len(ax.containers) == 4
    x, _ = ax.containers[0].lines[0].get_data()
    assert list(x) == [0.3, 0.5, 0.7]
    assert "persistent-sgd" in ax.get_title() and "test error at t = 1 against batch_fraction" in ax.get_title()


def test_grid_defaults_and_point_figures(grid_file: Path, tmp_path: Path) -> None:
    written = plot_file(grid_file, output_dir=tmp_path)
    assert sorted(p.name for p in written) == [f"grid_{y}_vs_batch_fraction_by_persistence_time.png"
                                               for y in ("test_error", "train_error", "train_loss")]
    for png in written:
        assert_png(png)
    point = plot_file(grid_file, output_dir=tmp_path, point=5)
    assert len(point) == 6 and all(p.name.startswith("grid_point5_") for p in point)
    title = next(iter(point.values())).axes[0].get_title()  # point 5 = (b, tau, ridge) index (1, 0, 1)
    assert "b=0.5 τ=1" in title and "λ=0.1" in title


def test_grid_figure_categorical_axis_and_failed_points(tmp_path: Path) -> None:
    spec = GridSpec.from_dict({
        "problem": {"steps": 10, "loss": "square", "alpha": 4.0},
        "solver": {"samples": 400, "subpopulations": 2},
        "grid": {"algorithm": ["gd", "sgd"], "dt": [0.1, 1.0]},
    })
    path = tmp_path / "g.h5"
    run_grid(spec, path, workers=1)
    from dmft.grid import grid_metadata, load_summary

    summary = load_summary(path)
    assert "failed" in list(summary["status"])
    figure = grid_figure(summary, "algorithm", "train_loss", hue="dt", axes=["algorithm", "dt"],
                         fixed=grid_metadata(path)["fixed"])
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["gd", "sgd"]
    assert "failed or pending, not shown" in ax.get_title()
    t_eff = grid_figure(summary, "dt", "T_eff", hue="algorithm", axes=["algorithm", "dt"])
    assert t_eff.axes[0].get_ylabel() == "effective temperature T_eff"


def test_bad_plot_options_name_the_option(grid_file: Path) -> None:
    runner = CliRunner()
    for arguments, key in ((["--x", "nonsense"], "x"), (["--x", "ridge", "--y", "bogus"], "y"),
                           (["--x", "ridge", "--hue", "ridge"], "hue"), (["--hue", "ridge"], "x"),
                           (["--point", "99"], "point")):
        result = runner.invoke(main, ["plot", str(grid_file), *arguments])
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"Error: {key}:"), result.output
    result = runner.invoke(main, ["plot", str(grid_file.parent / "missing.h5")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_cli_plot_writes_pngs(grid_file: Path, result: dmft.Result, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "figures"
    out.mkdir()
    outcome = runner.invoke(main, ["plot", str(grid_file), "--output-dir", str(out), "--x", "ridge", "--y",
                                   "train_loss", "--hue", "batch_fraction"])
    assert outcome.exit_code == 0, outcome.output
    assert_png(out / "grid_train_loss_vs_ridge_by_batch_fraction.png")
    solve_file = tmp_path / "solve.h5"
    dmft.save(result, solve_file)
    outcome = runner.invoke(main, ["plot", str(solve_file), "--output-dir", str(out)])
    assert outcome.exit_code == 0 and outcome.output.count("wrote ") == 6
    assert_png(out / "solve_fdt.png")
    with pytest.raises(DmftError):
        plot_file(tmp_path / "nothing.h5")
