"""What the machine can do at best, the unit of the benchmarks' floors: streaming read
bandwidth (``read_bandwidth``) and the cost of a process that only loads one numba kernel
(``process_floor``). Shared by ``bench_solver.py`` and ``bench_cli.py``.

The VM this project is measured on drifts, and its host has changed (reads beyond the
caches at 33-37 GB/s on the AMD host, 23-25 GB/s on the Intel one: docs/performance.md),
so a benchmark reads its wall times against the bandwidth measured in the same run.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

BANDWIDTH = r"""
import json, sys, time
import numba
import numpy as np

@numba.njit(parallel=True, fastmath=True)
def row_sums(x):
    out = np.zeros(x.shape[0])
    for i in numba.prange(x.shape[0]):
        s = 0.0
        for j in range(x.shape[1]):
            s += x[i, j]
        out[i] = s
    return out

x = np.ones((max(int(float(sys.argv[1]) / 4000), 1), 1000), dtype=np.float32)
row_sums(x)
passes = max(int(2e9 / x.nbytes), 1)  # about 2 GB read per timing: small arrays many times
rates = {}
for threads in (1, numba.config.NUMBA_NUM_THREADS):
    numba.set_num_threads(threads)
    walls = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(passes):
            row_sums(x)
        walls.append((time.perf_counter() - start) / passes)
    rates[threads] = x.nbytes / min(walls) / 1e9
print(json.dumps(rates))
"""

# The least a process calling a cached numba kernel does: start the interpreter, import
# numpy and numba, and load one kernel from numba's cache (numba's one-time set-up of its
# compiler's registries happens at the first load, whatever the kernel).
# Imported as `dmft`'s commands import (``dmft.cli.imports_first``): with the cyclic
# collector off, then frozen, and frozen again at exit. A plain script pays the
# collector's walks over numba's objects, 0.15-0.2 s that no command pays.
ONE_KERNEL = r"""
import atexit, gc
gc.disable()
import numba
gc.freeze()
gc.enable()
atexit.register(gc.freeze)

@numba.njit(cache=True)
def plus_one(x):
    return x + 1

plus_one(1)
"""


def read_bandwidth(python: str, size: float = 400e6) -> dict[int, float]:
    """Streaming read bandwidth in GB/s on one thread and on all of numba's, over an array
    of ``size`` bytes, measured in a new process of ``python`` (the best of five timings).

    The default, 400 MB, is beyond every cache: memory's bandwidth. A run whose data fit
    in the last-level cache reads faster (twice as fast on the Intel host of
    docs/performance.md up to 60 MB), so a floor takes the bandwidth at the run's own size.
    """
    output = subprocess.run([python, "-c", BANDWIDTH, str(size)], check=True, capture_output=True,
                            text=True).stdout
    return {int(threads): rate for threads, rate in json.loads(output.strip().splitlines()[-1]).items()}


def process_floor(python: str, work: Path, repeats: int = 3) -> float:
    """Median wall time of a new process of ``python`` that loads one numba kernel from a
    cache in the directory ``work`` (filled by a first run, not timed)."""
    script = work / "one_kernel.py"  # numba caches the kernels of files only
    script.write_text(ONE_KERNEL)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(work / "one_kernel_cache")}
    walls = []
    for repeat in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run([python, str(script)], env=env, check=True)
        if repeat > 0:
            walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def cpu_model() -> str:
    """The processor's name as the kernel reports it (the hosts of a VM change)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
