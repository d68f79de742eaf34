"""Where on the FDT curve to fit: the final step, the window of time lags, the anchors."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ParameterError
from .sources import FdtSource

# The default window starts this many noise correlation times (and grid steps) after
# lag 0: below it the coloured noise of persistent SGD bends the curve (the motion is
# ballistic over a correlation time, Delta C ~ s^2 while chi ~ s), and on the first few
# steps the discrete-time map differs most from its continuous limit.
SHORT_LAG_CORRELATION_TIMES = 3.0
SHORT_LAG_STEPS = 3
# The default window ends at this fraction of the final time: the stationarity check then
# compares the second half of the run with itself shifted by a quarter.
DEFAULT_MAX_LAG_FRACTION = 0.25
MIN_FIT_POINTS = 3


def default_lag_window(dt: float, final_time: float, correlation_time: float = 0.0) -> tuple[float, float]:
    """(s_min, s_max): from 3 noise correlation times (and >= 3 steps) to a quarter of ``final_time``."""
    s_min = max(SHORT_LAG_CORRELATION_TIMES * correlation_time, SHORT_LAG_STEPS * dt)
    return s_min, DEFAULT_MAX_LAG_FRACTION * final_time


def final_step(source: FdtSource, final_time: float | None) -> int:
    """The grid step of ``final_time`` (None: the last step), refusing a time off the grid."""
    if final_time is None:
        return source.steps
    step = round(final_time / source.dt)
    if not (0 < step <= source.steps) or abs(step * source.dt - final_time) > 1e-6 * max(1.0, final_time):
        raise ParameterError("final_time", f"must be a grid time in (0, {source.steps * source.dt:g}] "
                                           f"(multiple of dt = {source.dt:g}), got {final_time}")
    return step


def lag_steps(source: FdtSource, last_step: int, lag_window: tuple[float, float] | None) -> tuple[int, int]:
    """(l_min, l_max) in steps; the default window is ``default_lag_window``."""
    dt = source.dt
    if lag_window is None:
        s_min, s_max = default_lag_window(dt, last_step * dt, source.correlation_time)
    else:
        s_min, s_max = (float(v) for v in lag_window)
        if not (0 <= s_min < s_max and math.isfinite(s_max)):
            raise ParameterError("lag_window", f"need 0 <= s_min < s_max, got ({s_min:g}, {s_max:g})")
    # Grid lags inside [s_min, s_max]; the tolerance absorbs round-off in s / dt.
    l_min, l_max = math.ceil(s_min / dt - 1e-9), math.floor(s_max / dt + 1e-9)
    if l_max - l_min + 1 < MIN_FIT_POINTS:
        raise ParameterError("lag_window", f"[{s_min:g}, {s_max:g}] holds {max(l_max - l_min + 1, 0)} grid lags "
                                           f"(dt = {dt:g}); need >= {MIN_FIT_POINTS}: widen it or run longer")
    if l_max > last_step:
        raise ParameterError("lag_window", f"s_max = {s_max:g} exceeds the final time {last_step * dt:g}")
    return l_min, l_max


@dataclass(frozen=True)
class Plan:
    """Where and on which lags to fit: shared by a pooled estimate and its jackknife replicas."""

    fit_anchors: tuple[int, ...]
    earlier: int | None
    span: tuple[int, int]
    l_min: int
    l_max: int

    @property
    def anchor(self) -> int:
        """The latest fit anchor: the curve that is compared, plotted and stored."""
        return self.fit_anchors[-1]


def plan_window(source: FdtSource, final_time: float | None, lag_window: tuple[float, float] | None,
                average_over: float = 0.0) -> Plan:
    """The anchors and lags a fit at ``final_time`` reads (arguments as ``effective_temperature``'s)."""
    last_step = final_step(source, final_time)
    if not (average_over >= 0 and math.isfinite(average_over)):
        raise ParameterError("average_over", f"must be >= 0 and finite, got {average_over}")
    average_steps = round(average_over / source.dt)
    l_min, l_max = lag_steps(source, last_step - average_steps, lag_window)
    anchors, earlier, first, last = source.anchors(last_step, l_max, average_steps)
    return Plan(tuple(anchors), earlier, (first, last), l_min, l_max)
