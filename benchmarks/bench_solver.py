"""Wall time and peak memory of the DMFT solver (issues 2 and 7).

Persistent SGD (b = 0.3, tau = 2), logistic loss, gmm2, N_s = 10^4 samples, one probe per
sample, one subpopulation. Each case runs in its own process, so peak memory (max RSS) is
its own; numba compilation is excluded by a warm-up solve (the cache is warm after it).

    python benchmarks/bench_solver.py                 # N in {250, 500, 1000}: march, one iteration
    python benchmarks/bench_solver.py --targets       # W1, W2 and the fitted exponents (minutes)
    python benchmarks/bench_solver.py --breakdown 2000  # where one march's time goes
    python benchmarks/bench_solver.py --bandwidth     # memory read bandwidth: the floor's unit
    python benchmarks/bench_solver.py --targets --memory-window 50  # and W2 with that window
    python benchmarks/bench_solver.py --breakdown 4000 --memory-window 80

Wall times are the best of ``--repeats`` solves in one process (a shared 2-core machine
varies by 10-20% from run to run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np

from dmft.options import DEFAULT_PRECISION, PRECISIONS
from dmft.solvers.population import Population

from machine import cpu_model, read_bandwidth

CASE = r"""
import cProfile, json, pstats, resource, sys, time
import dmft
steps, method, samples, repeats, breakdown, precision = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                                                         int(sys.argv[4]), sys.argv[5] == "1", sys.argv[6])
memory_window, save_to = float(sys.argv[7]), sys.argv[8]
problem = dmft.Problem.from_flat(dataset="gmm2", alpha=2, delta=0.5, ridge=0.1, loss="logistic",
                                 algorithm="persistent-sgd", batch_fraction=0.3, persistence_time=2.0,
                                 dt=0.1, steps=steps)
options = dmft.SolverOptions(samples=samples, subpopulations=1, method=method, max_iterations=1, keep_runs=False,
                             precision=precision, memory_window=memory_window)
# Compile or load the kernels the solve uses (serial, and the threaded ones where the run
# is large enough for them), outside the timed solve, as `dmft solve` does.
from dmft.warmup import compile_for_run
compile_for_run(problem, options, helper=False)
# Python, numpy, numba and the compiled kernels: the part of the peak that is not the solve's.
baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
walls = []
for _ in range(repeats):
    start = time.perf_counter()
    result = dmft.solve(problem, options)
    walls.append(time.perf_counter() - start)
if save_to:
    import numpy
    numpy.savez(save_to, m=result.m, C=result.C, train_loss=result.train_loss,
                memory_tail=result.diagnostics["memory_tail"])
parts = {}
if breakdown:
    profile = cProfile.Profile()
    profile.runcall(dmft.solve, problem, options)
    for (path, _, name), row in pstats.Stats(profile).stats.items():
        if "dmft" in path and name in KERNELS:
            parts[name] = parts.get(name, 0.0) + row[3]  # time inside, callees included
    parts["total"] = sum(row[2] for row in pstats.Stats(profile).stats.values())
print(json.dumps({"wall": min(walls), "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "baseline_mb": baseline_mb,
                  "parts": parts}))
"""
# The functions a march's time is split into by --breakdown.
KERNELS = {
    "population_step_probe": "population kernel (paths, tangents, column sums)",
    "advance_weight_rows": "weight side (A, m, R row, C row)",
    "cholesky_row": "Cholesky row of C",
    "draw": "drawing innovations, probes, selections",
}


def run_case(steps: int, method: str, samples: int, precision: str, repeats: int = 1, breakdown: bool = False,
             memory_window: float = 0.0, save_to: str = "") -> dict:
    """One benchmark case in its own process; ``save_to``: an .npz file for m, C, train_loss."""
    code = CASE.replace("KERNELS", repr(set(KERNELS)))
    output = subprocess.run([sys.executable, "-c", code, str(steps), method, str(samples), str(repeats),
                             "1" if breakdown else "0", precision, str(memory_window), save_to],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def header(samples: int, precision: str) -> None:
    import numba

    print(f"# {cpu_model()} ({platform.machine()}), {os.cpu_count()} cores, numba {numba.__version__} with "
          f"{numba.config.NUMBA_NUM_THREADS} threads, python {platform.python_version()}")
    print(f"# persistent SGD b=0.3 tau=2, logistic, gmm2, N_s = {samples}, one probe, precision {precision}")


def table(steps_list: list[int], samples: int, precision: str, repeats: int) -> None:
    print(f"{'N':>6} {'march [s]':>10} {'iteration [s]':>14} {'iter/march':>11} {'peak march [MB]':>16}")
    for steps in steps_list:
        march = run_case(steps, "march", samples, precision, repeats)
        iteration = run_case(steps, "iterate", samples, precision, repeats)
        print(f"{steps:>6} {march['wall']:>10.2f} {iteration['wall']:>14.2f} "
              f"{iteration['wall'] / march['wall']:>11.2f} {march['peak_mb']:>16.0f}")


def targets(samples: int, precision: str, repeats: int, memory_window: float) -> None:
    steps_list = [500, 1000, 2000, 4000]
    scratch = tempfile.TemporaryDirectory()
    full_file, window_file = os.path.join(scratch.name, "full.npz"), os.path.join(scratch.name, "window.npz")
    # The long cases once: their spread is small next to their length.
    rows = {steps: run_case(steps, "march", samples, precision, repeats if steps <= 1000 else 1,
                            save_to=full_file if steps == 4000 else "")
            for steps in steps_list}
    print(f"{'N':>6} {'march [s]':>10} {'peak [MB]':>10} {'of it the solve [MB]':>21}")
    for steps, row in rows.items():
        print(f"{steps:>6} {row['wall']:>10.2f} {row['peak_mb']:>10.0f} {row['peak_mb'] - row['baseline_mb']:>21.0f}")
    n = np.array(steps_list, dtype=float)
    wall = np.array([rows[s]["wall"] for s in steps_list])
    memory = np.array([rows[s]["peak_mb"] - rows[s]["baseline_mb"] for s in steps_list])
    print(f"fitted exponent of time in N:   {np.polyfit(np.log(n), np.log(wall), 1)[0]:.2f} (target 2)")
    print(f"fitted exponent of memory in N: {np.polyfit(np.log(n[1:]), np.log(memory[1:]), 1)[0]:.2f} "
          "(N_s N + N^2: between 1 and 2)")
    print(f"W1 (N = 1000): {rows[1000]['wall']:.2f} s (target <= 1.5 s)")
    print(f"W2 (N = 4000): {rows[4000]['wall']:.2f} s, {rows[4000]['peak_mb'] / 1024:.2f} GB (target <= 30 s, <= 8 GB)")
    # The machine's speed drifts: read the times against its bandwidth now, at the size of
    # the run's paths (a cache holds small ones).
    for name, steps in (("W1", 1000), ("W2", 4000)):
        size = Population.memory_bytes(samples, steps, "probe", 1, precision)
        rate = max(read_bandwidth(sys.executable, size).values())
        least = floor_bytes(steps, samples, precision) / 1e9 / rate
        print(f"{name}'s floor at {rate:.1f} GB/s of reads on all cores over {size / 1e6:.0f} MB (measured now): "
              f"{least:.2f} s; the march took {rows[steps]['wall'] / least:.1f} x it")
    if memory_window > 0:
        # The same draws with the window: the differences are the window's error alone.
        row = run_case(4000, "march", samples, precision, 1, memory_window=memory_window, save_to=window_file)
        full, window = np.load(full_file), np.load(window_file)
        print(f"W2 with memory window {memory_window:g}: {row['wall']:.2f} s, {row['peak_mb'] / 1024:.2f} GB; "
              f"integral of |R| beyond it {float(window['memory_tail']):.1e}, largest change of m "
              f"{np.abs(window['m'] - full['m']).max():.1e}, of C {np.abs(window['C'] - full['C']).max():.1e}, "
              f"of the training loss {np.nanmax(np.abs(window['train_loss'] - full['train_loss'])):.1e}")


def floor_bytes(steps: int, samples: int, precision: str) -> float:
    """The bytes one march of one subpopulation must read at least: every stored path value
    once per later step, and the four triangles of the weight side and the Cholesky row,
    4 N^3 bytes (docs/performance.md, "Where the floor is")."""
    paths = Population.memory_bytes(samples, steps, "probe", 1, precision)
    return paths * steps / 2 + 4 * steps**3


def breakdown(steps: int, samples: int, precision: str, memory_window: float) -> None:
    parts = run_case(steps, "march", samples, precision, repeats=1, breakdown=True,
                     memory_window=memory_window)["parts"]
    total = parts.pop("total")
    window = f", memory window {memory_window:g}" if memory_window > 0 else ""
    print(f"one march, N = {steps}{window} (under cProfile): {total:.2f} s")
    for name, label in KERNELS.items():
        print(f"  {label:<50} {parts.get(name, 0.0):>7.2f} s {100 * parts.get(name, 0.0) / total:>5.1f}%")
    rest = total - sum(parts.values())
    print(f"  {'the rest (Python, kernel-row means, results)':<50} {rest:>7.2f} s {100 * rest / total:>5.1f}%")


def bandwidth() -> None:
    """Streaming read bandwidth (GB/s) of a numba loop over 400 MB, on 1 and all threads."""
    for threads, rate in read_bandwidth(sys.executable).items():
        print(f"read bandwidth, {threads} thread(s): {rate:.1f} GB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--targets", action="store_true", help="W1, W2 and exponents over N in {500..4000}")
    parser.add_argument("--breakdown", type=int, metavar="N", help="time per kernel in one march of N steps")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many solves (N <= 1000 for --targets)")
    parser.add_argument("--bandwidth", action="store_true", help="streaming read bandwidth on 1 and all threads")
    parser.add_argument("--precision", default=DEFAULT_PRECISION, choices=PRECISIONS,
                        help="path storage of the solves")
    parser.add_argument("--memory-window", type=float, default=0.0,
                        help="--targets: also W2 with this memory window (time units), and its error; "
                             "--breakdown: with this window")
    args = parser.parse_args()
    header(args.samples, args.precision)
    if args.bandwidth:
        bandwidth()
    elif args.breakdown:
        breakdown(args.breakdown, args.samples, args.precision, args.memory_window)
    elif args.targets:
        targets(args.samples, args.precision, args.repeats, args.memory_window)
    else:
        table(args.steps, args.samples, args.precision, args.repeats)


if __name__ == "__main__":
    main()
