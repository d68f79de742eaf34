"""`dmft compile`, a first run's compilation in two processes, and the notice it prints."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numba
import pytest
from click.testing import CliRunner

import dmft
from dmft.cli import main
from dmft.warmup import HELPER_PARTS, PARTS, CompileNotice, RunKernels, all_variants, variants


def _fresh_function(module: str):
    """A numba function not compiled yet, as if defined in ``module``."""
    def add_one(x):
        return x + 1

    add_one.__module__ = module
    return numba.njit(add_one)


def test_notice_appears_when_a_kernel_compiles_and_never_when_it_loads():
    """A notice printed on every run would teach users to ignore it; one never printed is useless."""
    kernel = _fresh_function("dmft.solvers.kernels.example")
    first, again, elsewhere = io.StringIO(), io.StringIO(), io.StringIO()
    with CompileNotice(stream=first) as notice:
        kernel(1)
        kernel(2)  # the same signature: compiled once, shown once
    assert notice.shown and first.getvalue().count("compiling kernels, first run only") == 1
    with CompileNotice(stream=again) as notice:
        kernel(3)  # already compiled: nothing to wait for
    assert not notice.shown and again.getvalue() == ""
    with CompileNotice(stream=elsewhere) as notice:
        _fresh_function("another_package")(1)  # not one of ours
    assert not notice.shown and elsewhere.getvalue() == ""
    quiet = io.StringIO()
    with CompileNotice(stream=quiet, enabled=False) as notice:  # --quiet or not a terminal
        _fresh_function("dmft.example")(1)
    assert not notice.shown and quiet.getvalue() == ""


def test_variants_cover_both_kernel_paths_of_each_option():
    """Threaded and serial kernels are compiled separately: a warm-up missing one leaves a first run waiting."""
    default = variants()
    assert {(v.replicas, v.threaded) for v in default} == {(1, False), (1, True), (2, False), (2, True)}
    every = all_variants()
    assert {v.precision for v in every} == {"single", "double", "compact"}
    assert {v.response for v in every} == {"probe", "exact"}
    assert not any(v.replicas == 2 and v.response == "exact" for v in every)  # two replicas take probes only


def test_compile_command_runs_every_default_variant():
    result = CliRunner().invoke(main, ["compile"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    timed = [line for line in lines if line.startswith("  ") and line.endswith(" s")]
    assert len(timed) == len(variants()) + 1  # one line per variant and the simulator
    assert lines[-1].startswith("done in")


def test_compile_command_shares_the_variants_among_processes():
    # Each variant reported once, whichever process compiled it.
    result = CliRunner().invoke(main, ["compile", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    timed = sorted(line.rsplit(None, 2)[0].strip() for line in result.output.splitlines()
                   if line.startswith("  ") and line.endswith(" s"))
    assert timed == sorted([v.describe().strip() for v in variants()] + ["finite-d simulator"])


def test_threaded_kernels_of_a_run_follow_the_solver_rules():
    default = RunKernels.of(dmft.Problem.from_flat(), dmft.SolverOptions())  # 2500 samples x 101 steps
    assert default == RunKernels(population=False, draws=False, cholesky=False, weights=False)
    # The README's 600-step example: 8000 x 601^2 = 2.9e9 < THREADED_RUN_WORK, serial throughout.
    long = RunKernels.of(dmft.Problem.from_flat(steps=600), dmft.SolverOptions(samples=8000, subpopulations=8),
                         threads=1)
    assert long == RunKernels(population=False, draws=False, cholesky=False, weights=False)
    # W1 of the benchmarks: 10^4 x 1001^2 = 1.0e10. Its four populations of 2500 samples run
    # side by side on two threads, and on one thread there are no threads to use: serial
    # kernels. As one subpopulation on two threads, a threaded run.
    w1_problem, w1_options = dmft.Problem.from_flat(steps=1000), dmft.SolverOptions(samples=10_000)
    assert RunKernels.of(w1_problem, w1_options, threads=2) == RunKernels(False, False, False, False)
    assert RunKernels.of(w1_problem, w1_options, threads=1) == RunKernels(False, False, False, False)
    single = dmft.SolverOptions(samples=10_000, subpopulations=1)
    assert RunKernels.of(w1_problem, single, threads=2) == RunKernels(True, True, True, True)
    assert RunKernels.of(w1_problem, single, threads=1) == RunKernels(False, False, False, False)
    one = RunKernels.of(dmft.Problem.from_flat(steps=400), dmft.SolverOptions(samples=40_000, subpopulations=1),
                        threads=2)  # 40000 x 401^2 = 6.4e9
    assert one == RunKernels(population=True, draws=True, cholesky=True, weights=False)  # 400 - 1 < 512
    narrow = RunKernels.of(w1_problem, dmft.SolverOptions(samples=150, subpopulations=1), threads=2)
    # 150 x 1001^2 = 1.5e8 < 5e9: serial throughout, however long
    assert narrow == RunKernels(False, False, False, False)
    assert set(HELPER_PARTS) < set(PARTS)


# Run in a new interpreter with an empty numba cache: a first run. Prints which kernels
# the solve after compile_for_run compiled (none should), which ones this process loaded
# from the cache (the helper's) and the solution's C.
FIRST_RUN = r"""
import json, subprocess, sys
from numba.core import event
import dmft
from dmft import warmup
from dmft.solvers.kernels import weight_side

if sys.argv[1] == "failing helper":  # it dies at once, leaving this process to compile its half
    warmup._start_helper = lambda *run: subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
problem = dmft.Problem.from_flat(dataset="teacher-student", momentum=0.5, steps=8)
options = dmft.SolverOptions(samples=400, subpopulations=2, memory_window=0.5)
warmup.compile_for_run(problem, options)
compiled = []
class Listener(event.Listener):
    def on_start(self, e):
        compiled.append(e.data["dispatcher"].py_func.__qualname__)
    def on_end(self, e):
        pass
with event.install_listener("numba:compile", Listener()):
    result = dmft.solve(problem, options)
hits = len(weight_side.advance_weight_rows_serial._cache_hits)
print(json.dumps({"compiled_in_solve": compiled, "weights_loaded": hits, "C": result.C.tolist(),
                  "m": result.m.tolist()}))
"""


@pytest.mark.parametrize("how", ["helper", "failing helper"])
def test_a_first_run_compiles_everything_before_the_solve_once(tmp_path, how):
    """Two processes share the kernels of a first run: the solve after compiles nothing,
    what the helper compiled is loaded (or, if it failed, compiled here), and a later run
    gives the same numbers."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    done = subprocess.run([sys.executable, "-c", FIRST_RUN, how], env=env, capture_output=True, text=True, check=True)
    first = json.loads(done.stdout)
    assert first["compiled_in_solve"] == []
    assert first["weights_loaded"] == (1 if how == "helper" else 0)  # compiled by the helper, loaded here
    warm = json.loads(subprocess.run([sys.executable, "-c", FIRST_RUN, how], env=env, capture_output=True,
                                     text=True, check=True).stdout)
    assert warm["compiled_in_solve"] == [] and warm["C"] == first["C"] and warm["m"] == first["m"]
    here = dmft.solve(dmft.Problem.from_flat(dataset="teacher-student", momentum=0.5, steps=8),
                      dmft.SolverOptions(samples=400, subpopulations=2, memory_window=0.5))
    assert here.C.tolist() == first["C"] and here.m.tolist() == first["m"]  # kernels from this process's cache


def test_a_failing_helper_leaves_the_compilation_to_this_process(tmp_path, monkeypatch):
    """The helper is an optimisation: if it cannot start or dies, the run compiles alone."""
    from dmft import warmup

    python = sys.executable
    monkeypatch.setattr(warmup.sys, "executable", str(tmp_path / "no-such-python"))
    assert warmup._start_helper(dmft.Problem.from_flat(), dmft.SolverOptions()) is None
    warmup._finish_helper(None)
    dying = subprocess.Popen([python, "-c", "import sys; sys.exit(3)"], stderr=subprocess.PIPE)
    warmup._finish_helper(dying)  # no exception: what it did not compile is compiled here
    assert dying.returncode == 3
