"""Fluctuation-dissipation relations and the effective temperature of SGD (docs/theory.md §6).

The integrated response is chi[k,j] = dt sum_{i=j}^{k-1} R[k,i]: the response of w_k to a
constant field switched on at update j. In a stationary regime (C[k+s, j+s] = C[k,j]) the
parametric curve chi against Delta C = C[k,k] - C[k,j] is, at equilibrium at temperature
T, the straight line chi = Delta C / T. Out of equilibrium (SGD, persistent SGD) its
inverse slope defines an effective temperature T_eff, which may differ between short and
long time lags.

The package is split by concern:

* ``sources``: the two-time data in its two forms (DMFT: C and R on the whole grid;
  simulation: C and chi at a few reference times), from results or files. In a
  stationary regime both give the same curve Delta C(s), chi(s) of the time lag s.
* ``window``: which final step and which lags a fit reads.
* ``stationarity``: the check that the window is stationary (verified, not assumed).
* ``estimate``: the fit, T_eff with its error bar (jackknife over independent runs, or
  an upper bound from one stored result), the parametric curves.
* ``tables``: T_eff against a problem parameter.

Solving independent runs for honest error bars is ``dmft.workflows``' job, drawing the
figures ``dmft.plots.fdt``'s, and storing estimates in a file ``dmft.io``'s
(``write_fdt``, ``read_fdt``, re-exported here).
"""

from __future__ import annotations

from ..io import read_fdt, write_fdt
from .estimate import (MIN_CHI_SPREAD, FdtCurve, TeffEstimate, effective_temperature, effective_temperature_from_runs,
                       estimate_from_file, estimates_json, parametric_curve, parametric_curves)
from .sources import (FdtSource, FixedReferenceFunctions, TwoTimeFunctions, as_fdt_source, connected_correlation,
                      integrated_response, load_source, noise_correlation_time, runs_of, sources_from_file)
from .stationarity import (DEFAULT_NSIGMA, DEFAULT_TOLERANCE, MIN_RUNS_FOR_SPREAD, NonStationaryError, Stationarity,
                           check_stationarity)
from .tables import TABLE_FIELDS, teff_table
from .window import (DEFAULT_MAX_LAG_FRACTION, MIN_FIT_POINTS, SHORT_LAG_CORRELATION_TIMES, SHORT_LAG_STEPS,
                     default_lag_window)

__all__ = [
    "DEFAULT_MAX_LAG_FRACTION", "DEFAULT_NSIGMA", "DEFAULT_TOLERANCE", "MIN_CHI_SPREAD", "MIN_FIT_POINTS",
    "MIN_RUNS_FOR_SPREAD", "SHORT_LAG_CORRELATION_TIMES", "SHORT_LAG_STEPS", "TABLE_FIELDS",
    "FdtCurve", "FdtSource", "FixedReferenceFunctions", "NonStationaryError", "Stationarity", "TeffEstimate",
    "TwoTimeFunctions", "as_fdt_source", "check_stationarity", "connected_correlation", "default_lag_window",
    "effective_temperature", "effective_temperature_from_runs", "estimate_from_file", "estimates_json",
    "integrated_response", "load_source", "noise_correlation_time", "parametric_curve", "parametric_curves",
    "read_fdt", "runs_of", "sources_from_file", "teff_table", "write_fdt",
]
