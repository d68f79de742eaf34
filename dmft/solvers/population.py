"""The Monte Carlo population of effective samples (docs/theory.md §2).

Holds the random draws (labels, selection paths, Gaussian innovations, probes) and the
sample paths, and advances them one step at a time given the rows of L (Cholesky factor
of C), R and m. Both solution methods drive it the same way, step k after step k-1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from ..loss_kernels import loss_terms_array
from ..options import DEFAULT_PRECISION
from ..problem import Problem
from . import streams
from .kernels.draws import DRAW_PARALLEL_THRESHOLD, draw_step, draw_step_serial
from .kernels.layout import N_OBS, N_SCRATCH, N_SUMS, OBS_ERROR, OBS_LOSS, OBS_MU_HAT, QUANTIZE, pack_params
from .kernels.means import chunk_means, chunk_means_serial
from .kernels.population import (PARALLEL_THRESHOLD, population_step_exact, population_step_exact_serial,
                                 population_step_probe, population_step_probe_serial, population_step_two_replicas,
                                 population_step_two_replicas_serial)

# Resolution of the stored innovations zeta except in double precision (int8 units), and
# the factor that makes the rounded innovations' variance exactly 1 again: rounding a
# standard normal to the lattice ZETA_STEP Z adds an error uniform on +-ZETA_STEP/2 and
# independent of it (Sheppard; both to within exp(-2 pi^2 / ZETA_STEP^2) = exp(-5053)),
# of variance ZETA_STEP^2 / 12. The paths g = L zeta keep their covariance C exactly; the
# uniform part changes their fourth cumulant by -ZETA_STEP^4 / 120 = -1.3e-7 of the
# variance squared. |zeta| is capped at 127/16 = 7.94 (probability 2e-15 per draw).
ZETA_STEP = 2.0**-4
ZETA_UNIT = ZETA_STEP / math.sqrt(1.0 + ZETA_STEP**2 / 12.0)
# Storage type of the sample paths f and lam du for each precision option.
PATH_TYPES = {"double": np.float64, "single": np.float32, "compact": np.int16}
# Type of the streaming sums over the stored paths with probe responses (kernels.layout);
# exact responses sum in float64.
SUM_TYPES = {"double": np.float64, "single": np.float32, "compact": np.float32}
# Rows of Population.acc_rows and Population.kernel_rows.
GAMMA, RESPONSE, GAMMA_MINUS = range(3)
# A solve that runs one subpopulation at a time (``solvers.threaded_kernels``) uses the
# threaded kernels (population, draws, Cholesky row, weight side) only if its work,
# samples x (N + 1)^2 over all its populations, reaches this: about 1.7 s of the
# population kernel on one core of the reference machine, of which threads save about
# half on two cores, where compiling them costs a first run about 8 s more
# (docs/performance.md). A smaller run uses the single-threaded kernels throughout, and
# compiles nothing threaded. The numbers are the same either way.
THREADED_RUN_WORK = 5e9


def uses_threads(samples: int, steps: int) -> bool:
    """Whether a run of ``samples`` effective samples in all, over ``steps`` steps, uses the
    threaded kernels (``THREADED_RUN_WORK``); within such a run, each step still uses them
    only where its size calls for them (``Population.parallel``, ``step.factor_row``,
    ``weights.advance_weights``)."""
    return samples * (steps + 1) ** 2 >= THREADED_RUN_WORK


def draw_scheme(precision: str) -> str:
    """What the numbers of a seed depend on besides the parameters (the ``random_streams``
    attribute of a solve's file): the streams, and how the innovations are stored."""
    if precision == "double":
        return f"{streams.SCHEME}; innovations in float64"
    return f"{streams.SCHEME}; innovations rounded to multiples of {ZETA_STEP:g} (int8), times {ZETA_UNIT!r}"


@dataclass
class KernelRow:
    """Row k of the kernel estimates, with batch-means standard errors over chunks."""

    gamma: np.ndarray  # Gamma_C[k, :k+1]
    gamma_stderr: np.ndarray | None  # None unless asked for
    response: np.ndarray  # K[k, :k+1]
    response_stderr: np.ndarray | None
    mu_hat: float
    train_loss: float
    train_error: float
    gamma_minus: np.ndarray | None = None  # (Gamma_C - Gamma_ab)[k, :k+1], two replicas only


class Population:
    """N_s effective samples of one problem, seeded by a ``numpy.random.SeedSequence``.

    ``threaded``: whether it may use the threaded kernels (``solve`` decides, by
    ``solvers.threaded_kernels``; by default not).
    """

    replicas = 1
    # Kernel rows summed per chunk: Gamma_C and K (GAMMA, RESPONSE), and with two replicas
    # Gamma_C - Gamma_ab (GAMMA_MINUS).
    n_kernel_rows = 2

    def __init__(self, problem: Problem, samples: int, seed: np.random.SeedSequence,
                 response: str = "probe", probes: int = 1, chunk_size: int = 64, precision: str = DEFAULT_PRECISION,
                 threaded: bool = False):
        self.problem = problem
        self.samples = samples
        self.response = response
        rng = np.random.default_rng(seed)
        n, steps = samples, problem.steps + 1
        ds, loss, algorithm = problem.dataset, problem.loss, problem.algorithm
        self.params, self.codes = pack_params(
            problem.dt, ds.noise_variance, algorithm.gradient_divisor, loss.margin, loss.sharpness, ds.theta,
            loss.code, ds.readout_code, quantize=precision == "compact",
        )
        self.c, self.y = ds.draw_labels(rng, n)
        self.kernel_scale = ds.alpha * ds.noise_variance  # Gamma_C and K are alpha Delta E[...]
        # The draws of every step come from counter-based streams under this key (streams).
        self.stream_key = rng.integers(0, 2**32, size=2, dtype=np.uint64)  # Philox4x32's two key words
        self.switching = np.array(algorithm.switching_probabilities(problem.dt))
        self.selection = np.zeros(n)
        # Chunk-major, time-major storage (kernels.layout): array[chunk, ..., j, s] holds sample
        # chunk_starts[chunk] + s at step j; the last chunk is padded to the common width.
        self.chunk_starts = np.append(np.arange(0, n, chunk_size), n).astype(np.int64)
        n_chunks = self.chunk_starts.shape[0] - 1
        self.chunk_width = width = min(chunk_size, n)
        # Paths are stored in `precision` (PATH_TYPES; fewer bytes, less of the memory traffic
        # that bounds the march) and summed over in SUM_TYPES; Gamma_C and the observables
        # are accumulated in float64. Compact paths are block floating point: int16 with one
        # scale per chunk and step (kernels.paths.store_row); the other precisions keep scales of
        # 1. Probes are Rademacher signs (int8): unbiased like Gaussian probes, with the
        # smallest variance.
        self.dtype = PATH_TYPES[precision]
        # Exact responses are the reference for small problems: their sums stay float64.
        self.sum_dtype = np.float64 if response == "exact" else SUM_TYPES[precision]
        # Except in double precision the innovations zeta are rounded to multiples of
        # ZETA_STEP and stored as int8 (ZETA_STEP's comment): one byte read per sample and
        # past step, of the 10 (6 in compact) the population kernel reads. Each stored unit
        # stands for ZETA_UNIT in the paths' sums.
        self.zeta_dtype = np.float64 if precision == "double" else np.int8
        self.zeta_step = 1.0 if precision == "double" else ZETA_STEP
        self.zeta_unit = 1.0 if precision == "double" else ZETA_UNIT
        self.zeta = np.zeros((n_chunks, steps, width), dtype=self.zeta_dtype)
        self.f = np.zeros((n_chunks, steps, width), dtype=self.dtype)
        self.f_scale = np.ones((n_chunks, steps), dtype=self.sum_dtype)
        if response == "probe":
            self.probes = np.zeros((n_chunks, probes, steps, width), dtype=np.int8)
            # lam_i du_i per probe
            self.tangents = np.zeros((n_chunks, probes, steps, width), dtype=self.dtype)
            self.tangents_scale = np.ones((n_chunks, probes, steps), dtype=self.sum_dtype)
        else:
            self.probes = np.zeros((n_chunks, 0, 1, width), dtype=np.int8)  # none: exact responses
            # lam_i S[i, j], float64: the reference
            self.tangents = np.zeros((n_chunks, steps, steps, width))
        self.h = np.zeros(n)
        self.chunk_sizes = np.diff(self.chunk_starts).astype(float)
        # Per-chunk sums of the kernel rows, stacked so that one call turns them all into
        # means (kernels.means.chunk_means); the kernels fill them through the views.
        self.acc_rows = np.zeros((self.n_kernel_rows, n_chunks, steps))
        self.acc_gamma, self.acc_response = self.acc_rows[GAMMA], self.acc_rows[RESPONSE]
        self.acc_obs = np.zeros((n_chunks, N_OBS))
        self.sums = np.zeros((n_chunks, N_SUMS + self.replicas * self.probes.shape[1], width),
                             dtype=self.sum_dtype)
        self.scratch = np.zeros((n_chunks, N_SCRATCH, width))
        # The kernel rows of the last step and their standard errors (KernelRow's arrays are
        # views of these; the errors only when asked for, by the fixed-point loop).
        self.kernel_rows = np.zeros((self.n_kernel_rows, steps))
        self.kernel_stderrs = np.zeros((self.n_kernel_rows, steps))
        # The probe kernel's groups of chunks, serial and threaded, with numba's thread count
        # read once: read at every step, after the kernel's passes had evicted the
        # interpreter's data from the caches, it was slow.
        self.chunk_groups = (self._chunk_groups(False), self._chunk_groups(True))
        self.threaded = threaded

    @staticmethod
    def memory_bytes(samples: int, steps: int, response: str, probes: int, precision: str = DEFAULT_PRECISION) -> int:
        """Bytes of the sample-path arrays for a run of ``steps`` steps (chunk padding aside)."""
        width = np.dtype(PATH_TYPES[precision]).itemsize
        zeta_width = 8 if precision == "double" else 1
        n = steps + 1
        tangents = probes * n * (width + 1) if response == "probe" else 8 * n * n
        return samples * ((zeta_width + width) * n + tangents)

    def draw(self, k: int) -> None:
        """Draw the innovations of step k: zeta_k, the probes pi_k, the selection s(k)."""
        self._draw_step(k, 0, self.zeta, self.probes, self.selection)

    def _draw_step(self, k: int, replica: int, zeta: np.ndarray, probes: np.ndarray, selection: np.ndarray) -> None:
        """Store zeta_k and the probes pi_k of one replica, and advance its selection to s(k)."""
        parallel = self.threaded and self.samples >= DRAW_PARALLEL_THRESHOLD
        draw = draw_step if parallel else draw_step_serial
        draw(k, self.stream_key, replica, self.switching, self.zeta_step, zeta, probes, selection)

    def step(self, k: int, L_rows: tuple[np.ndarray, ...], R_row: np.ndarray, m_k: float,
             with_errors: bool = False, first: int = 0) -> KernelRow:
        """Advance all samples to step k (after ``draw(k)``) and estimate kernel row k.

        ``L_rows`` holds row k of the Cholesky factor of C (one replica). ``with_errors``
        adds the batch-means standard errors of the rows (the fixed-point loop needs them).
        ``first``: the memory window; R[k, j] and K[k, j] are taken as zero for j < first.
        """
        (L_row,), R_row = self._sum_rows(L_rows, R_row)
        args = (k, first, L_row, R_row, float(m_k), self.params, self.codes, self.c, self.y,
                self.selection, self.zeta, self.f, self.f_scale)
        accumulators = (self.chunk_starts, self.acc_gamma, self.acc_response, self.acc_obs, self.h, self.sums,
                        self.scratch)
        parallel = self.parallel(k)
        if self.response == "probe":
            step = population_step_probe if parallel else population_step_probe_serial
            groups = self.chunk_groups[parallel]
            step(*args, self.probes, self.tangents, self.tangents_scale, *accumulators, groups)
        else:
            step = population_step_exact if parallel else population_step_exact_serial
            step(*args, self.probes, self.tangents, *accumulators)
        return self._kernel_row(k, with_errors=with_errors)

    def parallel(self, k: int) -> bool:
        """Whether step k runs on the threaded kernels (the same numbers either way)."""
        return self.threaded and self.samples * (k + 1) >= PARALLEL_THRESHOLD

    def _chunk_groups(self, parallel: bool) -> int:
        """Groups of chunks of the probe kernel, each pipelined (a chunk's column sums run in
        the next one's pass over the past: ``kernels.population.population_step_probe``).

        Compact paths: one group per thread. The others: one per chunk, no pipeline. Their f
        blocks are twice as large and, re-read a chunk later, came from farther in the cache
        hierarchy: the pipeline was no faster for them. The numbers do not depend on the groups.
        """
        n_chunks = self.chunk_starts.shape[0] - 1
        if self.codes[QUANTIZE] == 1:
            return min(numba.get_num_threads(), n_chunks) if parallel else 1
        return n_chunks

    def _sum_rows(self, L_rows: tuple[np.ndarray, ...], R_row: np.ndarray
                  ) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """The rows of L (times zeta_unit: ``ZETA_UNIT``) and of R in the type of the
        kernels' streaming sums."""
        return (tuple(np.multiply(row, self.zeta_unit, dtype=self.sum_dtype) for row in L_rows),
                R_row.astype(self.sum_dtype, copy=False))

    def _kernel_row(self, k: int, with_errors: bool = False) -> KernelRow:
        """Row k of the kernels from the per-chunk sums. Its arrays are views of buffers that
        the next step overwrites."""
        stderrs = self.kernel_stderrs if with_errors else self.kernel_stderrs[:0]  # no rows: none
        means = chunk_means if self.parallel(k) else chunk_means_serial
        means(self.acc_rows, k, self.chunk_sizes, self.kernel_scale, self.kernel_rows, stderrs)
        rows, errors = self.kernel_rows[:, : k + 1], stderrs[:, : k + 1]
        gamma, response = rows[GAMMA], rows[RESPONSE]
        gamma_minus = rows[GAMMA_MINUS] if self.replicas == 2 else None
        gamma_se, response_se = (errors[GAMMA], errors[RESPONSE]) if with_errors else (None, None)
        obs = self.acc_obs.sum(axis=0) / self.samples
        return KernelRow(
            gamma_minus=gamma_minus,
            gamma=gamma,
            gamma_stderr=gamma_se,
            response=response,
            response_stderr=response_se,
            mu_hat=self.problem.dataset.alpha * obs[OBS_MU_HAT],
            train_loss=obs[OBS_LOSS],
            train_error=obs[OBS_ERROR],
        )

    def gaps(self) -> np.ndarray:
        """y phi(h) of every sample at the last step taken."""
        loss, ds = self.problem.loss, self.problem.dataset
        return loss_terms_array(loss.code, ds.readout_code, loss.margin, loss.sharpness, ds.theta, self.y, self.h)[3]


class TwoReplicaPopulation(Population):
    """Effective samples carrying two replicas: same (c, y) and w_0, independent selections
    and Langevin noise (docs/theory.md §7). Random-probe responses only."""

    replicas = 2
    n_kernel_rows = 3

    def __init__(self, problem: Problem, samples: int, seed: np.random.SeedSequence,
                 response: str = "probe", probes: int = 1, chunk_size: int = 64, precision: str = DEFAULT_PRECISION,
                 threaded: bool = False):
        super().__init__(problem, samples, seed, "probe", probes, chunk_size, precision, threaded)
        n = samples
        self.zeta_minus = np.zeros_like(self.zeta)
        self.f_b = np.zeros_like(self.f)
        self.f_b_scale = np.ones_like(self.f_scale)
        self.tangents_b_scale = np.ones_like(self.tangents_scale)
        self.probes_b = np.zeros_like(self.probes)
        self.tangents_b = np.zeros_like(self.tangents)
        self.selection_b = np.zeros(n)
        self.h_b = np.zeros(n)
        self.acc_gamma_minus = self.acc_rows[GAMMA_MINUS]

    @staticmethod
    def memory_bytes(samples: int, steps: int, response: str, probes: int, precision: str = DEFAULT_PRECISION) -> int:
        return 2 * Population.memory_bytes(samples, steps, "probe", probes, precision)

    def draw(self, k: int) -> None:
        super().draw(k)  # zeta+ (in self.zeta), replica a's probes and selection
        self._draw_step(k, 1, self.zeta_minus, self.probes_b, self.selection_b)

    def step(self, k: int, L_rows: tuple[np.ndarray, ...], R_row: np.ndarray, m_k: float,
             with_errors: bool = False, first: int = 0) -> KernelRow:
        """``L_rows`` = (row k of the factor of C + C_ab, row k of the factor of C - C_ab)."""
        (L_plus_row, L_minus_row), R_row = self._sum_rows(L_rows, R_row)
        parallel = self.parallel(k)
        step = population_step_two_replicas if parallel else population_step_two_replicas_serial
        step(
            k, first, L_plus_row, L_minus_row, R_row, float(m_k), self.params, self.codes, self.c, self.y,
            self.selection, self.selection_b, self.zeta, self.zeta_minus, self.f, self.f_b, self.f_scale,
            self.f_b_scale, self.probes, self.probes_b, self.tangents, self.tangents_b, self.tangents_scale,
            self.tangents_b_scale, self.chunk_starts,
            self.acc_gamma, self.acc_gamma_minus, self.acc_response, self.acc_obs, self.h, self.h_b, self.sums,
            self.scratch,
        )
        return self._kernel_row(k, with_errors)


def make_population(problem: Problem, samples: int, seed: np.random.SeedSequence, response: str = "probe",
                    probes: int = 1, chunk_size: int = 64, replicas: int = 1, precision: str = DEFAULT_PRECISION,
                    threaded: bool = False) -> Population:
    """A one- or two-replica population (``threaded``: as ``Population``'s)."""
    kind = TwoReplicaPopulation if replicas == 2 else Population
    return kind(problem, samples, seed, response, probes, chunk_size, precision, threaded)
