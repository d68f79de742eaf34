"""Wall time and peak memory of one march and one fixed-point iteration.

Persistent SGD, logistic loss, gmm2, N_s = 10^4 samples, N in {250, 500, 1000} steps.
Each case runs in its own process so peak memory (max RSS) is its own; numba compilation
is excluded by a warm-up solve. Run: python benchmarks/bench_solver.py [--steps 250 500]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

CASE = r"""
import json, resource, sys, time
import dmft
steps, method, samples = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
problem = dmft.Problem.from_flat(dataset="gmm2", alpha=2, delta=0.5, ridge=0.1, loss="logistic",
                                 algorithm="persistent-sgd", batch_fraction=0.3, persistence_time=2.0,
                                 dt=0.1, steps=steps)
options = dmft.SolverOptions(samples=samples, subpopulations=1, method=method, max_iterations=1)
dmft.solve(problem.replace(steps=5), options.__class__(**{**options.flat(), "samples": 100}))  # compile
start = time.perf_counter()
dmft.solve(problem, options)
wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_case(steps: int, method: str, samples: int) -> dict:
    output = subprocess.run([sys.executable, "-c", CASE, str(steps), method, str(samples)],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--samples", type=int, default=10_000)
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"# persistent SGD, logistic, gmm2, N_s = {args.samples}, one probe per sample")
    print(f"{'N':>6} {'march [s]':>10} {'iteration [s]':>14} {'peak march [MB]':>16} {'peak iter [MB]':>15}")
    for steps in args.steps:
        march = run_case(steps, "march", args.samples)
        iteration = run_case(steps, "iterate", args.samples)
        print(f"{steps:>6} {march['wall']:>10.2f} {iteration['wall']:>14.2f} {march['peak_mb']:>16.0f} "
              f"{iteration['peak_mb']:>15.0f}")


if __name__ == "__main__":
    main()
