"""Wall time of the DMFT solution vs finite-d simulation at equal statistical error on m(t_N).

    python benchmarks/bench_simulate_vs_dmft.py [--samples 20000] [--dimensions 500,1000,2000] [--seeds 8]

One canonical point (THEORY.md section 8: gmm2, alpha = 2, Delta = 0.5, logistic,
ridge 0.1, dt 0.1, SGD b = 0.3, 60 steps). The DMFT is solved once with ``--samples``
effective samples; its standard error on m at the final time is the target. Each
simulation runs ``--seeds`` seeds; since its standard error falls as 1/sqrt(seeds),
the time to reach the target is time/seed * seeds * (se / target)^2 (the finite-d bias,
O(1/d), is not part of this: see data/make_reference.py for its size). Time is
measured with responses off (the DMFT always computes R, the simulator would need
one extra run per response time).
"""

from __future__ import annotations

import argparse
import time

import dmft
from dmft.simulate import SimulationOptions, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--subpopulations", type=int, default=10)
    parser.add_argument("--dimensions", default="500,1000,2000")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--algorithm", default="sgd", choices=["gd", "sgd", "persistent-sgd"])
    args = parser.parse_args()

    problem = dmft.Problem.from_flat(algorithm=args.algorithm, batch_fraction=0.3, steps=60)
    k = problem.steps
    # Warm-up: load the numba caches before timing.
    dmft.solve(problem.replace(steps=2), dmft.SolverOptions(samples=100, subpopulations=2))
    simulate(problem.replace(steps=2), SimulationOptions(dimension=20, seeds=1))
    start = time.perf_counter()
    theory = dmft.solve(problem, dmft.SolverOptions(samples=args.samples, subpopulations=args.subpopulations))
    dmft_time = time.perf_counter() - start
    target = theory.stderr["m"][k]

    rows = [("DMFT", f"N_s = {args.samples}", dmft_time, theory.m[k], target, dmft_time)]
    for d in (int(x) for x in args.dimensions.split(",")):
        options = SimulationOptions(dimension=d, seeds=args.seeds, correlation_times=(), response_times=(),
                                    chi_times=(), gap_times=())
        start = time.perf_counter()
        result = simulate(problem, options)
        elapsed = time.perf_counter() - start
        error = result.stderr["m"][k]
        rows.append(("simulation", f"d = {d}, {args.seeds} seeds", elapsed, result.m[k], error,
                     elapsed * (error / target) ** 2))

    print(f"{args.algorithm}, {k} steps: time to reach se(m(t_N)) = {target:.2g} (the DMFT's)")
    print(f"{'method':<12}{'setting':<22}{'wall time':>11}{'m(t_N)':>10}{'se':>10}{'time at equal se':>18}")
    for method, setting, elapsed, m, error, equal in rows:
        print(f"{method:<12}{setting:<22}{elapsed:>10.2f}s{m:>10.4f}{error:>10.2g}{equal:>17.1f}s")


if __name__ == "__main__":
    main()
