"""Single-threaded compilations of the parallel kernels.

Most runs use only these: subpopulations solved side by side, each on one thread
(``solvers.runs``; the copies release the interpreter's lock), and the small runs and
early steps of one subpopulation at a time, where waking the thread pool at every step
(milliseconds on a busy machine) costs more than the work. Both versions sum in the same
order: which one runs never changes a number.
"""

from __future__ import annotations

import types

import numba


def serial(kernel: numba.core.registry.CPUDispatcher) -> numba.core.registry.CPUDispatcher:
    """A single-threaded compilation of ``kernel`` under its own name.

    numba names cache files after the Python function's qualified name and line, and
    does not key them on ``parallel``: compiling the same Python function twice would
    make both dispatchers share one cache entry, and the parallel kernel would load the
    serial machine code. A renamed copy of the function gets its own cache file.
    """
    original = kernel.py_func
    copy = types.FunctionType(original.__code__, original.__globals__, original.__name__ + "_serial",
                              original.__defaults__, original.__closure__)
    copy.__qualname__ = original.__qualname__ + "_serial"
    copy.__module__ = original.__module__
    options = {key: kernel.targetoptions[key] for key in ("fastmath", "error_model") if key in kernel.targetoptions}
    return numba.njit(cache=True, nogil=True, **options)(copy)
