"""Momentum and the teacher-student perceptron through every command: solve, simulate,
compare, teff, grid and plot accept them, and the files record them."""

from __future__ import annotations

import json

import h5py
import pytest
from click.testing import CliRunner

import dmft
from dmft.cli import main
from grid_helpers import write_config

NEW = ["--dataset", "teacher-student", "--label-noise", "0.1", "--momentum", "0.4", "--algorithm", "sgd",
       "--steps", "40", "--quiet"]


def run(*args):
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("new")
    run("solve", "--output", directory / "dmft.h5", *NEW, "--samples", "2000", "--subpopulations", "2")
    run("simulate", "--output", directory / "sim.h5", *NEW, "--dimension", "200", "--seeds", "3")
    return directory


def test_files_record_the_momentum_and_the_label_noise(files):
    for name, load in (("dmft.h5", dmft.load), ("sim.h5", dmft.load_simulation)):
        with h5py.File(files / name, "r") as handle:
            assert handle.attrs["dataset"] == "teacher-student"
            assert handle.attrs["momentum"] == 0.4 and handle.attrs["label_noise"] == 0.1
        problem = load(files / name).problem
        assert problem.algorithm.momentum == 0.4 and problem.dataset.label_noise == 0.1


def test_compare_teff_and_plot_run_on_the_files(files):
    run("compare", files / "dmft.h5", files / "sim.h5", "--max-z", "1e9")  # tiny runs: the files, not the physics
    result = run("teff", files / "dmft.h5", "--json", "--tolerance", "0.99")  # a short run: not stationary
    assert "T_eff" in json.loads(result.output)
    (files / "plots").mkdir()
    run("plot", files / "dmft.h5", "--output-dir", files / "plots")
    assert list((files / "plots").glob("*.png"))


def test_momentum_and_label_noise_are_grid_axes(tmp_path):
    config = write_config(tmp_path, """
        dataset = ["teacher-student"]
        momentum = [0.0, 0.5]
        label_noise = [0.0, 0.2]
    """)
    run("grid", config, "--output", tmp_path / "grid.h5", "--workers", "1")
    summary = dmft.grid.load_summary(tmp_path / "grid.h5")
    assert sorted(set(zip(summary["momentum"], summary["label_noise"]))) == [(0.0, 0.0), (0.0, 0.2), (0.5, 0.0),
                                                                            (0.5, 0.2)]
