"""The finite-d simulator: options, reproducibility, responses, reference numbers (docs/theory.md §10), FDT,
storage, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import dmft
from dmft.cli import main
from dmft.errors import DivergenceError, DmftError, ParameterError
from dmft.io import KIND_SIMULATE, load_simulation
from dmft.simulate import SimulationOptions, simulate
from stats import POWER, POWER_RESPONSE, assert_agrees, z_threshold

DATA = Path(__file__).resolve().parent.parent / "data" / "reference"
CANONICAL = dict(dataset="gmm2", alpha=2.0, delta=0.5, rho=0.5, loss="logistic", ridge=0.1, dt=0.1,
                 init_variance=1.0)


def small(**options) -> SimulationOptions:
    return SimulationOptions(**{"dimension": 60, "seeds": 3, **options})


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize("option, value", [
    ("dimension", 0), ("dimension", 2.5), ("dimension", True), ("seeds", 0), ("seed", -1), ("replicas", 3),
    ("response_field", -1e-3), ("response_field", math.nan), ("correlation_times", (-1.0,)),
    ("response_times", ("soon",)), ("chi_times", (math.inf,)), ("gap_times", "a,b"),
])
def test_bad_option_names_itself(option, value):
    with pytest.raises(ParameterError) as error:
        SimulationOptions(**{option: value})
    assert error.value.parameter == option
    assert str(error.value).startswith(f"{option}:")


@pytest.mark.parametrize("option, value, words", [
    ("correlation_times", (0.15,), "not a multiple of dt"),
    ("response_times", (7.0,), "past the final time"),
    ("gap_times", (0.05,), "not a multiple of dt"),
])
def test_times_must_lie_on_the_grid(option, value, words):
    problem = dmft.Problem.from_flat(steps=10)
    with pytest.raises(ParameterError, match=words) as error:
        simulate(problem, small(**{option: value}))
    assert error.value.parameter == option


def test_oversized_dimension_is_refused_before_allocating():
    with pytest.raises(ParameterError, match="GiB") as error:
        simulate(dmft.Problem.from_flat(steps=2), SimulationOptions(dimension=200_000, seeds=1))
    assert error.value.parameter == "dimension"


def test_unknown_flat_option():
    with pytest.raises(ParameterError) as error:
        SimulationOptions.from_flat(dimensions=10)
    assert error.value.parameter == "dimensions"


def test_default_times_resolve_to_the_grid():
    problem = dmft.Problem.from_flat(steps=60)
    options = SimulationOptions().resolve(problem)
    assert options.correlation_times == pytest.approx((0.0, 1.5, 3.0, 4.5))
    assert options.response_times == options.correlation_times == options.chi_times
    assert options.gap_times == pytest.approx((6.0,))


def test_divergence_is_reported():
    # Square loss: the data Hessian X^T X / d has eigenvalues up to ~ Delta (1 + sqrt(alpha))^2 + alpha ~ 5,
    # so dt = 1 is far beyond the stability limit 2 / lambda_max.
    problem = dmft.Problem.from_flat(loss="square", algorithm="gd", dt=1.0, ridge=0.0, steps=200)
    with pytest.raises(DivergenceError, match="diverged"):
        simulate(problem, small(seeds=1))


# ----------------------------------------------------------------------------- reproducibility, shapes


def test_same_seed_same_numbers_and_new_seed_new_numbers():
    problem = dmft.Problem.from_flat(algorithm="persistent-sgd", temperature=0.05, steps=12)
    first, second = simulate(problem, small(seed=5)), simulate(problem, small(seed=5))
    other = simulate(problem, small(seed=6))
    for name in ("m", "self_overlap", "C", "R", "chi", "train_loss", "train_error", "test_error"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert not np.allclose(first.m, other.m)


def test_shapes_and_conventions():
    problem = dmft.Problem.from_flat(algorithm="sgd", steps=20)
    result = simulate(problem, small(correlation_times=(0.5, 1.0), response_times=(0.2,), chi_times=(0.0, 1.0),
                                     gap_times=(0.0, 2.0)))
    n = problem.steps + 1
    assert result.C.shape == (n, 2) and result.R.shape == (n, 1) and result.chi.shape == (n, 2)
    np.testing.assert_array_equal(result.C_steps, [5, 10])
    assert np.all(np.isnan(result.C[:5, 0])) and np.all(np.isfinite(result.C[5:, 0]))
    np.testing.assert_allclose(result.C[5, 0], result.self_overlap[5])  # C[j, j] = |w_j|^2/d
    assert np.all(result.R[:3, 0] == 0) and np.all(result.chi[:1, 0] == 0)  # causality
    assert set(result.gaps) == {0.0, 2.0}
    samples = result.diagnostics["samples"]
    assert samples == round(problem.dataset.alpha * 60)
    assert result.gaps[2.0].shape == (3 * samples,)  # pooled over the seeds
    # Training error is the fraction of non-positive gaps, over the whole training set.
    assert result.train_error[-1] == pytest.approx(np.mean(result.gaps[2.0] <= 0))
    for name in ("m", "self_overlap", "C", "R", "chi", "train_loss", "train_error", "test_error"):
        assert result.stderr[name].shape == getattr(result, name).shape
    assert result.distance is None
    # One seed: no error bars, said with NaN.
    assert np.all(np.isnan(simulate(problem, small(seeds=1)).stderr["m"]))


def test_test_error_is_the_closed_form_of_each_run():
    # A contract (the simulator reports the closed form of its own m and C[k,k]); the closed
    # form itself is checked against fresh samples in test_simulator_independence.py.
    problem = dmft.Problem.from_flat(dataset="gmm3", rho=0.6, theta=0.5, loss="square", algorithm="gd", steps=10)
    result = simulate(problem, small(seeds=1))
    np.testing.assert_allclose(result.test_error, problem.dataset.test_error(result.m, result.self_overlap))


# ----------------------------------------------------------------------------- responses


@pytest.mark.physics
def test_response_normalisation_and_integrated_response():
    """R[j+1, j] = 1, chi[j+1, j] = dt, and the constant-field run integrates the pulses:
    chi[k, j] = dt sum_{i=j}^{k-1} R[k, i] (exact for the linearised runs). Identities: they
    detect any error above 1e-10 of R or chi."""
    problem = dmft.Problem.from_flat(algorithm="persistent-sgd", loss="smooth-hinge", steps=12)
    pulses = tuple(problem.dt * np.arange(3, 12))
    result = simulate(problem, small(seeds=2, response_times=pulses, chi_times=(0.3,), correlation_times=(0.3,)))
    steps = result.R_steps
    np.testing.assert_allclose(result.R[steps + 1, np.arange(len(steps))], 1.0, rtol=1e-12)
    assert result.stderr["R"][steps[0] + 1, 0] == pytest.approx(0.0, abs=1e-12)
    assert result.chi[4, 0] == pytest.approx(problem.dt, rel=1e-12)
    for k in range(4, problem.steps + 1):
        integrated = problem.dt * sum(result.R[k, a] for a, i in enumerate(steps) if i < k)
        assert result.chi[k, 0] == pytest.approx(integrated, rel=1e-10, abs=1e-12)
    # The pulse decays: the response is not identically 1.
    assert result.R[-1, 0] < 0.99


@pytest.mark.physics
def test_finite_field_twins_agree_with_linearised_runs():
    """Twin runs with a finite field eps differ from the eps -> 0 limit by O(eps): they agree
    to 20 eps = 0.002, 0.2-1% of R and chi."""
    problem = dmft.Problem.from_flat(algorithm="sgd", temperature=0.1, steps=15)
    tangent = simulate(problem, small(seeds=2))
    eps = 1e-4
    twin = simulate(problem, small(seeds=2, response_field=eps))
    # The main run is the same (up to the rounding of a BLAS product with more columns).
    np.testing.assert_allclose(tangent.m, twin.m, rtol=1e-12, atol=1e-14)
    # Second-order terms: relative size eps times the curvature scale of the loss (O(1)).
    np.testing.assert_allclose(twin.R, tangent.R, rtol=0, atol=20 * eps)
    np.testing.assert_allclose(twin.chi, tangent.chi, rtol=0, atol=20 * eps)
    assert np.max(np.abs(twin.R - tangent.R)) > 0  # genuinely a different computation


@pytest.mark.physics
def test_langevin_equilibrium_fdt():
    """Langevin at temperature T, ridge > 0: late times are stationary and in equilibrium, so
    chi[k, j] = (C[k, k] - C[k, j]) / T (docs/theory.md §6).

    FDT holds at any d for the trace-normalised quantities, so d is small and the
    statistics come from seeds (each simulated alone: per-seed residuals give an exact
    standard error) and from many reference times j in the stationary window.
    Euler-Maruyama at step dt samples a harmonic mode of curvature lam at temperature
    T / (1 - dt lam / 2): the relative O(dt) allowance is dt lam_max / 2 with lam_max
    <= ridge + max l'' |X|^2/d <= ridge + (sqrt(Delta)(1 + sqrt(alpha)) + sqrt(alpha))^2 / 4 (logistic l'' <= 1/4),
    enlarged by 10% for the finite-d fluctuation of the spectral edge.

    Power: threshold x standard error plus the O(dt) allowance is 8-9% of chi at each lag.
    """
    T, ridge, dt, alpha, delta = 0.5, 1.0, 0.01, 2.0, 0.5
    problem = dmft.Problem.from_flat(**dict(CANONICAL, algorithm="gd", temperature=T, ridge=ridge, dt=dt, steps=1100))
    # Relaxation time <= 1 / ridge = 1: stationary from t = 4 on; 25 reference times up to t = 10.
    references = tuple(np.round(np.arange(4.0, 10.0 + 1e-9, 0.25), 6))
    lags = np.array([25, 50, 100])  # t - t' = 0.25, 0.5, 1
    seeds = 16
    residuals, chis = [], []
    for seed in range(seeds):
        result = simulate(problem, SimulationOptions(dimension=60, seeds=1, seed=seed, correlation_times=references,
                                                     response_times=(), chi_times=references, gap_times=()))
        assert np.array_equal(result.C_steps, result.chi_steps)
        per_reference = []
        for a, j in enumerate(result.C_steps):
            k = j + lags
            per_reference.append(((result.self_overlap[k] - result.C[k, a]) / T, result.chi[k, a]))
        fluct, chi = np.mean(per_reference, axis=0)
        residuals.append(fluct - chi)
        chis.append(chi)
    residuals, chis = np.array(residuals), np.array(chis)
    mean, stderr = residuals.mean(axis=0), residuals.std(axis=0, ddof=1) / math.sqrt(seeds)
    lam_max = 1.1 * (ridge + (math.sqrt(delta) * (1 + math.sqrt(alpha)) + math.sqrt(alpha)) ** 2 / 4)
    chi = chis.mean(axis=0)
    allowance = dt * lam_max / 2 * chi
    assert np.all(chi > 0.1)  # a real response, not 0 = 0
    tolerance = z_threshold(seeds, comparisons=len(lags)) * stderr + allowance
    assert np.all(np.abs(mean) <= tolerance), (mean, stderr, allowance)
    assert np.all(tolerance <= POWER_RESPONSE * chi), tolerance / chi  # it would see 10% of chi


# ----------------------------------------------------------------------------- replicas


def test_replicas_distance():
    gd = simulate(dmft.Problem.from_flat(algorithm="gd", steps=10), small(replicas=2))
    assert np.all(gd.distance == 0.0)  # same data, same w_0, no noise: identical runs
    sgd = simulate(dmft.Problem.from_flat(algorithm="sgd", steps=10), small(replicas=2))
    assert sgd.distance[0] == 0.0 and np.all(sgd.distance[1:] > 0)
    assert np.all(sgd.stderr["distance"][1:] > 0)
    # The second replica does not perturb the first (up to BLAS rounding).
    single = simulate(dmft.Problem.from_flat(algorithm="sgd", steps=10), small())
    np.testing.assert_allclose(single.m, sgd.m, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- docs/theory.md §10


REFERENCE_POINTS = {  # the points of the table of docs/theory.md §10, in data/reference/finite_size.json
    "gd": dict(algorithm="gd", steps=60),
    "sgd": dict(algorithm="sgd", batch_fraction=0.3, steps=60),
    "persistent_sgd": dict(algorithm="persistent-sgd", batch_fraction=0.3, persistence_time=2.0, steps=100),
}


@pytest.mark.parametrize("point", sorted(REFERENCE_POINTS))
@pytest.mark.physics
def test_reproduces_theory_reference_numbers(point):
    """The simulator at d = 1000 (24 seeds) against the table of docs/theory.md §10 (the DMFT
    with 400 000 samples, data/make_reference.py): m, C[k,k] and the training loss at the
    final step. The errors combined are the simulation's, the table's, and the O(1/d)
    finite-size allowance measured at that step, scaled from d = 2000 to d. Each comparison
    resolves 3% of the value: a simulator whose step, noise or data law is off by a few
    percent fails here (its exact trajectories are checked in test_simulator_independence_runs.py)."""
    d, seeds = 1000, 24
    problem = dmft.Problem.from_flat(**CANONICAL, **REFERENCE_POINTS[point])
    result = simulate(problem, SimulationOptions(dimension=d, seeds=seeds, seed=11, correlation_times=(),
                                                 response_times=(), chi_times=(), gap_times=()))
    study = json.loads((DATA / "finite_size.json").read_text())
    entry, k = study["points"][point], problem.steps
    limit = z_threshold(seeds, comparisons=3)
    for name in ("m", "self_overlap", "train_loss"):
        value, error = entry["dmft_final"][name]
        assert entry[name]["check"]["index"] == [k]
        allowance = entry[name]["check"]["allowance_2000"] * study["dimension"] / d
        assert_agrees(name, getattr(result, name)[k], value, (result.stderr[name][k], error, allowance), limit, POWER)


# ----------------------------------------------------------------------------- storage


def test_save_and_load_round_trip(tmp_path):
    problem = dmft.Problem.from_flat(algorithm="sgd", temperature=0.1, steps=8)
    result = simulate(problem, small(replicas=2, gap_times=(0.4, 0.8)))
    path = tmp_path / "sim.h5"
    dmft.save(result, path)
    with pytest.raises(DmftError, match="exists"):
        dmft.save(result, path)
    loaded = load_simulation(path)
    assert loaded.problem == problem
    assert loaded.options == result.options
    for name in ("time", "m", "self_overlap", "C", "C_times", "R", "R_times", "chi", "chi_times", "train_loss",
                 "train_error", "test_error", "distance"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(result, name))
    assert loaded.stderr.keys() == result.stderr.keys()
    for t in result.gaps:
        np.testing.assert_array_equal(loaded.gaps[t], result.gaps[t])
    with h5py.File(path) as handle:
        assert handle.attrs["kind"] == KIND_SIMULATE
        assert handle.attrs["dimension"] == 60 and handle.attrs["seeds"] == 3
        for key, value in problem.flat().items():
            assert handle.attrs[key] == value
        for name in ("m_stderr", "C_stderr", "train_loss_stderr", "test_error_stderr", "gaps"):
            assert name in handle
        assert "dmft_version" in handle.attrs and "wall_time" in handle.attrs


def test_loader_refuses_other_files(tmp_path):
    with pytest.raises(DmftError, match="no such file"):
        load_simulation(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(DmftError, match="not a readable HDF5"):
        load_simulation(tmp_path / "text.h5")
    with h5py.File(tmp_path / "solve.h5", "w") as handle:
        handle.attrs["kind"] = "dmft-solve"
    with pytest.raises(DmftError, match="not a `dmft simulate` result"):
        load_simulation(tmp_path / "solve.h5")


# ----------------------------------------------------------------------------- command line


def test_cli_simulate_writes_a_file(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[problem]\nalgorithm = "sgd"\nsteps = 6\n[simulation]\nseeds = 2\ndimension = 40\n')
    output = tmp_path / "sim.h5"
    runner = CliRunner()
    outcome = runner.invoke(main, ["simulate", "--config", str(config), "--seed", "3", "--correlation-times", "0,0.3",
                                   "--replicas", "2", "-o", str(output)])
    assert outcome.exit_code == 0, outcome.output
    assert "wrote" in outcome.output and "distance" in outcome.output
    result = load_simulation(output)
    assert result.problem.steps == 6 and result.options.seeds == 2 and result.options.seed == 3
    np.testing.assert_allclose(result.C_times, [0.0, 0.3])
    # Refuses to overwrite; --overwrite replaces.
    again = runner.invoke(main, ["simulate", "--steps", "3", "-d", "20", "--seeds", "2", "-o", str(output)])
    assert again.exit_code == 2 and "exists" in again.output
    assert runner.invoke(main, ["simulate", "--steps", "3", "-d", "20", "--seeds", "2", "-o", str(output),
                                "--overwrite"]).exit_code == 0


@pytest.mark.parametrize("arguments, words", [
    (["--seeds", "0"], "seeds:"),
    (["--dimension", "-5"], "dimension:"),
    (["--correlation-times", "0.15"], "correlation_times:"),
    (["--response-times", "x"], "response_times:"),
    (["--batch-fraction", "2"], "batch_fraction:"),
    (["--replicas", "3"], "replicas:"),
    (["--response-field", "-1"], "response_field:"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, arguments, words):
    output = tmp_path / "sim.h5"
    outcome = CliRunner().invoke(main, ["simulate", "--steps", "4", "-o", str(output), *arguments])
    assert outcome.exit_code == 2
    lines = outcome.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and words in lines[0]
    assert not output.exists()
