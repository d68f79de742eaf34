"""T_eff against a problem parameter: one row per solution, in a structured array."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import ParameterError
from .estimate import TeffEstimate, effective_temperature, effective_temperature_from_runs

TABLE_FIELDS = ("label", "value", "T_eff", "T_eff_stderr", "stationary", "s_min", "s_max", "final_time")


def teff_table(solutions: Iterable[Any], parameter: str, label: str = "algorithm", **kwargs: Any) -> np.ndarray:
    """T_eff against ``parameter`` (a flat problem option: batch_fraction, persistence_time, alpha, ...).

    Each item of ``solutions`` is a Result, a simulation result, a list of independent runs
    of one problem (jackknife errors), or a ready ``TeffEstimate`` paired with its problem
    as ``(problem, estimate)``. Returns a structured array with fields ``TABLE_FIELDS``,
    sorted by label then value; a point whose window is not stationary is kept with
    ``stationary = False`` (and its T_eff as fitted) rather than dropped.
    """
    kwargs = {**kwargs, "require_stationary": False}
    rows = []
    for item in solutions:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], TeffEstimate):
            problem, estimate = item
        elif isinstance(item, (list, tuple)):
            problem, estimate = item[0].problem, effective_temperature_from_runs(item, **kwargs)
        else:
            problem, estimate = item.problem, effective_temperature(item, **kwargs)
        flat = problem.flat()
        if parameter not in flat:
            raise ParameterError("parameter", f"unknown problem parameter {parameter!r}; known: {', '.join(flat)}")
        rows.append((str(flat.get(label, "")), float(flat[parameter]), estimate.T_eff, estimate.T_eff_stderr,
                     estimate.stationarity.stationary, estimate.window[0], estimate.window[1], estimate.final_time))
    dtype = [("label", "U32"), ("value", float), ("T_eff", float), ("T_eff_stderr", float), ("stationary", bool),
             ("s_min", float), ("s_max", float), ("final_time", float)]
    table = np.array(rows, dtype=dtype)
    return np.sort(table, order=["label", "value"])
