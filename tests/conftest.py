import os
import sys
from pathlib import Path

import pytest

# One OpenBLAS thread per test process (before numpy loads): the suite runs a process per
# core, and BLAS threads on top of them made the simulator's products cost 4x the CPU.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# The test helpers (stats.py, exact_square_gd.py) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Before the workers of a whole-suite run start, compile the kernel variants, one
    process per worker (as `dmft compile --all --jobs N` does).

    numba compiles a kernel at its first call, on one core, and caches it on disk. Without
    this, the workers of a fresh checkout compile the same variants at the same time, and
    compilation is most of a first run. A run of chosen files, markers or keywords skips it.
    """
    config = session.config
    workers = getattr(config.option, "numprocesses", None) or 0
    whole_suite = (config.args_source == pytest.Config.ArgsSource.TESTPATHS and not config.option.markexpr
                   and not config.option.keyword and not config.option.collectonly)
    if hasattr(config, "workerinput") or not isinstance(workers, int) or workers < 2 or not whole_suite:
        return
    from dmft.warmup import all_variants, compile_kernels

    # Not the double-precision probe kernels: test_solver_methods.py's fresh-versus-cached
    # test compiles those in its own process and compares them with a cache load; compiled
    # here, they would be compiled a second time for it, in a subprocess with an empty cache.
    # Not the threaded exact-response kernels either: no test runs them (30 s of compilation).
    selected = [v for v in all_variants() if not (v.precision == "double" and v.response == "probe")
                and not (v.response == "exact" and v.threaded)]
    jobs = min(workers, os.cpu_count() or 1)
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        terminal.write_line(f"compiling (or loading) the numba kernels in {jobs} processes before the tests")
    seconds = compile_kernels(selected, jobs=jobs)
    if terminal is not None:
        terminal.write_line(f"kernels ready in {seconds:.0f} s")


# The longest files first (by their measured durations): with a file per process
# (--dist=loadfile) a long file handed out last keeps one process busy while the others
# have finished. test_weight_kernels.py, which compiles double-precision kernels, starts
# after the fresh-versus-cached test has compiled its own.
LONGEST_FILES = ("test_solver_methods.py", "test_momentum_teacher_dmft.py", "test_overparametrized.py", "test_fdt.py",
                 "test_warmup.py", "test_compare.py", "test_weight_kernels.py", "test_faults.py")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # The fresh-versus-cached compilation test first (its file first, when files are shared
    # among processes): it compiles the double-precision probe kernels itself, before
    # another test can put them in the cache and force a second compilation in a subprocess.
    def order(item: pytest.Item) -> tuple[int, bool]:
        name = item.path.name
        rank = LONGEST_FILES.index(name) if name in LONGEST_FILES else len(LONGEST_FILES)
        return rank, item.name != "test_same_numbers_from_fresh_and_cached_compilations"

    items.sort(key=order)
