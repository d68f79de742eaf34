"""What every dmft figure shares: a Figure on the Agg canvas, and a title naming the problem.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly, never
through pyplot: no global figure registry (no memory growth when plotting many files),
no interactive backend needed, and the functions are safe in scripts, tests and workers.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .._version import __version__, source_digest

# The symbols of the problem parameters in titles and legends.
SYMBOLS = {"alpha": "α", "delta": "Δ", "rho": "ρ", "theta": "θ", "margin": "κ", "sharpness": "β",
           "batch_fraction": "b", "persistence_time": "τ", "temperature": "T", "momentum": "β", "label_noise": "ε",
           "ridge": "λ", "dt": "η", "steps": "N", "init_variance": "σ0²"}


def new_figure(width: float = 6.4, height: float = 4.4) -> tuple[Figure, Any]:
    """A Figure on the Agg canvas with one axes (constrained layout)."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def save_png(figure: Figure, path: str | os.PathLike, dpi: int = 120) -> None:
    """Write ``figure`` as a PNG whose metadata name the code that drew it.

    The "Software" text chunk carries the dmft version and the source digest
    (``dmft._version.source_digest``), as the CSV tables and HDF5 files do; any PNG reader
    shows it (e.g. ``PIL.Image.open(path).text``).
    """
    figure.savefig(path, dpi=dpi, metadata={"Software": f"dmft {__version__} (source sha256 {source_digest()})"})


def describe(parameters: Mapping[str, Any], skip: Iterable[str] = ()) -> str:
    """A short title naming the problem: 'gmm2 α=2 Δ=0.5 · logistic · sgd b=0.3 · λ=0.1 η=0.1 N=100'.

    Only the parameters that matter for the given dataset, loss and algorithm are shown;
    ``skip`` leaves out keys shown elsewhere (e.g. the axes of a grid plot).
    """
    p, skip = dict(parameters), set(skip)

    def part(key: str) -> str:
        if key not in p or key in skip:
            return ""
        value = p[key]
        text = f"{value:g}" if isinstance(value, float) else str(value)
        return f"{SYMBOLS.get(key, key)}={text}"

    def join(*items: str) -> str:
        return " ".join(item for item in items if item)

    dataset = p.get("dataset", "")
    teacher = dataset == "teacher-student"
    data = join("" if "dataset" in skip else str(dataset), part("alpha"), part("delta") if not teacher else "",
                part("rho") if dataset in ("gmm2", "gmm3") else "", part("theta") if dataset == "gmm3" else "",
                part("label_noise") if teacher else "")
    loss = p.get("loss", "")
    loss_part = join("" if "loss" in skip else str(loss), part("margin") if "hinge" in str(loss) else "",
                     part("sharpness") if loss == "smooth-hinge" else "")
    algorithm = p.get("algorithm", "")
    algo = join("" if "algorithm" in skip else str(algorithm),
                part("batch_fraction") if algorithm != "gd" else "",
                part("persistence_time") if algorithm == "persistent-sgd" else "",
                part("temperature") if p.get("temperature") else "",  # T = 0: no Langevin noise, say nothing
                part("momentum") if p.get("momentum") else "",
                "batch-avg" if p.get("batch_average") and "batch_average" not in skip else "")
    rest = join(part("ridge"), part("dt"), part("steps"))
    return " · ".join(item for item in (data, loss_part, algo, rest) if item)
