"""Wall time and peak memory of the DMFT solver (issues 2 and 7).

Persistent SGD (b = 0.3, tau = 2), logistic loss, gmm2, N_s = 10^4 samples, one probe per
sample, one subpopulation. Each case runs in its own process, so peak memory (max RSS) is
its own; numba compilation is excluded by a warm-up solve (the cache is warm after it).

    python benchmarks/bench_solver.py                 # N in {250, 500, 1000}: march, one iteration
    python benchmarks/bench_solver.py --targets       # W1, W2 and the fitted exponents (minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

import numpy as np

CASE = r"""
import json, resource, sys, time
import dmft
steps, method, samples = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
problem = dmft.Problem.from_flat(dataset="gmm2", alpha=2, delta=0.5, ridge=0.1, loss="logistic",
                                 algorithm="persistent-sgd", batch_fraction=0.3, persistence_time=2.0,
                                 dt=0.1, steps=steps)
options = dmft.SolverOptions(samples=samples, subpopulations=1, method=method, max_iterations=1, keep_runs=False)
# Compile or load both the serial and the threaded kernels (the threaded ones run from
# samples x (k + 1) >= PARALLEL_THRESHOLD on), outside the timed solve.
dmft.solve(problem.replace(steps=30), dmft.SolverOptions(**{**options.flat(), "samples": 20000}))
start = time.perf_counter()
dmft.solve(problem, options)
wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_case(steps: int, method: str, samples: int) -> dict:
    output = subprocess.run([sys.executable, "-c", CASE, str(steps), method, str(samples)],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def header(samples: int) -> None:
    import numba

    print(f"# {platform.machine()}, {os.cpu_count()} cores, numba {numba.__version__} with "
          f"{numba.config.NUMBA_NUM_THREADS} threads, python {platform.python_version()}")
    print(f"# persistent SGD b=0.3 tau=2, logistic, gmm2, N_s = {samples}, one probe, float32 paths")


def table(steps_list: list[int], samples: int) -> None:
    print(f"{'N':>6} {'march [s]':>10} {'iteration [s]':>14} {'iter/march':>11} {'peak march [MB]':>16}")
    for steps in steps_list:
        march = run_case(steps, "march", samples)
        iteration = run_case(steps, "iterate", samples)
        print(f"{steps:>6} {march['wall']:>10.2f} {iteration['wall']:>14.2f} "
              f"{iteration['wall'] / march['wall']:>11.2f} {march['peak_mb']:>16.0f}")


def targets(samples: int) -> None:
    steps_list = [500, 1000, 2000, 4000]
    rows = {steps: run_case(steps, "march", samples) for steps in steps_list}
    print(f"{'N':>6} {'march [s]':>10} {'peak [MB]':>10}")
    for steps, row in rows.items():
        print(f"{steps:>6} {row['wall']:>10.2f} {row['peak_mb']:>10.0f}")
    n = np.array(steps_list, dtype=float)
    wall = np.array([rows[s]["wall"] for s in steps_list])
    memory = np.array([rows[s]["peak_mb"] for s in steps_list])
    print(f"fitted exponent of time in N:   {np.polyfit(np.log(n), np.log(wall), 1)[0]:.2f} (target 2)")
    print(f"fitted exponent of memory in N: {np.polyfit(np.log(n[1:]), np.log(memory[1:]), 1)[0]:.2f} "
          "(N_s N + N^2: between 1 and 2)")
    print(f"W1 (N = 1000): {rows[1000]['wall']:.2f} s (target <= 1.5 s)")
    print(f"W2 (N = 4000): {rows[4000]['wall']:.2f} s, {rows[4000]['peak_mb'] / 1024:.2f} GB (target <= 30 s, <= 8 GB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--targets", action="store_true", help="W1, W2 and exponents over N in {500..4000}")
    args = parser.parse_args()
    header(args.samples)
    if args.targets:
        targets(args.samples)
    else:
        table(args.steps, args.samples)


if __name__ == "__main__":
    main()
