"""Single-threaded compilations of the parallel kernels.

For small populations and early steps the cost of waking the thread pool at every step
(milliseconds on a busy machine) exceeds the work itself. Both versions sum in the same
order, and which one runs depends only on the problem's size and the step, never on the
threads available.
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
