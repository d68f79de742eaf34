"""Generate the reference finite-d simulations in data/reference/ and the finite-size study.

    python data/make_reference.py --jobs 2   # about 20 minutes on a 2-core machine
    python data/make_reference.py --jobs 2 --reuse-simulations   # the study only, from the stored files

For every canonical point (docs/theory.md §10 and three more):

* ``reference/<point>.h5``: ``dmft simulate`` at d = 2000 with 64 seeds (the file the
  tests compare ``dmft.solve`` against);
* the finite-size study, summarised in ``reference/finite_size.json``: the same point at
  d = 500 with 512 seeds (a quarter of the cost of the d = 2000 runs, twice their
  precision) and at d = 2000, both compared with a high-precision DMFT solution (400 000
  effective samples). The gap sim - DMFT is O(1/d) (docs/theory.md §1); its 2-sigma upper
  bound at d = 500, scaled by 500/d, bounds the systematic finite-d error at dimension d.
  That bound is the ``allowance`` the tests add (in quadrature) to the statistical errors:
  the largest over all times for the comparisons of whole curves, and at each check point
  (``check``: where the tests make their powered comparisons) for those.
* ``dmft_final``: the high-precision DMFT values (and standard errors) of m, C[k, k] and
  the training loss at the final step, the table of docs/theory.md §10 to four digits.

Every point runs from its own seeds, so the files are the same for any ``--jobs``.
"""

from __future__ import annotations

import os

# One BLAS thread: the products here are skinny (n x d times d x ~10), and on a small
# shared machine OpenBLAS threads cost more in synchronisation than they gain (measured
# 5x slower at d = 500 under load). Must be set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import dmft  # noqa: E402
from dmft.compare import curves  # noqa: E402
from dmft.io import load_simulation  # noqa: E402
from dmft.simulate import SimulationOptions, simulate  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "reference"


@dataclasses.dataclass(frozen=True)
class Sizes:
    """The study's sizes: the stored simulations (dimension, seeds), the finite-size runs
    (small_dimension, small_seeds) and the high-precision DMFT (samples, subpopulations)."""

    dimension: int = 2000
    seeds: int = 64
    small_dimension: int = 500
    small_seeds: int = 512
    samples: int = 400_000
    subpopulations: int = 40


FULL = Sizes()
QUICK = Sizes(dimension=200, seeds=4, small_dimension=50, small_seeds=8, samples=2000, subpopulations=4)
# The training error is compared where it first falls to this level (or at the end): its
# binomial noise, relative to the value, is smallest where the error is large.
TRAIN_ERROR_CHECK_LEVEL = 0.25

CANONICAL = dict(dataset="gmm2", alpha=2.0, delta=0.5, rho=0.5, loss="logistic", ridge=0.1, dt=0.1,
                 init_variance=1.0)
# name -> (problem options, replicas). docs/theory.md §10 gives m, C, loss of the first three.
POINTS: dict[str, tuple[dict, int]] = {
    "gd": (dict(CANONICAL, algorithm="gd", steps=60), 1),
    "sgd": (dict(CANONICAL, algorithm="sgd", batch_fraction=0.3, steps=60), 2),
    "persistent_sgd": (dict(CANONICAL, algorithm="persistent-sgd", batch_fraction=0.3, persistence_time=2.0,
                            steps=100), 2),
    "langevin": (dict(CANONICAL, algorithm="gd", temperature=0.1, steps=60), 2),
    "random_labels": (dict(dataset="random-labels", alpha=2.0, delta=0.5, loss="square-hinge", margin=1.0,
                           ridge=0.1, algorithm="gd", dt=0.1, steps=60), 1),
}
ONE_TIME = ("m", "self_overlap", "train_loss", "train_error", "test_error")
TWO_TIME = ("C", "R", "chi")


def check_points(simulation, matched: dict[str, dict[str, np.ndarray]]) -> dict[str, tuple[int, ...]]:
    """Where the tests compare each observable with power: the final step k for the one-time
    observables, (k, the last reference time) for C, R and chi, and for the training error
    the first step at which the stored simulation's falls to TRAIN_ERROR_CHECK_LEVEL."""
    k = simulation.problem.steps
    out: dict[str, tuple[int, ...]] = {name: (k,) for name in ONE_TIME}
    low = np.flatnonzero(simulation.train_error <= TRAIN_ERROR_CHECK_LEVEL)
    out["train_error"] = (int(low[0]) if low.size else k,)
    out.update({name: (k, len(matched[name]["reference_time"]) - 1) for name in TWO_TIME})
    return out


def gaps(theory: dmft.Result, simulation, at: dict[str, tuple[int, ...]]) -> dict[str, dict[str, float]]:
    """Per observable: the largest |sim - DMFT| over all times (and reference times), its
    combined standard error there, the 2-sigma upper bound max(|gap| + 2 se), and the same
    three at the check point ``at[name]``."""
    out = {}
    for name, curve in curves(theory, simulation).items():
        if name not in ONE_TIME + TWO_TIME:
            continue
        difference = np.abs(curve["sim"] - curve["dmft"])
        se = np.sqrt(np.nan_to_num(curve["sim_se"]) ** 2 + np.nan_to_num(curve["dmft_se"]) ** 2)
        valid = np.isfinite(difference)
        index = np.unravel_index(np.argmax(np.where(valid, difference, -1.0)), difference.shape)
        check = at[name]
        out[name] = dict(max_gap=float(difference[index]), se_at_max=float(se[index]),
                         bound=float(np.max(np.where(valid, difference + 2 * se, 0.0))),
                         check_gap=float(difference[check]), check_se=float(se[check]),
                         check_bound=float(difference[check] + 2 * se[check]))
    return out


def same_run(simulation, problem: dmft.Problem, options: SimulationOptions) -> bool:
    """Whether a stored simulation is the run of ``problem`` with ``options`` (its reference
    times, None in ``options``, were resolved from the problem)."""
    given = ("dimension", "seeds", "seed", "gap_times", "response_field", "replicas")
    return simulation.problem == problem and all(getattr(simulation.options, name) == getattr(options, name)
                                                 for name in given)


def reference_point(index: int, name: str, sizes: Sizes = FULL, out: Path = OUT,
                    reuse: bool = False) -> tuple[str, dict, str]:
    """Simulate and solve one point; write its large-d file; return its finite-size entry and a report.
    ``reuse``: read the large-d simulation from its file when that file has the same problem and options."""
    options, replicas = POINTS[name]
    start = time.perf_counter()
    problem = dmft.Problem.from_flat(**options)
    big_options = SimulationOptions(dimension=sizes.dimension, seeds=sizes.seeds, seed=1000 + index, gap_times=(),
                                    replicas=replicas)
    stored = out / f"{name}.h5"
    if reuse and stored.exists() and same_run(big := load_simulation(stored), problem, big_options):
        pass  # the same seeds give the same simulation: it need not run again
    else:
        big = simulate(problem, big_options)
        dmft.save(big, stored, overwrite=True)
    small = simulate(problem, SimulationOptions(dimension=sizes.small_dimension, seeds=sizes.small_seeds,
                                                seed=2000 + index, gap_times=()))
    theory = dmft.solve(problem, dmft.SolverOptions(samples=sizes.samples, subpopulations=sizes.subpopulations,
                                                    seed=3000 + index))
    at = check_points(big, curves(theory, big))
    gap_small, gap_big = gaps(theory, small, at), gaps(theory, big, at)
    scale = sizes.small_dimension / sizes.dimension  # O(1/d): a bound at the small d scaled to the large
    lines = [f"{name}  ({time.perf_counter() - start:.0f} s)",
             f"  {'observable':<13}{'|gap| small d':>13}{'se':>9}{'|gap| large d':>14}{'se':>9}"
             f"{'allowance':>11}{'at check':>10}  check point"]
    entry: dict = {}
    for observable in gap_small:
        s, b = gap_small[observable], gap_big[observable]
        entry[observable] = dict(
            gap_500=s["max_gap"], se_500=s["se_at_max"], gap_2000=b["max_gap"], se_2000=b["se_at_max"],
            allowance_2000=s["bound"] * scale,
            check=dict(index=list(at[observable]), gap_500=s["check_gap"], se_500=s["check_se"],
                       gap_2000=b["check_gap"], se_2000=b["check_se"], allowance_2000=s["check_bound"] * scale))
        lines.append(f"  {observable:<13}{s['max_gap']:>13.4f}{s['se_at_max']:>9.4f}{b['max_gap']:>14.4f}"
                     f"{b['se_at_max']:>9.4f}{s['bound'] * scale:>11.4f}{s['check_bound'] * scale:>10.4f}"
                     f"  {at[observable]}")
    k = problem.steps
    entry["final"] = dict(m=float(big.m[k]), self_overlap=float(big.self_overlap[k]),
                          train_loss=float(big.train_loss[k]))
    entry["dmft_final"] = {
        "m": [float(theory.m[k]), float(theory.stderr["m"][k])],
        "self_overlap": [float(theory.C[k, k]), float(theory.stderr["C"][k, k])],
        "train_loss": [float(theory.train_loss[k]), float(theory.stderr["train_loss"][k])]}
    return name, entry, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1, help="points computed at once, in separate processes")
    parser.add_argument("--points", nargs="+", choices=sorted(POINTS), default=list(POINTS), help="only these")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a check that the script runs)")
    parser.add_argument("--output", type=Path, default=OUT, help="directory of the files (default data/reference)")
    parser.add_argument("--reuse-simulations", action="store_true",
                        help="read the large-d simulations from their files when these match (the study only)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    args.output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    study: dict[str, dict] = {"dimension": sizes.dimension, "seeds": sizes.seeds,
                              "small_dimension": sizes.small_dimension, "small_seeds": sizes.small_seeds,
                              "reference_samples": sizes.samples, "reference_subpopulations": sizes.subpopulations,
                              "version": dmft.__version__, "points": {}}
    indices = {name: index for index, name in enumerate(POINTS)}
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(reference_point, indices[name], name, sizes, args.output,
                               args.reuse_simulations) for name in args.points]
        for future in futures:
            name, entry, report = future.result()
            print(f"\n{report}", flush=True)
            study["points"][name] = entry
    (args.output / "finite_size.json").write_text(json.dumps(study, indent=1) + "\n")
    print(f"\nwrote {args.output}/*.h5 and finite_size.json in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
