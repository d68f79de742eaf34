"""Make the grid figures of the documentation: run two grids and draw them as `dmft plot` does.

* grid_sgd_batch_test_error.png: the grid data/grid_sgd_batch.toml (SGD and persistent SGD
  over the batch fraction and the persistence time), drawn as
  ``dmft plot GRID --x batch_fraction --y test_error --hue algorithm`` draws it;
* phase_diagram.png: a 5 x 5 grid of SGD over alpha and the batch fraction, drawn as
  ``dmft plot GRID --x alpha --y batch_fraction --z test_error`` draws it.

Beside each PNG, a CSV of the numbers behind it. The PNGs carry the dmft version and
source digest in their "Software" chunk (``dmft.plots.figure.save_png``), the CSVs the same
in a header (``dmft.reproduce.output.write_table``). tests/test_docs_figures.py runs the
script with ``--quick``.

    python docs/figures/make_grid_figures.py                           # about a minute on 2 cores
    python docs/figures/make_grid_figures.py --quick --output-dir DIR  # a reduced size, seconds
"""

from __future__ import annotations

import argparse
import copy
import shutil
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any, Sequence

from dmft.grid import GridProgress, GridSpec, load_summary, run_grid
from dmft.plots import plot_file
from dmft.plots.phase import phase_file
from dmft.reproduce.output import write_table

HERE = Path(__file__).resolve().parent
BATCH_CONFIG = HERE.parents[1] / "data" / "grid_sgd_batch.toml"
BATCH_FIGURE = "grid_sgd_batch_test_error"
PHASE_FIGURE = "phase_diagram"

PHASE = {
    "seed": 1,
    "problem": {"algorithm": "sgd", "loss": "logistic", "ridge": 0.1, "dt": 0.25, "steps": 80},
    "solver": {"samples": 2000, "subpopulations": 4},
    "grid": {"alpha": [0.5, 1.0, 2.0, 4.0, 8.0], "batch_fraction": [0.1, 0.2, 0.3, 0.5, 0.8]},
}

# --quick: the same code on fewer samples, steps and grid values.
QUICK_SOLVER = {"samples": 256, "subpopulations": 2}
QUICK_STEPS = 10
QUICK_BATCH_AXES = {"batch_fraction": [0.2, 0.8]}
QUICK_PHASE_AXES = {"alpha": [0.5, 2.0], "batch_fraction": [0.2, 0.8]}


def configurations(quick: bool) -> dict[str, dict[str, Any]]:
    """The two grid configurations (parsed TOML), reduced with ``quick``."""
    configs = {BATCH_FIGURE: tomllib.loads(BATCH_CONFIG.read_text()), PHASE_FIGURE: copy.deepcopy(PHASE)}
    if quick:
        for name, axes in ((BATCH_FIGURE, QUICK_BATCH_AXES), (PHASE_FIGURE, QUICK_PHASE_AXES)):
            configs[name]["solver"].update(QUICK_SOLVER)
            configs[name]["problem"]["steps"] = QUICK_STEPS
            configs[name]["grid"].update(axes)
    return configs


def run(config: dict[str, Any], path: Path, workers: int) -> None:
    progress = GridProgress(path.name)
    try:
        run_grid(GridSpec.from_dict(config), path, workers=workers, progress=progress)
    finally:
        progress.close()


def table(path: Path, axes: Sequence[str]) -> list[dict[str, Any]]:
    """One row per point: the grid axes and the final test error with its standard error."""
    return [{**{axis: row[axis].item() if hasattr(row[axis], "item") else row[axis] for axis in axes},
             "test_error": float(row["test_error"]), "test_error_stderr": float(row["test_error_stderr"])}
            for row in load_summary(path)]


def make(output_dir: Path, quick: bool = False, workers: int = 2) -> list[Path]:
    """Run both grids and write their PNGs and CSVs into ``output_dir``; returns the paths written."""
    configs = configurations(quick)
    written = []
    with tempfile.TemporaryDirectory() as folder:
        batch_grid = Path(folder) / "sgd_batch.h5"
        run(configs[BATCH_FIGURE], batch_grid, workers)
        (png, _), = plot_file(batch_grid, output_dir=folder, x="batch_fraction", y="test_error",
                              hue="algorithm").items()
        written.append(Path(shutil.move(png, output_dir / f"{BATCH_FIGURE}.png")))
        written.append(write_table(output_dir / f"{BATCH_FIGURE}.csv",
                                   table(batch_grid, list(configs[BATCH_FIGURE]["grid"])), configs[BATCH_FIGURE],
                                   "final test error of the grid data/grid_sgd_batch.toml"
                                   + (" (--quick)" if quick else "")))

        phase_grid = Path(folder) / "phase.h5"
        run(configs[PHASE_FIGURE], phase_grid, workers)
        (png, _), = phase_file(phase_grid, "alpha", "batch_fraction", "test_error", output_dir=folder).items()
        written.append(Path(shutil.move(png, output_dir / f"{PHASE_FIGURE}.png")))
        written.append(write_table(output_dir / f"{PHASE_FIGURE}.csv",
                                   table(phase_grid, list(configs[PHASE_FIGURE]["grid"])), configs[PHASE_FIGURE],
                                   "SGD's final test error over alpha and the batch fraction"
                                   + (" (--quick)" if quick else "")))
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a reduced size, to check the script")
    parser.add_argument("--output-dir", type=Path, default=None, help="where to write [docs/figures]")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes; 1: in this process [2]")
    args = parser.parse_args(argv)
    if args.quick and args.output_dir is None:
        parser.error("--quick writes coarse figures: give --output-dir, not to overwrite docs/figures")
    start = time.perf_counter()
    for path in make(args.output_dir or HERE, quick=args.quick, workers=args.workers):
        print(f"wrote {path}")
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
