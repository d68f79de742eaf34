"""The two solution methods and the two response estimators check each other."""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

import dmft
from dmft.solvers.kernels import cholesky, draws, means, weight_side
from dmft.solvers.kernels import population as population_kernels
from dmft.solvers.kernels.means import chunk_means
from dmft.solvers.kernels.paths import INT16_MAX, store_row
from dmft.solvers.population import ZETA_STEP, make_population
import compiled_kernels
from stats import POWER, POWER_RESPONSE, assert_agrees, z_threshold

SUBPOPULATIONS = 8


def sgd_problem(**changes):
    base = dict(dataset="gmm2", alpha=2, delta=0.5, ridge=0.1, loss="logistic", algorithm="persistent-sgd",
                batch_fraction=0.3, persistence_time=1.0, dt=0.1, steps=25)
    return dmft.Problem.from_flat(**{**base, **changes})


def options(**changes):
    base = dict(samples=4000, subpopulations=SUBPOPULATIONS, seed=5)
    return dmft.SolverOptions(**{**base, **changes})


def points(k):
    """The compared entries of a run of k steps: final m, C[k,k], C[k,k/2], R at lags 5 and k/2,
    the training loss at k and k/2; each with its power (tests/stats.py)."""
    return (("m", (k,), POWER), ("C", (k, k), POWER), ("C", (k, k // 2), POWER), ("R", (k, k - 5), POWER_RESPONSE),
            ("R", (k, k // 2), POWER_RESPONSE), ("train_loss", (k,), POWER), ("train_loss", (k // 2,), POWER))


def assert_agree(a, b, runs, compared):
    limit = z_threshold(runs, comparisons=len(compared))
    for name, index, power in compared:
        assert_agrees(f"{name}{list(index)}", getattr(a, name)[index], getattr(b, name)[index],
                      (a.stderr[name][index], b.stderr[name][index]), limit, power)


@pytest.mark.physics
def test_iterate_without_resampling_is_the_march_exactly():
    # One fixed set of draws: by causality the fixed point is the march's answer for them
    # (to 1e-9: any larger difference is caught).
    problem = sgd_problem()
    march = dmft.solve(problem, options(subpopulations=1))
    iterate = dmft.solve(problem, options(subpopulations=1, method="iterate", resample=False, damping=0.0,
                                          tolerance=1e-9, max_iterations=problem.steps + 2))
    assert iterate.diagnostics["converged"]
    for name in ("m", "C", "R", "A", "Gamma_C", "K", "mu_hat", "train_loss", "train_error"):
        np.testing.assert_allclose(getattr(iterate, name), getattr(march, name), rtol=0, atol=1e-9, err_msg=name)


@pytest.mark.physics
def test_iterate_with_fresh_samples_agrees_with_march_within_monte_carlo_error():
    # March: 32 subpopulations of 2000 samples; the costlier loop: 16 of 2000. Threshold 5.0
    # (15 degrees of freedom, 7 comparisons); resolution 1-2% of m, C and the loss, 0.2% of R.
    problem = sgd_problem()
    march = dmft.solve(problem, options(samples=64_000, subpopulations=32))
    iterate = dmft.solve(problem, options(samples=32_000, subpopulations=16, method="iterate", seed=6))
    assert iterate.diagnostics["converged"], iterate.diagnostics
    assert_agree(march, iterate, 16, points(problem.steps))
    residual = iterate.diagnostics["residual"][0]
    assert residual[-1] < 1.2 <= residual[0]  # it started far and stopped at the noise level


@pytest.mark.physics
def test_probe_and_exact_responses_agree_within_monte_carlo_error():
    # 32 subpopulations of 1000 samples each; threshold 4.4 (31 degrees of freedom, 8
    # comparisons); resolution 1-2% of m, C and the loss, 0.1-0.3% of R and A.
    problem = sgd_problem(steps=20)
    exact = dmft.solve(problem, options(samples=32_000, subpopulations=32, response="exact"))
    probe = dmft.solve(problem, options(samples=32_000, subpopulations=32, response="probe", seed=7))
    assert_agree(exact, probe, 32, points(problem.steps) + (("A", (problem.steps,), POWER_RESPONSE),))


@pytest.mark.physics
def test_more_probes_reduce_response_noise():
    # One pass of the population over a fixed solution (same C, R, m): the batch-means
    # standard error of the off-diagonal response row must fall with the number of probes
    # (a property of the estimator's noise, not a comparison with a reference).
    from dmft.solvers.step import PathFactors
    from dmft.solvers.population import Population
    from dmft.solvers.weights import Trajectory

    problem = sgd_problem(steps=20)
    solution = dmft.solve(problem, options(subpopulations=1))
    traj = Trajectory.start(problem)
    traj.C[:], traj.R[:], traj.m[:] = solution.C, solution.R, solution.m
    noise = {}
    for probes in (1, 8):
        population = Population(problem, 4000, np.random.SeedSequence(1), probes=probes)
        factors = PathFactors(traj)
        for k in range(problem.steps + 1):
            L_rows = factors.rows(k)
            population.draw(k)
            row = population.step(k, L_rows, traj.R[k, :k], traj.m[k], with_errors=True)
        noise[probes] = np.sqrt(np.mean(row.response_stderr[:-1] ** 2))
    assert noise[8] < 0.7 * noise[1], noise


def test_same_seed_same_numbers_whatever_the_thread_count():
    # Two populations of 10^4 samples over 41 steps, three ways: side by side on two threads
    # (serial kernels); one at a time (threaded_runs) on one thread, which leaves no threads
    # to use (serial kernels); one at a time on two threads, a threaded run, whose threaded
    # kernels run from k = 19 on, where samples x (k + 1) passes PARALLEL_THRESHOLD.
    problem = sgd_problem(steps=40)
    assert 10_000 * 20 >= population_kernels.PARALLEL_THRESHOLD
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(max(threads, 2))
        side_by_side = dmft.solve(problem, options(samples=20_000, subpopulations=2))
        with compiled_kernels.threaded_runs():
            numba.set_num_threads(1)
            single = dmft.solve(problem, options(samples=20_000, subpopulations=2))
            numba.set_num_threads(max(threads, 2))
            multi = dmft.solve(problem, options(samples=20_000, subpopulations=2))
    finally:
        numba.set_num_threads(threads)
    for name in ("m", "C", "R", "Gamma_C", "K", "train_loss"):
        np.testing.assert_array_equal(getattr(single, name), getattr(multi, name), err_msg=name)
        np.testing.assert_array_equal(getattr(side_by_side, name), getattr(multi, name), err_msg=name)
    other_seed = dmft.solve(problem, options(samples=1000, subpopulations=2, seed=99))
    assert not np.array_equal(single.C[:15, :15], other_seed.C[:15, :15])


@pytest.mark.parametrize("name", ["population_step_probe", "population_step_exact", "population_step_two_replicas",
                                  "advance_weight_rows", "draw_step", "chunk_means", "cholesky_row"])
def test_serial_kernels_are_separate_compilations(name):
    # numba names cache files after the Python function and does not key them on
    # `parallel`: two compilations of one function shared a cache entry, and the threaded
    # kernel silently ran the serial code. Each must have its own cache file and options.
    modules = {"advance_weight_rows": weight_side, "draw_step": draws, "chunk_means": means, "cholesky_row": cholesky}
    module = modules.get(name, population_kernels)
    parallel, serial = getattr(module, name), getattr(module, f"{name}_serial")
    assert parallel.targetoptions.get("parallel") is True and not serial.targetoptions.get("parallel")
    assert parallel._cache._cache_file._index_name != serial._cache._cache_file._index_name


def numbers_in_a_subprocess(output, env, seed=None) -> dict[str, str]:
    """Run compiled_kernels.py in a new process (its cache first seeded with the files listed
    in ``seed``, if given); its cache use ("compiled" or "loaded" per kernel)."""
    script = Path(__file__).parent / "compiled_kernels.py"
    command = [sys.executable, str(script), str(output)] + ([str(seed)] if seed is not None else [])
    completed = subprocess.run(command, env=env, check=True, timeout=600, capture_output=True, text=True)
    return json.loads(completed.stdout.splitlines()[-1])


@pytest.mark.physics
def test_same_numbers_from_fresh_and_cached_compilations(tmp_path):
    # The same bits (any difference fails). A kernel compiled in this process may be
    # optimised differently from the one numba loads from its cache (callees inlined or not):
    # a non-inlined helper once made a cold
    # run differ in the last bit from every warm one (233 of the 41 x 41 elements of C).
    # Double precision, so that differences are not rounded away in the float32 paths;
    # threaded runs of two populations of 10^4 samples reach the threaded kernels from step 19 on.
    # Each kernel this process uses was compiled here or loaded from numba's cache. A
    # subprocess sharing that cache loads what was compiled here (cheap); one with an empty
    # cache of its own compiles what was loaded here, and runs only if something was. So
    # every kernel is compared between a compilation and a cache load, and a suite that
    # compiled the kernels itself (fresh cache, as in CI) does not compile them twice more.
    # The empty cache is seeded with what this process compiled (and loaded nothing of):
    # the cached run compares those, and the fresh one need not compile them again.
    assert 10_000 * 20 >= population_kernels.PARALLEL_THRESHOLD
    here = compiled_kernels.numbers()
    use_here = compiled_kernels.cache_use()
    compared = {}
    cached = numbers_in_a_subprocess(tmp_path / "cached.npz", os.environ)
    assert cached and set(cached.values()) == {"loaded"}, cached  # the subprocess compiled nothing
    assert set(cached) <= set(use_here), sorted(set(cached) - set(use_here))
    if any(use_here[kernel] == "compiled" for kernel in cached):
        compared["cached"] = tmp_path / "cached.npz"
    if any(use_here[kernel] == "loaded" for kernel in cached):
        seed = tmp_path / "seed.json"
        seed.write_text(json.dumps(compiled_kernels.cache_files()))
        fresh = numbers_in_a_subprocess(tmp_path / "fresh.npz",
                                        {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}, seed)
        # Every kernel loaded here was compiled there. (Compiling a kernel also compiles the
        # functions it calls, which a cache load does not touch.)
        loaded_here = sorted(kernel for kernel in cached if use_here[kernel] == "loaded")
        assert set(cached) <= set(fresh) and all(fresh[kernel] == "compiled" for kernel in loaded_here), fresh
        compared["fresh"] = tmp_path / "fresh.npz"
    assert compared
    for output in compared.values():
        with np.load(output) as other:
            assert sorted(other.files) == sorted(here) and "C_ab_2" in other.files
            for name in other.files:
                np.testing.assert_array_equal(other[name], here[name], err_msg=name)


def test_response_structure():
    result = dmft.solve(sgd_problem(steps=10), options(samples=500, subpopulations=2))
    n = result.problem.steps
    assert np.all(np.triu(result.R) == 0)  # R[k, j] = 0 for j >= k
    np.testing.assert_array_equal(np.diagonal(result.R, offset=-1), np.ones(n))
    np.testing.assert_allclose(result.C, result.C.T)
    assert result.C[0, 0] == pytest.approx(result.problem.init_variance)
    assert result.m[0] == 0.0


@pytest.mark.physics
def test_batch_average_is_the_partial_sum_with_step_dt_over_b():
    # SGD selections do not depend on dt; with ridge = 0 and T = 0, dividing the gradient by b
    # at step dt is exactly the partial-sum dynamics at step dt / b, step for step (to 1e-10).
    b = 0.5
    averaged_problem = sgd_problem(algorithm="sgd", batch_fraction=b, ridge=0.0, batch_average=True, steps=12)
    summed_problem = averaged_problem.replace(batch_average=False, dt=averaged_problem.dt / b)
    averaged = dmft.solve(averaged_problem, options(samples=500, subpopulations=1))
    summed = dmft.solve(summed_problem, options(samples=500, subpopulations=1))
    for name in ("m", "C", "train_loss"):
        np.testing.assert_allclose(getattr(averaged, name), getattr(summed, name), atol=1e-10, err_msg=name)
    # R is per unit field time, so it scales with the step: R_avg = R_sum at the same k, j.
    np.testing.assert_allclose(averaged.R, summed.R, atol=1e-10)


@functools.cache
def double_precision_solve(steps, samples):
    """The float64 reference of the reduced-precision tests, solved once for both precisions."""
    return dmft.solve(sgd_problem(steps=steps), options(precision="double", samples=samples))


@pytest.mark.parametrize("precision, steps, samples", [("single", 40, 4000), ("compact", 40, 4000),
                                                      ("single", 400, 1000), ("compact", 400, 1000)])
@pytest.mark.physics
def test_reduced_precision_paths_reproduce_double_within_monte_carlo_error(precision, steps, samples):
    # Same draws, paths stored in float32 or 16-bit block floating point (innovations on the
    # int8 lattice in both) and summed over in float32, vs float64 throughout: rounding
    # only. The long run lets the float32 sums' round-off build up over 400 terms. (The
    # innovations' rounding, 2^-4 / sqrt(12) of each, is itself a re-draw of the same law:
    # it took the largest difference from 0.000 to 0.071 standard errors, at 400 steps.)
    # Power: a tenth of the Monte Carlo error, at every entry.
    problem = sgd_problem(steps=steps)
    reduced = dmft.solve(problem, options(precision=precision, samples=samples))
    double = double_precision_solve(steps, samples)
    for name in ("m", "C", "R", "train_loss"):
        difference = np.abs(getattr(reduced, name) - getattr(double, name))
        # far below the Monte Carlo error (a tenth of it), not just within it
        assert np.all(difference <= 0.1 * getattr(double, "stderr")[name] + 1e-9), name


@pytest.mark.parametrize("precision", ["single", "compact"])
@pytest.mark.parametrize("replicas", [1, 2])
def test_gamma_c_is_the_gram_matrix_of_the_stored_paths(precision, replicas):
    # The streaming sums run in float32, the column sums of Gamma_C in float64 on stored
    # values: Gamma_C (and Gamma_C - Gamma_ab) must be their Gram matrices to float64
    # round-off, so that C stays positive semi-definite.
    problem = sgd_problem(steps=30)
    population = make_population(problem, 700, np.random.SeedSequence(4), chunk_size=64, replicas=replicas,
                                 precision=precision)
    traj = dmft.solvers.march(problem, population)
    assert population.sums.dtype == np.float32

    def stored(f, scale):  # (samples, steps) in float64, chunk padding dropped
        paths = np.moveaxis(f * scale[:, :, None].astype(np.float64), 2, 1).reshape(-1, f.shape[1])
        return paths[: population.samples]

    a = stored(population.f, population.f_scale)
    scale = problem.dataset.alpha * problem.dataset.delta / population.samples
    if replicas == 1:
        gram, expected = traj.Gamma_C, scale * a.T @ a
    else:
        b = stored(population.f_b, population.f_b_scale)
        gram, expected = traj.Gamma_minus, scale * (a - b).T @ (a - b) / 2
    np.testing.assert_allclose(gram, expected, rtol=1e-12, atol=1e-15 * np.abs(expected).max())


def test_single_precision_innovations_are_the_double_ones_rounded_to_their_lattice():
    # Same seed: the single-precision population stores each innovation as the nearest
    # multiple of ZETA_STEP (int8), the double one as drawn.
    problem = sgd_problem(steps=5)
    single, double = (make_population(problem, 3000, np.random.SeedSequence(2), precision=precision)
                      for precision in ("single", "double"))
    for k in range(problem.steps + 1):
        single.draw(k)
        double.draw(k)
    assert single.zeta.dtype == np.int8
    rounded = single.zeta * single.zeta_step
    assert np.all(np.abs(rounded - double.zeta) <= ZETA_STEP / 2)
    assert np.any(rounded != double.zeta) and np.abs(double.zeta).max() < 127 * ZETA_STEP


def test_rounded_innovations_times_their_unit_have_variance_one_and_a_negligible_fourth_cumulant():
    # Exact moments of the stored innovation, round(zeta / ZETA_STEP) capped at +-127, from
    # the normal law's mass on each lattice cell (no sampling): ZETA_UNIT makes its variance
    # 1 (Sheppard's correction), so the paths L zeta keep the covariance C, and the
    # rounding's uniform part moves the fourth cumulant by -ZETA_STEP^4 / 120 only.
    from scipy.special import ndtr

    from dmft.solvers.population import ZETA_UNIT

    m = np.arange(-127, 128)
    upper = np.where(m == 127, np.inf, (m + 0.5) * ZETA_STEP)
    lower = np.where(m == -127, -np.inf, (m - 0.5) * ZETA_STEP)
    mass = ndtr(upper) - ndtr(lower)
    value = m * ZETA_UNIT
    variance = np.sum(mass * value**2)
    assert abs(np.sum(mass) - 1) < 1e-14 and abs(np.sum(mass * value)) < 1e-15
    assert abs(variance - 1) < 1e-13
    fourth_cumulant = np.sum(mass * value**4) - 3 * variance**2
    expected = -ZETA_STEP**4 / 120 * (ZETA_UNIT / ZETA_STEP) ** 4
    assert abs(fourth_cumulant - expected) < 1e-12 and abs(expected) < 2e-7


def test_automatic_chunks_are_the_widest_leaving_32_per_subpopulation(tmp_path):
    automatic = dmft.SolverOptions()
    widths = [automatic.chunk_width(n) for n in (100, 4095, 4096, 8191, 8192, 10**5)]
    assert widths == [64, 64, 128, 128, 256, 256]
    assert dmft.SolverOptions(chunk_size=7).chunk_width(10**5) == 7
    # The width reaches the population and the file: 2 x 4096 samples sum in chunks of 128.
    problem = sgd_problem(steps=4)
    result = dmft.solve(problem, options(samples=8192, subpopulations=2))
    explicit = dmft.solve(problem, options(samples=8192, subpopulations=2, chunk_size=128))
    other = dmft.solve(problem, options(samples=8192, subpopulations=2, chunk_size=64))
    assert result.diagnostics["chunk_width"] == 128 and result.options.chunk_size == 0
    np.testing.assert_array_equal(result.C, explicit.C)
    assert not np.array_equal(result.Gamma_C, other.Gamma_C)  # the summation order changed
    dmft.save(result, tmp_path / "chunks.h5")
    assert dmft.load(tmp_path / "chunks.h5").diagnostics["chunk_width"] == 128


@pytest.mark.parametrize("precision", ["single", "compact"])
@pytest.mark.parametrize("first", [0, 9])
def test_probe_kernel_gives_the_same_bits_for_any_grouping_of_its_chunks(precision, first):
    # The probe kernel pipelines each group of chunks (a chunk's column sums run in the next
    # one's pass over the past); the groups follow the thread count, the numbers must not.
    # Step k = 30 of 11 chunks (the last one narrow) on paths with random pasts, two probes,
    # with and without a memory window, split into 1, 2, 3, 5 and 11 groups, and serially.
    problem = sgd_problem(steps=40)
    population = make_population(problem, 650, np.random.SeedSequence(4), probes=2, chunk_size=64,
                                 precision=precision)
    rng = np.random.default_rng(5)
    k = 30
    for j in range(k + 1):
        population.draw(j)
    for paths in (population.f, population.tangents):
        paths[...] = rng.integers(-3000, 3000, paths.shape) if precision == "compact" else rng.standard_normal(
            paths.shape)
    population.f_scale[...] = rng.uniform(0.5, 2.0, population.f_scale.shape)
    L_row = rng.standard_normal(k + 1).astype(population.sum_dtype)
    R_row = rng.standard_normal(k).astype(population.sum_dtype)
    mutable = ("f", "f_scale", "tangents", "tangents_scale", "acc_gamma", "acc_response", "acc_obs", "h", "sums",
               "scratch")
    start = {name: getattr(population, name).copy() for name in mutable}

    def step(kernel, groups):
        arrays = {name: array.copy() for name, array in start.items()}
        kernel(k, first, L_row, R_row, 0.3, population.params, population.codes, population.c, population.y,
               population.selection, population.zeta, arrays["f"], arrays["f_scale"], population.probes,
               arrays["tangents"], arrays["tangents_scale"], population.chunk_starts, arrays["acc_gamma"],
               arrays["acc_response"], arrays["acc_obs"], arrays["h"], arrays["sums"], arrays["scratch"], groups)
        return arrays

    reference = step(population_kernels.population_step_probe_serial, 1)
    assert np.all(np.isfinite(reference["acc_gamma"][:, : k + 1]))
    assert np.count_nonzero(reference["acc_response"][:, first:k]) > 0
    for groups in (1, 2, 3, 5, 11):
        arrays = step(population_kernels.population_step_probe, groups)
        for name in mutable:
            np.testing.assert_array_equal(arrays[name], reference[name], err_msg=f"{name}, {groups} groups")


@pytest.mark.parametrize("kind", [dict(response="probe", probes=2), dict(response="exact"), dict(replicas=2)],
                         ids=["probes", "exact", "two-replicas"])
def test_chunk_size_changes_only_the_summation_order(kind):
    # The same draws land in chunks of other widths (7 does not divide 300: a padded last
    # chunk); in double precision the results then agree to round-off.
    problem = sgd_problem(steps=12)
    results = [dmft.solve(problem, options(samples=300, subpopulations=1, precision="double", chunk_size=size, **kind))
               for size in (64, 7)]
    names = ("m", "C", "R", "Gamma_C", "K", "train_loss", "train_error")
    for name in names:
        np.testing.assert_allclose(getattr(results[0], name), getattr(results[1], name), rtol=1e-9, atol=1e-12,
                                   err_msg=name)
    # other sums, other round-off somewhere (not necessarily in C: it once came out equal)
    assert any(not np.array_equal(getattr(results[0], name), getattr(results[1], name)) for name in names)


@pytest.mark.parametrize("magnitude", [1e-30, 1.0, 1e30])
def test_compact_rows_are_within_half_a_quantum_of_the_values(magnitude):
    # One row of 64 samples stored as int16 times one scale: each stored value is within
    # half a quantum (largest |value| / 65534) of the value, at any magnitude, and the
    # values handed back are exactly the stored ones.
    values = magnitude * np.random.default_rng(3).standard_normal(64)
    values[5] = 0.0
    original = values.copy()
    stored, scales = np.zeros((2, 64), dtype=np.int16), np.zeros(2)
    store_row(1, 64, values, stored, scales, True)
    quantum = np.abs(original).max() / INT16_MAX
    assert scales[1] == quantum and np.abs(stored[1]).max() == INT16_MAX
    assert np.all(np.abs(values - original) <= quantum / 2 * (1 + 1e-12))
    np.testing.assert_array_equal(values, stored[1] * scales[1])
    assert values[5] == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_compact_rows_carry_a_non_finite_value_into_the_scale_and_zero_rows_stay_zero(bad):
    # The solver detects a divergence by NaN reaching C or m: a compact row must pass it on.
    stored, scales = np.zeros((1, 4), dtype=np.int16), np.zeros(1)
    values = np.array([1.0, bad, -2.0, 0.5])
    store_row(0, 4, values, stored, scales, True)
    assert np.isnan(scales[0]) and np.all(np.isnan(values))
    values = np.zeros(4)
    store_row(0, 4, values, stored, scales, True)
    assert scales[0] == 0.0 and np.all(values == 0.0) and np.all(stored == 0)


@pytest.mark.parametrize("subpopulations", [1, 3])
def test_mean_and_standard_error_over_subpopulations_match_the_runs(subpopulations):
    # solve's running mean and variance (Welford, keeping the first run's arrays) against
    # numpy on the kept runs: the mean of the runs and std(ddof=1) / sqrt(n); NaN for one run.
    problem = sgd_problem(steps=15)
    result = dmft.solve(problem, options(samples=1800, subpopulations=subpopulations, keep_runs=True))
    for name in ("C", "R", "m", "A"):
        runs = np.asarray(result.diagnostics[f"{name}_runs"])
        np.testing.assert_allclose(getattr(result, name), runs.mean(axis=0), rtol=1e-12, atol=1e-15, err_msg=name)
        if subpopulations == 1:
            assert np.all(np.isnan(result.stderr[name])), name
        else:
            expected = runs.std(axis=0, ddof=1) / np.sqrt(subpopulations)
            np.testing.assert_allclose(result.stderr[name], expected, rtol=1e-9, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("n_rows, n_chunks, k", [(1, 1, 0), (2, 3, 0), (2, 40, 700), (3, 157, 1500)])
@pytest.mark.parametrize("with_errors", [False, True])
def test_kernel_rows_are_the_chunk_sums_added_in_chunk_order(n_rows, n_chunks, k, with_errors):
    # kernels.means.chunk_means (threaded over rows and blocks of 512 columns) against chunk after
    # chunk in numpy, then divided by the samples and scaled by alpha Delta: the same bits.
    # Its batch-means standard errors against numpy's, from chunk sums weighted by the
    # chunks' sizes (the last chunk of another size): the same bits too.
    acc = np.random.default_rng(k).standard_normal((n_rows, n_chunks, 1501))
    sizes = np.full(n_chunks, 64.0)
    sizes[-1] = 10_000 - 64 * (n_chunks - 1)
    out = np.full((n_rows, 1501), np.nan)
    stderr = np.full((n_rows if with_errors else 0, 1501), np.nan)
    chunk_means(acc, k, sizes, 0.7, out, stderr)
    for r, sums in enumerate(acc[:, :, : k + 1]):
        total = np.zeros(k + 1)
        for chunk in sums:
            total += chunk
        mean = total / 10_000
        np.testing.assert_array_equal(out[r, : k + 1], 0.7 * mean)
        if with_errors and n_chunks == 1:
            assert np.all(np.isnan(stderr[r, : k + 1]))  # no spread to estimate from
        elif with_errors:
            deviations = sums - sizes[:, None] * mean[None, :]
            variance = (deviations**2).sum(axis=0) * n_chunks / ((n_chunks - 1) * 10_000.0**2)
            np.testing.assert_array_equal(stderr[r, : k + 1], 0.7 * np.sqrt(variance))
    assert np.all(np.isnan(out[:, k + 1 :])) and np.all(np.isnan(stderr[:, k + 1 :]))
