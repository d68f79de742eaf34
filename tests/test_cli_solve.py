"""`dmft solve`: the file contract, configuration files, and bad input."""

import hashlib
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import dmft
from dmft.cli import main

SMALL = ["--steps", "8", "--samples", "400", "--subpopulations", "2", "--quiet"]


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_solve_writes_the_documented_file(tmp_path):
    out = tmp_path / "out.h5"
    result = run("solve", "--output", str(out), "--algorithm", "persistent-sgd", "--seed", "4", *SMALL)
    assert result.exit_code == 0, result.output
    assert "train_loss" in result.output
    with h5py.File(out, "r") as f:
        for name in ("time", "m", "C", "R", "train_loss", "train_error", "test_error", "m_stderr"):
            assert name in f
        for name in ("Gamma_C", "K", "mu_hat"):
            assert name in f["kernels"]
        assert f["C"].shape == (9, 9) and f["m"].shape == (9,)
        attrs = f.attrs
        for key in dmft.problem.PROBLEM_KEYS + ("dmft_version", "method", "seed", "wall_time", "samples",
                                                "min_relative_pivot"):
            assert key in attrs, key
        assert attrs["algorithm"] == "persistent-sgd" and attrs["seed"] == 4 and attrs["steps"] == 8
        assert attrs["dmft_version"] == dmft.__version__
        # Which code wrote it, between releases too: every source of the package, the numba kernels' helpers included.
        sources = sorted(Path(dmft.__file__).parent.rglob("*.py"))
        assert {"losses.py", "weight_side.py", "streams.py", "cli.py"} <= {path.name for path in sources}
        digest = hashlib.sha256()
        for path in sources:
            digest.update(path.relative_to(Path(dmft.__file__).parent).as_posix().encode() + b"\0"
                          + path.read_bytes() + b"\0")
        assert attrs["dmft_source_sha256"] == digest.hexdigest()
        # the same seed gives the same numbers only under the same random streams
        assert attrs["random_streams"] == dmft.solvers.population.draw_scheme("single")
        assert attrs["random_streams"].startswith(dmft.solvers.streams.SCHEME) and "int8" in attrs["random_streams"]
    loaded = dmft.load(out)
    assert loaded.problem.algorithm.name == "persistent-sgd"
    assert loaded.diagnostics["random_streams"] == dmft.solvers.population.draw_scheme("single")
    np.testing.assert_array_equal(loaded.R[np.arange(1, 9), np.arange(8)], 1.0)


def test_precision_option_reaches_the_solver_and_the_file(tmp_path):
    out = tmp_path / "compact.h5"
    result = run("solve", "--output", str(out), "--precision", "compact", *SMALL)
    assert result.exit_code == 0, result.output
    loaded = dmft.load(out)
    assert loaded.options.precision == "compact" and np.all(np.isfinite(loaded.C))
    refused = run("solve", "--output", str(tmp_path / "no.h5"), "--precision", "half", *SMALL)
    assert refused.exit_code == 2 and "--precision" in refused.output and not (tmp_path / "no.h5").exists()


def test_memory_window_option_reaches_the_solver_the_file_and_the_summary(tmp_path):
    out = tmp_path / "window.h5"
    result = run("solve", "--output", str(out), "--memory-window", "0.3", *SMALL)
    assert result.exit_code == 0, result.output
    loaded = dmft.load(out)
    assert loaded.options.memory_window == 0.3
    assert np.isfinite(loaded.diagnostics["memory_edge"]) and loaded.diagnostics["memory_tail"] > 0
    assert "memory window 0.3: |R| at its edge" in loaded.summary()  # the diagnostics are read back
    assert np.isfinite(loaded.diagnostics["memory_edge_stderr"])
    lag = np.subtract.outer(np.arange(loaded.R.shape[0]), np.arange(loaded.R.shape[0]))
    assert np.all(loaded.R[lag > 3] == 0.0) and np.any(loaded.R[lag == 3] != 0.0)
    assert "memory window 0.3: |R| at its edge" in result.output
    refused = run("solve", "--output", str(tmp_path / "no.h5"), "--memory-window", "-1", *SMALL)
    assert refused.exit_code != 0 and "memory_window" in refused.output and not (tmp_path / "no.h5").exists()


def test_loaded_result_equals_the_solved_one(tmp_path):
    problem = dmft.Problem.from_flat(steps=6)
    options = dmft.SolverOptions(samples=300, subpopulations=2, method="iterate")
    solved = dmft.solve(problem, options)
    dmft.save(solved, tmp_path / "r.h5")
    loaded = dmft.load(tmp_path / "r.h5")
    assert loaded.problem == problem and loaded.options == options
    for name in ("m", "C", "R", "A", "Gamma_C", "K", "mu_hat", "train_loss", "test_error"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(solved, name))
    assert loaded.diagnostics["converged"] == solved.diagnostics["converged"]


def test_config_file_with_command_line_override(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[problem]\nalgorithm = "gd"\nalpha = 3.0\n[solver]\nsamples = 300\nsubpopulations = 1\n')
    out = tmp_path / "o.h5"
    result = run("solve", "--config", str(config), "--alpha", "1.5", "--steps", "5", "--output", str(out), "-q")
    assert result.exit_code == 0, result.output
    with h5py.File(out) as f:
        assert f.attrs["algorithm"] == "gd" and f.attrs["alpha"] == 1.5 and f.attrs["samples"] == 300


@pytest.mark.parametrize("args, parameter", [
    (["--alpha", "0"], "alpha"),
    (["--delta", "-1"], "delta"),
    (["--batch-fraction", "1.5"], "batch_fraction"),
    (["--batch-fraction", "0"], "batch_fraction"),
    (["--algorithm", "persistent-sgd", "--persistence-time", "0.01"], "persistence_time"),
    (["--loss", "hinge"], "loss"),
    (["--temperature", "-0.1"], "temperature"),
    (["--dt", "0"], "dt"),
    (["--samples", "1"], "samples"),
    (["--rho", "1.2"], "rho"),
    (["--momentum", "1"], "momentum"),
    (["--momentum", "-0.1"], "momentum"),
    (["--label-noise", "0.1"], "label_noise"),  # not a teacher-student problem
    (["--dataset", "teacher-student", "--label-noise", "0.6"], "label_noise"),
])
def test_bad_parameters_exit_2_naming_the_parameter_and_write_nothing(tmp_path, args, parameter):
    out = tmp_path / "bad.h5"
    result = run("solve", "--output", str(out), *SMALL, *args)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and parameter in lines[0], result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_unknown_config_key_is_refused(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[problem]\nalpah = 2.0\n")
    result = run("solve", "--config", str(config), "--output", str(tmp_path / "o.h5"))
    assert result.exit_code == 2 and "alpah" in result.output


def test_divergence_stops_with_the_step_and_writes_nothing(tmp_path):
    out = tmp_path / "div.h5"
    result = run("solve", "--output", str(out), "--loss", "square", "--algorithm", "gd", "--dt", "3",
                 "--ridge", "0", "--steps", "200", "--samples", "400", "--subpopulations", "1", "-q")
    assert result.exit_code == 2
    assert "step" in result.output and "diverged" in result.output
    assert not out.exists()


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "o.h5"
    assert run("solve", "--output", str(out), *SMALL).exit_code == 0
    first = out.read_bytes()
    refused = run("solve", "--output", str(out), *SMALL, "--seed", "9")
    assert refused.exit_code == 2 and "--overwrite" in refused.output
    assert out.read_bytes() == first
    assert run("solve", "--output", str(out), *SMALL, "--seed", "9", "--overwrite").exit_code == 0


def test_output_gets_the_permissions_of_an_ordinary_new_file(tmp_path):
    out, plain = tmp_path / "o.h5", tmp_path / "plain"
    assert run("solve", "--output", str(out), *SMALL).exit_code == 0
    plain.write_text("")  # what open() gives under this umask (the temporary file was 0600)
    assert out.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    assert not list(tmp_path.glob(".o.h5.*"))  # no temporary left behind


def test_a_write_that_fails_midway_leaves_the_previous_file(tmp_path):
    from dmft.io import atomic_h5

    out = tmp_path / "o.h5"
    assert run("solve", "--output", str(out), *SMALL).exit_code == 0
    before = out.read_bytes()
    with pytest.raises(RuntimeError, match="midway"), atomic_h5(out, overwrite=True) as handle:
        handle["half"] = np.zeros(1000)
        handle.flush()  # bytes on disk, in the temporary file
        raise RuntimeError("midway")
    assert out.read_bytes() == before
    assert not list(tmp_path.glob(".o.h5.*"))


def test_a_killed_writers_temporary_is_removed_at_the_next_write(tmp_path):
    # A SIGKILL mid-write leaves ".o.h5.<host>+<pid>+*.tmp". The next write of o.h5 removes
    # those of this host's processes that are gone, and only those.
    import socket
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid now names no process (unless reused within this test: then kept, safely)
    host = socket.gethostname()
    stale = tmp_path / f".o.h5.{host}+{gone.pid}+abc.tmp"
    running = tmp_path / f".o.h5.{host}+{os.getpid()}+def.tmp"  # a write of this process, in progress
    elsewhere = tmp_path / f".o.h5.{host}x+{gone.pid}+ghi.tmp"  # another host's, on a shared disk
    other_file = tmp_path / f".p.h5.{host}+{gone.pid}+jkl.tmp"  # a temporary of another file
    for path in (stale, running, elsewhere, other_file):
        path.write_bytes(b"partial")
    assert run("solve", "--output", str(tmp_path / "o.h5"), *SMALL).exit_code == 0
    assert not stale.exists()
    assert running.exists() and elsewhere.exists() and other_file.exists()
    assert sorted(p.name for p in tmp_path.glob(".o.h5.*")) == sorted([running.name, elsewhere.name])


@pytest.mark.parametrize("proc_readable", [True, False])
def test_umask_is_read_without_being_changed(monkeypatch, proc_readable):
    from dmft.io import hdf5

    if not proc_readable:  # the portable fallback: set it and put it back
        monkeypatch.setattr(hdf5.Path, "read_text", lambda self: (_ for _ in ()).throw(OSError("no /proc")))
    previous = os.umask(0o027)
    try:
        assert hdf5._umask() == 0o027
        assert hdf5._default_mode() == 0o640
        assert os.umask(0o027) == 0o027  # left as it was
    finally:
        os.umask(previous)


def test_load_refuses_non_dmft_files(tmp_path):
    text = tmp_path / "x.h5"
    text.write_text("not hdf5")
    with pytest.raises(dmft.DmftError, match="not a readable HDF5"):
        dmft.load(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["kind"] = "something-else"
    with pytest.raises(dmft.DmftError, match="not a `dmft solve` result"):
        dmft.load(other)


def test_a_run_that_cannot_fit_in_memory_is_refused_before_any_work(tmp_path):
    out = tmp_path / "huge.h5"
    result = run("solve", "--output", str(out), "--steps", "40000", "-q")
    assert result.exit_code == 2 and "steps" in result.output and "GiB" in result.output
    assert not out.exists()


def test_wrongly_typed_solver_value_in_a_config_is_one_line(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[solver]\ndamping = "strong"\n')
    result = run("solve", "--config", str(config), "--output", str(tmp_path / "o.h5"))
    assert result.exit_code == 2 and "damping" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_python_dash_m_dmft_runs_the_command_line():
    import subprocess
    import sys

    completed = subprocess.run([sys.executable, "-m", "dmft", "--version"], capture_output=True, text=True)
    assert completed.returncode == 0 and dmft.__version__ in completed.stdout


def test_commands_leave_the_garbage_collector_as_they_found_it(tmp_path, monkeypatch):
    """Commands keep the numeric stack's objects out of the cyclic collector's reach while
    they run, and again at exit (``cli.imports_first``). A process that goes on after a
    command, as this one does, must collect as before: this fails if a command, finished
    or failed, leaves the collector off or objects frozen (cycles would never be freed),
    or adds its exit hook once per command, or turns on a collector the process had
    turned off."""
    import atexit
    import gc

    hooks = []  # atexit's registry, as seen through its two functions
    monkeypatch.setattr(atexit, "register", hooks.append)
    monkeypatch.setattr(atexit, "unregister", lambda function: [hooks.remove(f) for f in list(hooks) if f == function])
    for name, extra in (("a", ()), ("b", ("--dt", "-1")), ("c", ())):
        result = run("solve", "--output", str(tmp_path / f"{name}.h5"), *SMALL, *extra)
        assert result.exit_code == (2 if extra else 0), result.output
        assert gc.isenabled() and gc.get_freeze_count() == 0
        assert hooks.count(gc.freeze) == 1
    # A process that manages the collector itself is left as it was.
    gc.disable()
    try:
        assert run("solve", "--output", str(tmp_path / "d.h5"), *SMALL).exit_code == 0
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()
