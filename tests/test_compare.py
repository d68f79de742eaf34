"""DMFT against the reference simulations in data/reference, and `dmft compare`."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import dmft
from dmft.cli import main
from dmft.compare import ProblemMismatch, check_same_problem, compare, compare_files, curves, family_threshold
from dmft.io import load_simulation
from dmft.simulate import SimulationOptions, simulate
from stats import POWER, POWER_RESPONSE, assert_agrees, z_threshold

DATA = Path(__file__).resolve().parent.parent / "data" / "reference"
STUDY = json.loads((DATA / "finite_size.json").read_text())
POINTS = sorted(STUDY["points"])
# DMFT precision for the comparisons: 160 subpopulations of 3000 samples (the serial kernels), so
# that the DMFT's error is below the simulations' (64 seeds at d = 2000).
SOLVER = dmft.SolverOptions(samples=480_000, subpopulations=160, seed=4)
FAMILY_FALSE_ALARM = 0.01


def threshold(points: int, seeds: int) -> float:
    """Family-wise 1% false-alarm threshold (``dmft.compare.family_threshold``)."""
    return family_threshold(points, seeds, FAMILY_FALSE_ALARM)


def allowances(point: str, dimension: int) -> dict[str, float]:
    """The O(1/d) systematic allowance measured by data/make_reference.py, scaled to d."""
    entry = STUDY["points"][point]
    return {name: values["allowance_2000"] * STUDY["dimension"] / dimension
            for name, values in entry.items() if isinstance(values, dict) and "allowance_2000" in values}


@functools.cache
def reference_theory(point: str) -> dmft.Result:
    """The DMFT solution of a reference point, solved once per session (several tests compare with it)."""
    return dmft.solve(load_simulation(DATA / f"{point}.h5").problem, SOLVER)


@pytest.fixture(scope="module")
def gd_theory() -> dmft.Result:
    return reference_theory("gd")


@pytest.fixture(scope="module")
def gd_theory_file(tmp_path_factory, gd_theory) -> Path:
    path = tmp_path_factory.mktemp("dmft") / "gd_dmft.h5"
    dmft.save(gd_theory, path)
    return path


@pytest.fixture(scope="module")
def gd_quick_file(tmp_path_factory) -> Path:
    """A cheap solve of the gd reference problem, for command-line tests that only need a valid file."""
    problem = load_simulation(DATA / "gd.h5").problem
    path = tmp_path_factory.mktemp("dmft") / "gd_quick.h5"
    dmft.save(dmft.solve(problem, dmft.SolverOptions(samples=2000, subpopulations=2)), path)
    return path


# ----------------------------------------------------------------------------- physics


# The powered comparisons (issue 23), at the check points data/make_reference.py chose and
# recorded with their own finite-size allowance: the final step T for m, C[k,k], the losses
# and the test error; the step where the simulated training error falls to 0.25 (its binomial
# noise, relative to the value, is smaller where it is large); and C, R and chi at t = T
# against the last reference time (3T/4). What each resolves (threshold x combined error /
# value) is set mostly by the stored simulations (64 seeds at d = 2000): at most 3% of m, C,
# the losses and the errors, 10% of R and chi (stats.POWER, stats.POWER_RESPONSE).
POWERED = ("m", "self_overlap", "train_loss", "train_error", "test_error", "C", "R", "chi")


def check_allowance(point: str, name: str) -> tuple[tuple[int, ...], float]:
    """The check point of ``name`` and the finite-size allowance measured there."""
    check = STUDY["points"][point][name]["check"]
    return tuple(check["index"]), check["allowance_2000"]


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.physics
def test_dmft_matches_reference_simulation(point):
    """dmft.solve against d = 2000, 64 seeds, for every algorithm of the reference set.

    Every observable at every time within the Bonferroni threshold over all of them
    (combined standard errors plus the finite-size allowance): a net for errors anywhere in
    the run. Then the powered comparisons, one per observable at its check point, each
    asserting it resolves 3% (m, C, losses, errors) or 10% (R, chi) of the value.
    """
    simulation = load_simulation(DATA / f"{point}.h5")
    assert simulation.options.dimension == STUDY["dimension"] and simulation.options.seeds == STUDY["seeds"]
    theory = reference_theory(point)
    allowance = allowances(point, simulation.options.dimension)
    result = compare(theory, simulation, allowance=allowance)
    names = {row.name for row in result.rows}
    assert set(POWERED) <= names
    points = sum(row.points for row in result.rows)
    limit = threshold(points, simulation.options.seeds)
    assert result.passed(limit), f"{point}: max z >= {limit:.2f}\n{result.table(limit)}"
    # The powered comparisons.
    matched, k = curves(theory, simulation), simulation.problem.steps
    limit = z_threshold(simulation.options.seeds, comparisons=len(POWERED))
    for name in POWERED:
        curve = matched[name]
        index, at_check = check_allowance(point, name)
        dmft_value, sim_value = curve["dmft"][index], curve["sim"][index]
        if point == "random_labels" and name == "test_error":  # 1/2 exactly on both sides
            assert dmft_value == sim_value == 0.5
            continue
        # m = 0 for random labels: its errors are measured on the scale of the weights, sqrt(C[k,k]).
        scale = math.sqrt(simulation.self_overlap[k]) if point == "random_labels" and name == "m" else None
        power = POWER_RESPONSE if name in ("R", "chi") else POWER
        assert_agrees(f"{point} {name}{list(index)}", dmft_value, sim_value,
                      (curve["dmft_se"][index], curve["sim_se"][index], at_check), limit, power, scale)


def test_finite_size_allowance_rests_on_a_law_the_data_obey():
    """The allowance is the 2-sigma bound on the d = 500 gap scaled by 500/2000, which assumes
    the finite-size error is O(1/d). The d = 2000 gaps must obey that law: within the scaled
    bound plus 4 of their own standard errors, at every check point and for the largest gap
    over all times. A slower law (O(1/sqrt(d)) would leave half the d = 500 gap, not a quarter)
    shows here as a d = 2000 gap above its allowance."""
    assert STUDY["small_dimension"] == 500 and STUDY["dimension"] == 2000
    checked = 0
    for point, entry in STUDY["points"].items():
        for name in POWERED:
            values, check = entry[name], entry[name]["check"]
            assert values["gap_2000"] <= values["allowance_2000"] + 4 * values["se_2000"] + 1e-9, (point, name)
            assert check["gap_2000"] <= check["allowance_2000"] + 4 * check["se_2000"] + 1e-9, (point, name)
            checked += 1
    assert checked == len(POWERED) * len(STUDY["points"])


# docs/theory.md §10: the table given with the specification, m_k, C[k,k] and the training loss
# at the final step of three algorithms, to three digits, Monte Carlo error about 0.005 (0.015
# for C, whose spread is about three times larger).
SPECIFICATION_TABLE = {"gd": (1.481, 2.99, 0.207), "sgd": (0.803, 0.98, 0.350),
                       "persistent_sgd": (0.916, 1.18, 0.318)}
SPECIFICATION_ERRORS = (0.005, 0.015, 0.005)
TABLE_NAMES = ("m", "self_overlap", "train_loss")


def table_entry(value: float, error: float) -> str:
    """How docs/theory.md §10 prints an entry of the four-digit table."""
    return f"{value:.4f} ± {error:.4f}"


def test_the_specification_table_agrees_with_ours():
    """The specification's three-digit table against ours (data/make_reference.py, 400 000
    samples): a check of the documentation, not of the solver. Its own error (0.005, 0.015)
    limits it to 2-13% of the values; the solver is held to 3% by the comparisons below."""
    limit = z_threshold(STUDY["reference_subpopulations"], comparisons=9)
    for point, values in SPECIFICATION_TABLE.items():
        ours = STUDY["points"][point]["dmft_final"]
        for name, value, error in zip(TABLE_NAMES, values, SPECIFICATION_ERRORS):
            assert_agrees(f"{point} {name}", ours[name][0], value, (ours[name][1], error), limit, 0.13)


def test_theory_page_prints_the_reference_table():
    """docs/theory.md §10 prints the four-digit table that data/make_reference.py wrote, entry
    for entry (a regenerated study must reach the page)."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "theory.md").read_text()
    section = page[page.index("## 10. Reference numbers"):page.index("## Sources")]
    for point in SPECIFICATION_TABLE:
        for name in TABLE_NAMES:
            value, error = STUDY["points"][point]["dmft_final"][name]
            assert table_entry(value, error) in section, (point, name, table_entry(value, error))


@pytest.mark.parametrize("point", sorted(SPECIFICATION_TABLE))
@pytest.mark.physics
def test_the_reference_table_matches_the_dmft_and_the_stored_simulations(point):
    """Our table of docs/theory.md §10 (a DMFT solution of 400 000 samples, its own seed)
    against the solve shared with the comparisons above (480 000 samples, another seed) and
    against the stored d = 2000 simulations (with the finite-size allowance at the final
    step): each comparison resolves 3% of the value."""
    theory, simulation = reference_theory(point), load_simulation(DATA / f"{point}.h5")
    k = simulation.problem.steps
    table = STUDY["points"][point]["dmft_final"]
    limit = z_threshold(min(SOLVER.subpopulations, STUDY["seeds"]), comparisons=2 * len(TABLE_NAMES))
    for name in TABLE_NAMES:
        value, error = table[name]
        dmft_value = theory.C[k, k] if name == "self_overlap" else getattr(theory, name)[k]
        dmft_error = theory.stderr["C"][k, k] if name == "self_overlap" else theory.stderr[name][k]
        assert_agrees(f"DMFT {name}", dmft_value, value, (dmft_error, error), limit, POWER)
        _, allowance = check_allowance(point, name)
        assert_agrees(f"simulation {name}", getattr(simulation, name)[k], value,
                      (simulation.stderr[name][k], error, allowance), limit, POWER)


# ----------------------------------------------------------------------------- the API


def test_check_same_problem_names_the_parameter():
    a = dmft.Problem.from_flat(steps=10)
    check_same_problem(a, dmft.Problem.from_flat(steps=10))
    with pytest.raises(ProblemMismatch) as error:
        check_same_problem(a, a.replace(ridge=0.2))
    assert error.value.parameter == "ridge" and "0.1" in str(error.value) and "0.2" in str(error.value)


@pytest.mark.physics
def test_z_score_formula(gd_theory):
    """z = |dmft - sim| / sqrt(se_dmft^2 + se_sim^2 + allowance^2), maximised over times (the
    formula on constructed differences: no physics comparison)."""
    simulation = load_simulation(DATA / "gd.h5")
    combined = np.hypot(gd_theory.stderr["m"], simulation.stderr["m"])
    shifted_m = gd_theory.m + 3.0 * combined
    shifted_m[40] = gd_theory.m[40] + 5.0 * combined[40]
    shifted = dataclasses.replace(simulation, m=shifted_m)
    row = compare(gd_theory, shifted).row("m")
    assert row.max_z == pytest.approx(5.0) and row.time == pytest.approx(4.0) and row.points == 61
    # Bonferroni threshold: grows with the number of points, shrinks with the seeds.
    assert family_threshold(1, 1000) == pytest.approx(2.576, abs=0.01)
    assert family_threshold(1000, 16) > family_threshold(10, 16) > family_threshold(10, 100)
    assert row.max_difference == pytest.approx(np.max(np.abs(shifted_m - gd_theory.m)))
    allowance = 0.01
    expected = np.max(np.abs(shifted_m - gd_theory.m) / np.sqrt(combined**2 + allowance**2))
    assert compare(gd_theory, shifted, allowance={"m": allowance}).row("m").max_z == pytest.approx(expected)
    assert compare(gd_theory, shifted, allowance=allowance).row("m").max_z == pytest.approx(expected)


@pytest.mark.physics
def test_compare_flags_a_wrong_theory():
    """A DMFT solution of a different ridge, presented as the same problem, disagrees (a
    demonstration of the verdict, at a 30% change of C[k,k]; the right solution must pass
    the whole-curve threshold against a d = 300 simulation of its own)."""
    problem = dmft.Problem.from_flat(algorithm="gd", steps=30)
    seeds = 12
    simulation = simulate(problem, SimulationOptions(dimension=300, seeds=seeds, gap_times=()))
    solver = dmft.SolverOptions(samples=20_000, subpopulations=20)
    right = dmft.solve(problem, solver)
    wrong = dataclasses.replace(dmft.solve(problem.replace(ridge=0.5), solver), problem=problem)  # mislabelled
    good, bad = compare(right, simulation), compare(wrong, simulation)
    limit = threshold(sum(row.points for row in good.rows), seeds)
    assert good.passed(limit), good.table(limit)
    assert not bad.passed(limit) and bad.row("self_overlap").max_z > limit
    assert "exceeds" in bad.table(limit)


# ----------------------------------------------------------------------------- the command line


@pytest.mark.physics
def test_cli_compare_agrees_with_reference(gd_theory_file, tmp_path):
    simulation = load_simulation(DATA / "gd.h5")
    comparison, _, _ = compare_files(gd_theory_file, DATA / "gd.h5")
    limit = threshold(sum(row.points for row in comparison.rows), simulation.options.seeds)
    plot = tmp_path / "gd.png"
    outcome = CliRunner().invoke(main, ["compare", str(gd_theory_file), str(DATA / "gd.h5"),
                                        "--max-z", f"{limit:.3f}", "--plot", str(plot)])
    assert outcome.exit_code == 0, outcome.output
    for name in ("m", "self_overlap", "train_loss", "train_error", "test_error", "C", "R", "chi", "agree"):
        assert name in outcome.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 20_000


@pytest.mark.physics
def test_cli_compare_exits_1_on_a_shifted_file(gd_theory_file, tmp_path):
    shifted = tmp_path / "shifted.h5"
    shutil.copy(DATA / "gd.h5", shifted)
    with h5py.File(shifted, "r+") as handle:  # m moved by 10 standard errors from t = 3 on
        m, error = handle["m"][()], handle["m_stderr"][()]
        m[30:] += 10 * error[30:]
        handle["m"][...] = m
    outcome = CliRunner().invoke(main, ["compare", str(gd_theory_file), str(shifted), "--max-z", "6"])
    assert outcome.exit_code == 1, outcome.output
    line = next(line for line in outcome.output.splitlines() if line.startswith("m "))
    assert "exceeds" in line
    assert "DISAGREE" in outcome.output


def test_cli_compare_refuses_different_problems(gd_quick_file):
    outcome = CliRunner().invoke(main, ["compare", str(gd_quick_file), str(DATA / "sgd.h5")])
    assert outcome.exit_code == 2
    lines = outcome.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: algorithm:") and "different problems" in lines[0]


def test_cli_compare_refuses_a_different_step_count(tmp_path):
    """Two files whose runs have different lengths describe different problems: exit 2."""
    long = tmp_path / "long.h5"
    problem = load_simulation(DATA / "gd.h5").problem.replace(steps=61)
    dmft.save(dmft.solve(problem, dmft.SolverOptions(samples=2000, subpopulations=2)), long)
    outcome = CliRunner().invoke(main, ["compare", str(long), str(DATA / "gd.h5")])
    assert outcome.exit_code == 2 and "steps" in outcome.output


@pytest.mark.parametrize("swap", [False, True])
def test_cli_compare_bad_files(gd_quick_file, tmp_path, swap):
    files = [str(DATA / "gd.h5"), str(gd_quick_file)] if swap else [str(gd_quick_file), str(tmp_path / "no.h5")]
    outcome = CliRunner().invoke(main, ["compare", *files])
    assert outcome.exit_code == 2
    assert len(outcome.output.strip().splitlines()) == 1
    assert ("not a `dmft solve` result" if swap else "no such file") in outcome.output


def test_cli_compare_rejects_bad_max_z(gd_quick_file):
    outcome = CliRunner().invoke(main, ["compare", str(gd_quick_file), str(DATA / "gd.h5"), "--max-z", "0"])
    assert outcome.exit_code == 2 and "max_z" in outcome.output


def test_make_reference_writes_the_study_the_tests_read(tmp_path):
    """data/make_reference.py at tiny sizes on one point (``--quick``): it writes the simulation
    file and a study with, for every observable compared with power, its check point and the
    allowance there, and the high-precision table of docs/theory.md §10."""
    spec = importlib.util.spec_from_file_location("make_reference", DATA.parent / "make_reference.py")
    script = importlib.util.module_from_spec(spec)
    sys.modules["make_reference"] = script  # its dataclass and process pool look it up by name
    spec.loader.exec_module(script)
    assert script.main(["--quick", "--points", "gd", "--output", str(tmp_path)]) == 0
    study = json.loads((tmp_path / "finite_size.json").read_text())
    simulation = load_simulation(tmp_path / "gd.h5")
    assert simulation.options.dimension == study["dimension"] == script.QUICK.dimension
    entry, k = study["points"]["gd"], simulation.problem.steps
    for name in POWERED:
        assert entry[name]["check"]["allowance_2000"] >= 0 and entry[name]["check"]["index"][0] in (k, *range(k))
    first = entry["train_error"]["check"]["index"][0]
    low = simulation.train_error <= script.TRAIN_ERROR_CHECK_LEVEL
    assert (low[first] and not low[:first].any()) or (first == k and not low.any())
    assert set(entry["dmft_final"]) == set(TABLE_NAMES)
    # The study from the stored simulation (--reuse-simulations) is the study from a fresh one.
    assert script.main(["--quick", "--points", "gd", "--output", str(tmp_path), "--reuse-simulations"]) == 0
    assert json.loads((tmp_path / "finite_size.json").read_text()) == study
