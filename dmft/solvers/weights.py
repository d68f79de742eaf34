"""The weight side of the DMFT: deterministic, linear, causal (docs/theory.md §2).

Given kernel rows up to k, ``advance_weights`` fills A_{k+1}, m_{k+1}, R[k+1, :] and
C[k+1, :k+2] with a numba kernel that reads only the nonzero triangles.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field

import numpy as np

from ..errors import DivergenceError
from ..problem import DIVERGENCE_BOUND, Problem
from .kernels.triangles import packed_row, packed_size
from .kernels.weight_side import WEIGHTS_PARALLEL_FROM, advance_weight_rows, advance_weight_rows_serial


@dataclass
class Trajectory:
    """All two-time and one-time unknowns on the grid k = 0..N of one population.

    The symmetric C and Gamma_C (and C - C_ab, Gamma_C - Gamma_ab) are written and read by
    rows of their lower triangles during a pass; ``symmetrize`` completes them after it.
    (Writing each new column too would touch one page per element.)
    """

    A: np.ndarray
    m: np.ndarray
    R: np.ndarray
    C: np.ndarray
    Gamma_C: np.ndarray
    K: np.ndarray
    mu_hat: np.ndarray
    train_loss: np.ndarray
    train_error: np.ndarray
    # Two replicas only: Gamma_C - Gamma_ab and C - C_ab (both positive semi-definite).
    Gamma_minus: np.ndarray | None = None
    C_minus: np.ndarray | None = None
    # Smallest squared Cholesky pivot / C[k,k] met: negative values near -1e-6 mean trouble.
    min_relative_pivot: float = np.inf
    # Gap distribution y phi(h_k) of the population at recorded steps k.
    gaps: dict[int, np.ndarray] = field(default_factory=dict)
    # Memory window in steps: R[k, j] and K[k, j] are zero for k - j > memory_steps
    # (memory_steps > N: the exact equations).
    memory_steps: int = 2**62
    # The lower triangle of R again, stored by rows (kernels.triangles): the weight side
    # streams it twice per step, and each new row is written to it too. Its type is the one
    # the population's sums read R in (``start``).
    R_packed: np.ndarray | None = None
    # The lower triangles of Gamma_C (and Gamma_C - Gamma_ab) again, stored by rows: the
    # weight side reads them once per step. ``set_kernel_row`` writes both copies; after
    # changing Gamma_C otherwise, call ``pack_kernels``.
    Gamma_packed: np.ndarray | None = None
    Gamma_minus_packed: np.ndarray | None = None

    @classmethod
    def start(cls, problem: Problem, replicas: int = 1, memory_steps: int | None = None,
              R_rows_type: type = np.float64) -> "Trajectory":
        """The unknowns at k = 0 (A_0 = 1, C[0,0] = sigma0^2), every kernel zero.

        ``R_rows_type``: the type of ``R_packed``. In float32 (what the population's sums
        read R in, except in double precision) the weight side streams half the bytes for
        its two passes over R. C's closed form then takes R rounded to float32 on both
        sides of R N R^T: a Gram matrix still, 1e-7 from the float64 one.
        """
        n = problem.steps + 1
        traj = cls(
            A=np.zeros(n), m=np.zeros(n), R=square_zeros(n), C=square_zeros(n),
            Gamma_C=square_zeros(n), K=square_zeros(n), mu_hat=np.zeros(n),
            train_loss=np.full(n, np.nan), train_error=np.full(n, np.nan),
            memory_steps=n if memory_steps is None else memory_steps,
        )
        if replicas == 2:
            traj.Gamma_minus, traj.C_minus = square_zeros(n), square_zeros(n)
        traj.R_packed = np.zeros(packed_size(n), dtype=R_rows_type)
        traj.Gamma_packed = np.zeros(packed_size(n))
        traj.Gamma_minus_packed = np.zeros(packed_size(n) if replicas == 2 else 0)
        traj.A[0] = 1.0
        traj.C[0, 0] = problem.init_variance
        return traj

    def memory_start(self, k: int) -> int:
        """First j with R[k, j] and K[k, j] inside the memory window (0 without a window)."""
        return max(k - self.memory_steps, 0)

    @property
    def replicas(self) -> int:
        return 1 if self.C_minus is None else 2

    @property
    def kernel_names(self) -> tuple[str, ...]:
        return ("Gamma_C", "K", "mu_hat") + (("Gamma_minus",) if self.replicas == 2 else ())

    def set_kernel_row(self, k: int, gamma: np.ndarray, response: np.ndarray, mu_hat: float,
                       gamma_minus: np.ndarray | None = None) -> None:
        """Row k of the kernels (the lower triangles of the symmetric ones: ``symmetrize``)."""
        self.Gamma_C[k, : k + 1] = gamma
        packed_row(self.Gamma_packed, k)[:] = gamma
        self.K[k, : k + 1] = response
        self.mu_hat[k] = mu_hat
        if gamma_minus is not None:
            self.Gamma_minus[k, : k + 1] = gamma_minus
            packed_row(self.Gamma_minus_packed, k)[:] = gamma_minus

    def pack_kernels(self) -> None:
        """Copy the lower triangles of Gamma_C (and Gamma_C - Gamma_ab) into their copies
        stored by rows, which the weight side reads."""
        for k in range(self.Gamma_C.shape[0]):
            packed_row(self.Gamma_packed, k)[:] = self.Gamma_C[k, : k + 1]
            if self.Gamma_minus is not None:
                packed_row(self.Gamma_minus_packed, k)[:] = self.Gamma_minus[k, : k + 1]

    def symmetrize(self) -> None:
        """Copy the lower triangles of C and Gamma_C (and C - C_ab, Gamma_C - Gamma_ab) onto
        their upper ones, once a pass has filled the lower ones."""
        for matrix in (self.C, self.Gamma_C, self.C_minus, self.Gamma_minus):
            if matrix is not None:
                _mirror_lower(matrix)


def square_zeros(n: int) -> np.ndarray:
    """An n x n float64 array of zeros on 4 KiB pages.

    The march writes these arrays a row per step and reads them a row at a time, so large
    pages buy nothing there, while their first touch is slow whenever the kernel must
    compact memory to find free 2 MB pages (numpy asks for them for large arrays). (The
    triangles stored by rows and the sample paths, which are streamed whole every step,
    keep the large pages.)
    """
    advice = getattr(mmap, "MADV_NOHUGEPAGE", None)
    if advice is None or n * n * 8 < mmap.PAGESIZE:
        return np.zeros((n, n))
    memory = mmap.mmap(-1, n * n * 8, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # zero-filled
    memory.madvise(advice)
    return np.frombuffer(memory, dtype=np.float64).reshape(n, n)


_NO_ROWS = np.zeros((0, 0))
MIRROR_BLOCK = 256  # rows per block of _mirror_lower (whole rows and columns would stride through memory)


def _mirror_lower(matrix: np.ndarray) -> None:
    """matrix[j, i] = matrix[i, j] for j < i: the strict lower triangle onto the upper one."""
    n = matrix.shape[0]
    for start in range(0, n, MIRROR_BLOCK):
        stop = min(start + MIRROR_BLOCK, n)
        matrix[:start, start:stop] = matrix[start:stop, :start].T
        block = matrix[start:stop, start:stop]
        upper = np.triu_indices(stop - start, 1)
        block[upper] = block.T[upper]


def advance_weights(k: int, traj: Trajectory, problem: Problem, threaded: bool = True) -> None:
    """Fill step k+1 of A, m, R and row k+1 of C (and C - C_ab) from the kernel rows 0..k.

    ``threaded``: whether the run uses the threaded kernels (``population.uses_threads``);
    they run from step WEIGHTS_PARALLEL_FROM on. The same bits either way.
    """
    two = traj.C_minus is not None
    kernel = advance_weight_rows if threaded and k >= WEIGHTS_PARALLEL_FROM else advance_weight_rows_serial
    kernel(
        k, min(traj.memory_steps, k + 1), 1.0 - problem.dt * problem.ridge, problem.dt,
        2.0 * problem.algorithm.temperature * problem.dt, problem.init_variance,
        problem.algorithm.momentum, not problem.dataset.teacher, traj.K, traj.R, traj.A, traj.m, traj.mu_hat,
        traj.Gamma_packed, traj.C, traj.Gamma_minus_packed, traj.C_minus if two else _NO_ROWS, traj.R_packed,
    )
    check_finite(k + 1, traj)


def check_finite(k: int, traj: Trajectory) -> None:
    """Stop at the first step where the weights blow up, saying why."""
    value = traj.C[k, k]
    if not np.isfinite(value) or not np.isfinite(traj.m[k]):
        raise DivergenceError(k, "C or m is not finite: the dynamics diverged (try a smaller --dt)")
    if value > DIVERGENCE_BOUND:
        raise DivergenceError(k, f"|w|^2/d = {value:.3g} exceeds {DIVERGENCE_BOUND:g}: the dynamics diverged "
                                 "(step too large for the loss curvature; try a smaller --dt)")
