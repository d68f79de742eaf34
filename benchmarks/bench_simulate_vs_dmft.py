"""Wall time of the DMFT against finite-d simulation at equal statistical error.

    python benchmarks/bench_simulate_vs_dmft.py [--samples 5000,20000,80000] [--dimensions 500,1000,2000] [--seeds 8]

One canonical point (docs/theory.md §10: gmm2, alpha = 2, Delta = 0.5, logistic, ridge
0.1, dt 0.1, SGD b = 0.3, 60 steps). Every solve and simulation is timed warm: each
configuration runs once untimed first, so numba's compilation (a one-off, measured by
benchmarks/bench_cli.py) is not counted.

For each observable X among m(t_N), C(t_N, t_N) and the training loss at t_N, the time a
method needs to reach the standard error of the largest DMFT population is its wall time
times (se / target)^2: the standard error of a mean over independent runs (subpopulations,
seeds) falls as one over the square root of the work. The table prints those times and
the speed ratio simulation / DMFT, per dimension. (The finite-d bias, O(1/d), is not part
of this: see data/make_reference.py for its size.) Simulations run with responses off
(the DMFT always computes R; the simulator would need one extra run per response time).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import dmft
from dmft.simulation_options import SimulationOptions

OBSERVABLES = ("m", "C", "train_loss")


def final_errors(result, k: int) -> dict[str, float]:
    return {"m": result.stderr["m"][k], "C": result.stderr["C"][k, k], "train_loss": result.stderr["train_loss"][k]}


def warm_time(run: Callable[[], object]) -> tuple[float, object]:
    run()  # compiles or loads the kernels this configuration needs
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", default="5000,20000,80000", help="DMFT population sizes")
    parser.add_argument("--subpopulations", type=int, default=10)
    parser.add_argument("--dimensions", default="500,1000,2000")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--algorithm", default="sgd", choices=["gd", "sgd", "persistent-sgd"])
    args = parser.parse_args()

    problem = dmft.Problem.from_flat(algorithm=args.algorithm, batch_fraction=0.3, steps=60)
    k = problem.steps
    rows = []
    for samples in (int(x) for x in args.samples.split(",")):
        options = dmft.SolverOptions(samples=samples, subpopulations=args.subpopulations)
        elapsed, result = warm_time(lambda: dmft.solve(problem, options))
        rows.append(("DMFT", f"N_s = {samples}", elapsed, final_errors(result, k)))
    for d in (int(x) for x in args.dimensions.split(",")):
        options = SimulationOptions(dimension=d, seeds=args.seeds, correlation_times=(), response_times=(),
                                    chi_times=(), gap_times=())
        elapsed, result = warm_time(lambda: dmft.simulate(problem, options))
        rows.append(("simulation", f"d = {d}, {args.seeds} seeds", elapsed, final_errors(result, k)))

    target = rows[len(args.samples.split(",")) - 1][3]  # the largest DMFT population's errors
    print(f"{args.algorithm}, {k} steps; time to reach the standard errors of the largest DMFT population: "
          + ", ".join(f"se({name}) = {target[name]:.2g}" for name in OBSERVABLES))
    print(f"{'method':<12}{'setting':<20}{'warm time':>11}" + "".join(f"{'t(' + n + ')':>14}" for n in OBSERVABLES)
          + "".join(f"{'ratio ' + n:>16}" for n in OBSERVABLES))
    best_dmft = {name: min(t * (e[name] / target[name]) ** 2 for method, _, t, e in rows if method == "DMFT")
                 for name in OBSERVABLES}
    for method, setting, elapsed, errors in rows:
        equal = {name: elapsed * (errors[name] / target[name]) ** 2 for name in OBSERVABLES}
        line = f"{method:<12}{setting:<20}{elapsed:>10.2f}s" + "".join(f"{equal[n]:>13.2f}s" for n in OBSERVABLES)
        if method == "simulation":
            line += "".join(f"{equal[n] / best_dmft[n]:>15.0f}x" for n in OBSERVABLES)
        print(line)
    print("ratio: simulation time / the fastest DMFT time at the same standard error")


if __name__ == "__main__":
    main()
