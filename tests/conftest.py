import os
import sys
from pathlib import Path

import pytest

# The test helpers (stats.py, exact_square_gd.py) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Before the workers of a whole-suite run start, compile every kernel variant, one
    process per worker (`dmft compile --all --jobs N`).

    numba compiles a kernel at its first call, on one core, and caches it on disk. Without
    this, the workers of a fresh checkout compile the same variants at the same time, and
    compilation is most of a first run. A run of chosen files or markers skips it.
    """
    config = session.config
    workers = getattr(config.option, "numprocesses", None) or 0
    whole_suite = config.args_source == pytest.Config.ArgsSource.TESTPATHS and not config.option.markexpr
    if hasattr(config, "workerinput") or not isinstance(workers, int) or workers < 2 or not whole_suite:
        return
    from dmft.warmup import all_variants, compile_kernels

    jobs = min(workers, os.cpu_count() or 1)
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        terminal.write_line(f"compiling (or loading) the numba kernels in {jobs} processes before the tests")
    seconds = compile_kernels(all_variants(), jobs=jobs)
    if terminal is not None:
        terminal.write_line(f"kernels ready in {seconds:.0f} s")
