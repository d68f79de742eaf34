"""The weight-side and Cholesky kernels against plain numpy, and their thread independence.

They split their sums into blocks of R_BLOCK rows or columns handed to threads; the sizes
here span several blocks, so the blocking and the order partials are added in are tested.
"""

import mmap
from pathlib import Path

import numba
import numpy as np
import pytest

import dmft
from dmft.solvers.kernels.cholesky import cholesky_row, diagonal_blocks
from dmft.solvers.kernels.triangles import R_BLOCK, packed_size
from dmft.solvers.kernels.weight_side import FOUR_ROWS_FROM, advance_weight_rows, advance_weight_rows_serial
from dmft.solvers.march import march
from dmft.solvers.population import make_population
from dmft.solvers.weights import MIRROR_BLOCK, Trajectory, _mirror_lower

# Five blocks, the last one partial; the rows of the last reach past FOUR_ROWS_FROM, so
# the scatter passes run both one row and four rows per sweep.
K_STEP = FOUR_ROWS_FROM + 37
SIZE = K_STEP + 2


def weight_inputs(two_replicas: bool, seed: int = 0, window: int = SIZE, decay: float = 0.99, dt: float = 0.1,
                  langevin: float = 0.02, init_variance: float = 0.7) -> dict:
    """Random kernels, and weights up to step K_STEP that solve the weight side for them.

    A, m and R follow the recursions of docs/theory.md §2 in numpy; C (and C - C_ab) rows up to K_STEP its
    closed form, lower triangles only, as during a pass. With a memory window, K and R vanish
    more than ``window`` steps back (R then random).
    """
    rng = np.random.default_rng(seed)
    n = SIZE

    def gram(scale):
        x = rng.standard_normal((n, 40))
        return scale * x @ x.T / 40

    inputs = dict(
        K=np.tril(rng.standard_normal((n, n))) * 0.01,
        R=np.tril(rng.standard_normal((n, n)), -1) * 0.05,
        A=rng.standard_normal(n),
        m=rng.standard_normal(n),
        mu_hat=rng.standard_normal(n),
        Gamma=gram(1.0),
        C=np.zeros((n, n)),
        Gamma_minus=gram(0.3) if two_replicas else np.zeros((0, 0)),
        C_minus=np.zeros((n, n)) if two_replicas else np.zeros((0, 0)),
    )
    # Some zero response weights, as under a frozen selection (the kernel skips them).
    inputs["K"][K_STEP, ::7] = 0.0
    lag = np.subtract.outer(np.arange(n), np.arange(n))
    inputs["K"][lag > window] = 0.0
    inputs["R"][lag > window] = 0.0
    if window > K_STEP:
        solve_weights_in_numpy(inputs, decay, dt, langevin, init_variance)
    return inputs


def solve_weights_in_numpy(inputs: dict, decay: float, dt: float, langevin: float, init_variance: float) -> None:
    K, A, m, R = inputs["K"], inputs["A"], inputs["m"], inputs["R"]
    A[:], m[:], R[:] = 0.0, 0.0, 0.0
    A[0] = 1.0
    for k in range(K_STEP):
        A[k + 1] = decay * A[k] - dt * K[k, : k + 1] @ A[: k + 1]
        m[k + 1] = decay * m[k] - dt * inputs["mu_hat"][k] - dt * K[k, : k + 1] @ m[: k + 1]
        R[k + 1, : k + 1] = decay * R[k, : k + 1] - dt * K[k, 1 : k + 1] @ R[1 : k + 1, : k + 1]
        R[k + 1, k] = 1.0
    rows = slice(0, K_STEP + 1)
    for gamma, covariance, plain in ((inputs["Gamma"], inputs["C"], True),
                                     (inputs["Gamma_minus"], inputs["C_minus"], False)):
        if gamma.shape[0]:
            closed_form = R[rows, rows] @ (dt**2 * gamma[rows, rows] + langevin * np.eye(K_STEP + 1)) @ R[rows, rows].T
            if plain:
                closed_form += init_variance * np.outer(A[rows], A[rows]) + np.outer(m[rows], m[rows])
            covariance[rows, rows] = np.tril(closed_form)


def by_rows(M: np.ndarray) -> np.ndarray:
    """The lower triangle of square M stored by rows (kernels.triangles.packed_row)."""
    return M[np.tril_indices(M.shape[0])]  # row-major order: row 0, then row 1, ...


def square(packed: np.ndarray, n: int) -> np.ndarray:
    """The n x n lower-triangular matrix whose rows ``packed`` stores (the inverse of by_rows)."""
    M = np.zeros((n, n))
    M[np.tril_indices(n)] = packed
    return M


def advance(inputs: dict, k: int = K_STEP, decay: float = 0.99, dt: float = 0.1, langevin: float = 0.02,
            init_variance: float = 0.7, kernel=advance_weight_rows, window: int = SIZE, momentum: float = 0.0,
            mean_feedback: bool = True) -> dict:
    out = {name: value.copy() for name, value in inputs.items()}
    R_packed = by_rows(out["R"])
    kernel(k, window, decay, dt, langevin, init_variance, momentum, mean_feedback, out["K"], out["R"], out["A"],
           out["m"], out["mu_hat"], by_rows(out["Gamma"]), out["C"], by_rows(out["Gamma_minus"]), out["C_minus"],
           R_packed)
    # The kernel reads earlier rows of R from its copy stored by rows and writes the new row to both.
    np.testing.assert_array_equal(R_packed, by_rows(out["R"]))
    return out


@pytest.mark.parametrize("kernel", [advance_weight_rows, advance_weight_rows_serial],
                         ids=["threaded", "serial"])
@pytest.mark.parametrize("two_replicas", [False, True])
# A window of 300 steps spans two blocks of rows and starts inside one.
@pytest.mark.parametrize("window", [SIZE, 300], ids=["exact", "memory window"])
# Momentum and the teacher-student mean (no K on m): docs/theory.md §2.7-2.8. A dropped or
# misplaced momentum term, or a K term left on the teacher's m, moves these rows by O(beta).
@pytest.mark.parametrize("momentum, mean_feedback", [(0.0, True), (0.6, True), (0.6, False)],
                         ids=["plain", "momentum", "momentum, teacher"])
def test_weight_rows_match_the_equations_in_numpy(two_replicas, kernel, window, momentum, mean_feedback):
    k, decay, dt, langevin, init_variance = K_STEP, 0.99, 0.1, 0.02, 0.7
    inputs = weight_inputs(two_replicas, window=window, decay=decay, dt=dt, langevin=langevin,
                           init_variance=init_variance)
    out = advance(inputs, k, decay, dt, langevin, init_variance, kernel, window, momentum, mean_feedback)
    K, R, A, m = inputs["K"], inputs["R"], inputs["A"], inputs["m"]
    A_next = decay * A[k] - dt * K[k, : k + 1] @ A[: k + 1] + momentum * (A[k] - A[k - 1])
    m_next = (decay * m[k] - dt * inputs["mu_hat"][k] - mean_feedback * dt * K[k, : k + 1] @ m[: k + 1]
              + momentum * (m[k] - m[k - 1]))
    # R[k+1, i] = decay R[k, i] - dt sum_{i<j<=k} K[k, j] R[j, i] + beta (R[k, i] - R[k-1, i]);
    # R[k+1, k] = 1.
    R_next = (decay * R[k, : k + 1] - dt * K[k, 1 : k + 1] @ R[1 : k + 1, : k + 1]
              + momentum * (R[k, : k + 1] - R[k - 1, : k + 1]))
    R_next[k] = 1.0
    R_next[: max(k + 1 - window, 0)] = 0.0  # outside the window
    np.testing.assert_allclose(out["A"][k + 1], A_next, rtol=1e-12)
    np.testing.assert_allclose(out["m"][k + 1], m_next, rtol=1e-12)
    np.testing.assert_allclose(out["R"][k + 1, : k + 1], R_next, rtol=1e-10, atol=1e-14)
    R_rows = out["R"][: k + 2, : k + 1]
    for gamma, covariance, plain in ((inputs["Gamma"], out["C"], True), (inputs["Gamma_minus"], out["C_minus"], False)):
        if gamma.shape[0] == 0:
            continue
        noise = (dt**2 * gamma[: k + 1, : k + 1] + langevin * np.eye(k + 1)) @ R_next
        expected = R_rows @ noise
        if plain:
            expected += init_variance * A_next * out["A"][: k + 2] + m_next * out["m"][: k + 2]
        np.testing.assert_allclose(covariance[k + 1, : k + 2], expected, rtol=1e-10, atol=1e-14)
        assert not np.any(covariance[: k + 1, k + 1])  # a row of the lower triangle only


def psd_with_null_directions(n: int, rank: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, rank))
    return x @ x.T / rank


def factor(C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = C.shape[0]
    packed, blocks = np.zeros(packed_size(n)), diagonal_blocks(n)
    pivots = np.array([cholesky_row(C, packed, blocks, k, 1e-8) for k in range(n)])
    return square(packed, n), pivots


def test_cholesky_rows_match_numpy_on_a_full_rank_matrix():
    C = psd_with_null_directions(SIZE, 2 * SIZE) + 0.1 * np.eye(SIZE)
    L, _ = factor(C)
    np.testing.assert_allclose(L, np.linalg.cholesky(C), rtol=1e-9, atol=1e-12)


def test_cholesky_rows_reproduce_a_rank_deficient_matrix():
    # Rank 300 of 1063: the rows beyond the rank get zero pivots and L L^T is still C.
    C = psd_with_null_directions(SIZE, 300)
    L, _ = factor(C)
    assert np.count_nonzero(np.diagonal(L)) == 300
    np.testing.assert_allclose(L @ L.T, C, atol=1e-9 * np.abs(C).max())


def test_weight_side_and_cholesky_give_the_same_bits_on_one_and_two_threads():
    threads = numba.get_num_threads()
    C = psd_with_null_directions(SIZE, 300)
    try:
        results = []
        for count in (1, max(threads, 2)):
            numba.set_num_threads(count)
            results.append((advance(weight_inputs(True)), factor(C)[0]))
    finally:
        numba.set_num_threads(threads)
    (weights_1, L_1), (weights_2, L_2) = results
    for name in ("A", "m", "R", "C", "C_minus"):
        np.testing.assert_array_equal(weights_1[name], weights_2[name], err_msg=name)
    np.testing.assert_array_equal(L_1, L_2)


def _vm_flags(address: int) -> list[str]:
    """The VmFlags of the mapping of this process that holds ``address`` (Linux)."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            start, end = (int(part, 16) for part in head.split("-"))
            inside = start <= address < end
        elif inside and head == "VmFlags:":
            return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")


def test_square_arrays_start_as_writable_zeros_on_small_pages():
    # The march writes them a row per step: on 4 KiB pages (weights.square_zeros), not on the
    # 2 MB pages numpy asks for, whose first touch is slow when memory must be compacted.
    problem = dmft.Problem.from_flat(dataset="gmm2", steps=299)
    traj = Trajectory.start(problem, replicas=2)
    for name in ("C", "R", "Gamma_C", "K", "C_minus", "Gamma_minus"):
        matrix = getattr(traj, name)
        assert matrix.shape == (300, 300) and matrix.dtype == np.float64 and matrix.flags.c_contiguous, name
        assert matrix.flags.writeable and np.count_nonzero(matrix) == (name == "C"), name  # C[0,0] = sigma0^2
        if hasattr(mmap, "MADV_NOHUGEPAGE") and Path("/proc/self/smaps").exists():
            assert "nh" in _vm_flags(matrix.ctypes.data), name  # VM_NOHUGEPAGE
    assert traj.C[0, 0] == problem.init_variance


def test_lower_triangles_are_mirrored_whole():
    # Passes write rows of the lower triangles only; Trajectory.symmetrize completes them
    # by blocks of rows (three here, the last one partial).
    n = 2 * MIRROR_BLOCK + 37
    lower = np.tril(np.random.default_rng(3).standard_normal((n, n)))
    matrix = lower.copy()
    _mirror_lower(matrix)
    np.testing.assert_array_equal(matrix, lower + np.tril(lower, -1).T)


@pytest.mark.parametrize("method", ["march", "iterate"])
@pytest.mark.parametrize("replicas", [1, 2])
def test_solved_covariances_and_kernels_are_exactly_symmetric(method, replicas):
    problem = dmft.Problem.from_flat(dataset="gmm2", algorithm="sgd", batch_fraction=0.3, dt=0.1, steps=12)
    result = dmft.solve(problem, dmft.SolverOptions(samples=600, subpopulations=2, method=method, replicas=replicas,
                                                    max_iterations=3))
    for name in ("C", "Gamma_C") + (("C_ab",) if replicas == 2 else ()):
        matrix = getattr(result, name)
        np.testing.assert_array_equal(matrix, matrix.T, err_msg=name)
        assert np.all(np.diagonal(matrix, offset=1) != 0.0), name  # the upper triangle is filled


@pytest.mark.parametrize("precision, rows_type", [("single", np.float32), ("double", np.float64)])
@pytest.mark.parametrize("replicas", [1, 2])
@pytest.mark.physics
def test_march_covariance_is_the_closed_form_of_its_own_responses(replicas, precision, rows_type):
    # The closed form of C (and C - C_ab) of docs/theory.md §2 from the march's own R (as stored), Gamma_C
    # (Gamma_C - Gamma_ab), A and m, in numpy, with SGD noise, Langevin noise, a ridge and a nonzero init
    # variance, over three blocks of rows: what the blocked, threaded kernel makes row by row.
    dt, temperature, init_variance = 0.1, 0.05, 0.7
    problem = dmft.Problem.from_flat(dataset="gmm2", algorithm="sgd", batch_fraction=0.3, ridge=0.2, dt=dt,
                                     temperature=temperature, init_variance=init_variance,
                                     steps=2 * R_BLOCK + 40)
    population = make_population(problem, 2000, np.random.SeedSequence(5), replicas=replicas, precision=precision,
                                 threaded=True)  # a threaded run however small
    traj = march(problem, population)
    A, m = traj.A, traj.m
    # C takes R as the weight side stores it by rows: in the type the population's sums
    # read it in, the march's R rounded to it.
    R = square(traj.R_packed, len(A))
    assert traj.R_packed.dtype == rows_type
    np.testing.assert_array_equal(R, traj.R.astype(rows_type))
    pairs = [(traj.C, traj.Gamma_C, True)] + ([(traj.C_minus, traj.Gamma_minus, False)] if replicas == 2 else [])
    for covariance, gamma, plain in pairs:
        closed_form = R @ (dt**2 * gamma + 2 * temperature * dt * np.eye(len(A))) @ R.T
        if plain:
            closed_form += init_variance * np.outer(A, A) + np.outer(m, m)
        np.testing.assert_allclose(covariance, closed_form, rtol=0, atol=1e-12 * np.abs(closed_form).max())


@pytest.mark.physics
def test_square_loss_gd_covariance_stays_positive_semidefinite():
    # Square-loss GD has smooth paths: C has numerical rank ~5 and most squared Cholesky
    # pivots are round-off. Over eight seeds, with the pivot threshold of 1e-8 of C[k,k]
    # used before, four runs lost positive semi-definiteness (step.PIVOT_THRESHOLD); a
    # recursion for the rows of C, tried instead of the closed form, failed too. The
    # pivots must stay non-negative to round-off, for every seed.
    problem = dmft.Problem.from_flat(dataset="gmm2", algorithm="gd", loss="square", ridge=0.0, dt=0.1, steps=400)
    for seed in range(8):
        result = dmft.solve(problem, dmft.SolverOptions(samples=1000, subpopulations=1, seed=seed))
        assert result.diagnostics["min_relative_pivot"] > -1e-9, seed
