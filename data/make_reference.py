"""Generate the reference finite-d simulations in data/reference/ and the finite-size study.

    python data/make_reference.py            # about 3 minutes on an idle 2-core machine

For every canonical point (docs/theory.md §10 and three more):

* ``reference/<point>.h5``: ``dmft simulate`` at d = 2000 with 16 seeds (the file the
  tests compare ``dmft.solve`` against);
* the finite-size study, summarised in ``reference/finite_size.json``: the same point at
  d = 500 with 128 seeds (half the cost, 1.4 times the precision) and at d = 2000, both
  compared with a high-precision DMFT solution (100 000 effective samples). The gap
  sim - DMFT is O(1/d) (docs/theory.md §1); its 2-sigma upper bound at d = 500,
  scaled by 500/d, bounds the systematic finite-d error at dimension d. That bound is
  the ``allowance`` the tests add (in quadrature) to the statistical errors at d = 2000.
"""

from __future__ import annotations

import os

# One BLAS thread: the products here are skinny (n x d times d x ~10), and on a small
# shared machine OpenBLAS threads cost more in synchronisation than they gain (measured
# 5x slower at d = 500 under load). Must be set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import dmft  # noqa: E402
from dmft.compare import curves  # noqa: E402
from dmft.simulate import SimulationOptions, simulate  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "reference"
DIMENSION, SEEDS = 2000, 16
SMALL_DIMENSION, SMALL_SEEDS = 500, 128
REFERENCE_SAMPLES, REFERENCE_SUBPOPULATIONS = 100_000, 10

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


def gaps(theory: dmft.Result, simulation) -> dict[str, dict[str, float]]:
    """Per observable: the largest |sim - DMFT| over all times (and reference times), its
    combined standard error there, and the 2-sigma upper bound max(|gap| + 2 se)."""
    out = {}
    for name, curve in curves(theory, simulation).items():
        if name not in ONE_TIME + TWO_TIME:
            continue
        difference = np.abs(curve["sim"] - curve["dmft"])
        se = np.sqrt(np.nan_to_num(curve["sim_se"]) ** 2 + np.nan_to_num(curve["dmft_se"]) ** 2)
        valid = np.isfinite(difference)
        index = np.unravel_index(np.argmax(np.where(valid, difference, -1.0)), difference.shape)
        out[name] = dict(max_gap=float(difference[index]), se_at_max=float(se[index]),
                         bound=float(np.max(np.where(valid, difference + 2 * se, 0.0))))
    return out


def main() -> int:
    OUT.mkdir(exist_ok=True)
    start = time.perf_counter()
    study: dict[str, dict] = {"dimension": DIMENSION, "small_dimension": SMALL_DIMENSION, "points": {}}
    for index, (name, (options, replicas)) in enumerate(POINTS.items()):
        problem = dmft.Problem.from_flat(**options)
        big = simulate(problem, SimulationOptions(dimension=DIMENSION, seeds=SEEDS, seed=1000 + index,
                                                  gap_times=(), replicas=replicas))
        dmft.save(big, OUT / f"{name}.h5", overwrite=True)
        small = simulate(problem, SimulationOptions(dimension=SMALL_DIMENSION, seeds=SMALL_SEEDS,
                                                    seed=2000 + index, gap_times=()))
        theory = dmft.solve(problem, dmft.SolverOptions(samples=REFERENCE_SAMPLES,
                                                        subpopulations=REFERENCE_SUBPOPULATIONS, seed=3000 + index))
        gap_small, gap_big = gaps(theory, small), gaps(theory, big)
        entry = {}
        print(f"\n{name}  ({time.perf_counter() - start:.0f} s)")
        print(f"  {'observable':<13}{'|gap| d=500':>13}{'se':>9}{'|gap| d=2000':>14}{'se':>9}"
              f"{'allowance d=2000':>18}")
        for observable in gap_small:
            s, b = gap_small[observable], gap_big[observable]
            # O(1/d): the 2-sigma bound measured at d = 500, scaled to d = 2000.
            allowance = s["bound"] * SMALL_DIMENSION / DIMENSION
            entry[observable] = dict(gap_500=s["max_gap"], se_500=s["se_at_max"], gap_2000=b["max_gap"],
                                     se_2000=b["se_at_max"], allowance_2000=allowance)
            print(f"  {observable:<13}{s['max_gap']:>13.4f}{s['se_at_max']:>9.4f}{b['max_gap']:>14.4f}"
                  f"{b['se_at_max']:>9.4f}{allowance:>18.4f}")
        k = problem.steps
        entry["final"] = dict(m=float(big.m[k]), self_overlap=float(big.self_overlap[k]),
                              train_loss=float(big.train_loss[k]))
        study["points"][name] = entry
    (OUT / "finite_size.json").write_text(json.dumps(study, indent=1) + "\n")
    print(f"\nwrote {OUT}/*.h5 and finite_size.json in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
