"""The phase diagram of the grid guide: SGD's final test error over (alpha, b).

Runs a 5 x 5 grid (about a minute on 2 cores), opens it with ``dmft.open_dataset`` and
draws it with ``dmft.plots.phase.phase_figure``, as ``dmft plot GRID --x alpha
--y batch_fraction --z test_error`` would. Writes docs/figures/phase_diagram.png; its PNG
metadata records the dmft version and source digest that made it.

    python docs/figures/make_phase_diagram.py [--workers N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import dmft
from dmft._version import source_digest
from dmft.grid import GridProgress, GridSpec, run_grid
from dmft.plots.phase import phase_figure

CONFIG = """
seed = 1
[problem]
algorithm = "sgd"
loss = "logistic"
ridge = 0.1
dt = 0.25
steps = 80
[solver]
samples = 2000
subpopulations = 4
[grid]
alpha = [0.5, 1.0, 2.0, 4.0, 8.0]
batch_fraction = [0.1, 0.2, 0.3, 0.5, 0.8]
"""

OUTPUT = Path(__file__).with_name("phase_diagram.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="local worker processes [2]")
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "phase.toml"
        config.write_text(CONFIG)
        grid = Path(folder) / "phase.h5"
        progress = GridProgress(grid.name)
        try:
            run_grid(GridSpec.from_toml(config), grid, workers=args.workers, progress=progress)
        finally:
            progress.close()
        dataset = dmft.open_dataset(grid)
    figure = phase_figure(dataset, "alpha", "batch_fraction", "test_error")
    figure.savefig(OUTPUT, dpi=110, metadata={"Software": f"dmft {dmft.__version__}",
                                               "dmft_source_sha256": source_digest()})
    print(f"wrote {OUTPUT} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
