"""Fault injection and file versions (issue 8, "Robustness").

1. A grid runner killed (SIGKILL) at random points, twice, then run again to the end, and
   a grid whose Dask worker is killed while it computes a point: the final file is
   complete, readable with dmft's readers, and holds exactly what an uninterrupted run
   writes (every dataset bit for bit, every summary column but the wall time).
2. Files whose format version is missing, 0 (written before format versions), or newer
   than this dmft: older ones are read (same layout), newer ones are refused with one line
   saying to upgrade, through the Python API and the command line (exit status 2).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from grid_helpers import assert_same_grid, raw_bytes, write_config

import dmft
from dmft.cli import main
from dmft.grid import GRID_FORMAT_VERSION, GridSpec, grid_metadata, load_point, load_summary, run_grid
from dmft.io import FORMAT_VERSION, SIMULATION_FORMAT_VERSION, FileFormatError, load_simulation
from dmft.simulate import SimulationOptions, simulate

# ----------------------------------------------------------------------------- killed runs

# Six points of ~0.1 s each (steps and samples chosen for that, not smaller): a kill after
# k points, plus a random fraction of a point, lands in the middle of the grid, while a
# point is computed or written. (At 80 steps faster draws brought a point to 0.065 s, and
# the Dask kill then sometimes found the victim's point already finished: nothing lost.
# That kill is now tried again, KILL_ATTEMPTS times at most.)
KILL_GRID = """
    algorithm = ["sgd", "persistent-sgd"]
    ridge = [0.0, 0.1, 0.2]
"""
KILL_BASE = """
seed = 11
[problem]
steps = 150
dt = 0.1
[solver]
samples = 8000
subpopulations = 2
"""
POINT_TIME = 0.1  # seconds, roughly, per point once a process is warm
TIMEOUT = 120  # seconds: a run that takes longer has hung
KILL_SEED, DASK_SEED = 101, 3  # where the kills land (any seed must pass)
KILL_ATTEMPTS = 4  # Dask kills that may all miss a running point (each did ~1 in 8 at 80 steps)


@pytest.fixture(scope="module")
def kill_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("config"), KILL_GRID, base=KILL_BASE)


@pytest.fixture(scope="module")
def reference(kill_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The grid computed without interruption (in this process: the numbers do not depend on the executor)."""
    path = tmp_path_factory.mktemp("reference") / "reference.h5"
    report = run_grid(GridSpec.from_toml(kill_config), path, workers=1)
    assert report.done == 6 and report.missing == 0
    return path


def grid_command(config: Path, output: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "dmft", "grid", str(config), "--output", str(output), *options]


ENV = {**os.environ, "NUMBA_NUM_THREADS": "1"}  # two cores, shared: no oversubscription


def group_members(group: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, pgrp, ...
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def run_and_kill(config: Path, output: Path, workers: int, points: int, delay: float, whole_group: bool) -> int:
    """Start `dmft grid`, wait until it has written ``points`` more points (one stderr line
    each), then ``delay`` seconds, and SIGKILL it: the whole process group, or only the
    coordinating process (its worker processes must then notice and exit by themselves).
    Returns the number of points it reported before the kill."""
    process = subprocess.Popen(grid_command(config, output, "--workers", str(workers)), stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True, env=ENV, start_new_session=True)
    watchdog = threading.Timer(TIMEOUT, os.killpg, (process.pid, signal.SIGKILL))  # a hung run fails, not hangs
    watchdog.start()
    seen = 0
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if " done in " in line or " failed: " in line:
                seen += 1
                if seen >= points:
                    break
        time.sleep(delay)
        if whole_group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait()
        if not whole_group and Path("/proc").is_dir():
            deadline = time.monotonic() + 10
            while group_members(process.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not group_members(process.pid), "worker processes outlived their killed coordinator"
    finally:
        watchdog.cancel()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        if process.stderr is not None:
            process.stderr.close()
    return seen


def done_points(output: Path) -> list[str]:
    summary = load_summary(output)  # a killed grid's file is readable as it is
    return [str(group).split("/")[1] for group, status in zip(summary["group"], summary["status"])
            if status == "done"]


def pending_points(output: Path) -> list[str]:
    summary = load_summary(output)
    return [str(group).split("/")[1] for group, status in zip(summary["group"], summary["status"])
            if status == "pending"]


def check_readable(output: Path, reference: Path) -> None:
    """Every point opens with dmft's readers and holds the reference numbers."""
    assert grid_metadata(output) == grid_metadata(reference)
    summary = load_summary(output)
    assert list(summary["status"]) == ["done"] * len(summary)
    for index in range(len(summary)):
        result, expected = load_point(output, index), load_point(reference, index)
        np.testing.assert_array_equal(result.C, expected.C)
        np.testing.assert_array_equal(result.test_error, expected.test_error)


def test_grid_killed_at_random_points_ends_equal_to_an_uninterrupted_run(tmp_path: Path, kill_config: Path,
                                                                         reference: Path) -> None:
    rng = np.random.default_rng(KILL_SEED)
    total = 6
    output = tmp_path / "grid.h5"
    finished: list[str] = []  # points finished before a kill
    untouched: dict[str, bytes] = {}  # and their raw bytes
    interrupted = 0
    # First kill: one process, killed with its group. Second: two worker processes, only
    # the coordinator killed (the orphaned workers must exit on their own).
    for workers, whole_group in ((1, True), (2, False)):
        before = done_points(output) if output.exists() else []
        remaining = total - len(before)
        if remaining < 2:
            break
        # 1 .. remaining - 1 more points, then the kill; two workers finish points in pairs, so
        # one point fewer there for the kill to land before the end.
        points = int(rng.integers(1, max(2, remaining - workers + 1)))
        delay = float(rng.uniform(0.0, POINT_TIME))
        seen = run_and_kill(kill_config, output, workers, points, delay, whole_group)
        assert seen == points
        done = done_points(output)
        assert set(before) <= set(done) and len(done) >= len(before) + points
        interrupted += len(done) < total
        finished += [name for name in done if name not in finished]
        untouched = raw_bytes(output, finished)
        assert Path(f"{output}.lock").exists()  # stale: the next run takes it over
    assert interrupted, "no kill landed in the middle of the grid"

    rerun = subprocess.run(grid_command(kill_config, output, "--workers", "2"), capture_output=True, text=True,
                           env=ENV, timeout=TIMEOUT, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{total} points, {total} done, 0 failed" in rerun.stdout
    assert not Path(f"{output}.lock").exists()
    assert_same_grid(output, reference)
    check_readable(output, reference)
    if not list(tmp_path.glob("grid.h5.damaged-*")):  # a salvaged file holds copies, elsewhere in the file
        assert raw_bytes(output, finished) == untouched, "a finished point was rewritten"


# Dask retries a point lost with its worker (allowed-failures, 3 by default) on another
# worker; with 0 it gives up on it at once (KilledWorker): the point is left missing and the
# next run computes it.
@pytest.mark.parametrize("allowed_failures", [3, 0], ids=["rescheduled", "given-up"])
def test_dask_worker_killed_mid_grid_ends_equal_to_an_uninterrupted_run(tmp_path: Path, kill_config: Path,
                                                                          reference: Path, allowed_failures: int,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("distributed")
    import dask

    # Inherited by the worker processes: one numba thread each. Two workers of two threads
    # on two cores, one of them restarting, make each point ~20 times slower.
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    rng = np.random.default_rng(DASK_SEED)
    spec = GridSpec.from_toml(kill_config)
    with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                     host="127.0.0.1") as cluster, \
            distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        # The last points may end before the kill, or the victim's point between the look at
        # what the workers process and the kill: then nothing is lost (a given-up run has
        # nothing to give up). No fault of the grid, but no test of it either: again, on a
        # fresh grid.
        for attempt in range(KILL_ATTEMPTS):
            output = tmp_path / f"dask-{attempt}.h5"
            report, killed = run_grid_and_kill_a_worker(spec, output, cluster, client, rng)
            if killed and (allowed_failures or report.lost):
                break
            assert report.failed == report.missing == 0 and report.done == len(spec), "nothing lost, yet not done"
        assert killed and (allowed_failures or report.lost), f"no kill caught a point being computed in {attempt + 1}"
        assert report.failed == 0  # a lost worker is not the point's fault
        if allowed_failures:
            assert report.missing == 0 and not report.lost, report.lost
        else:
            assert report.missing >= 1 and all("KilledWorker" in reason for _, reason in report.lost), report.lost
            assert sorted(index for index, _ in report.lost) == [int(name) for name in pending_points(output)]
            missing = report.missing
            report = run_grid(spec, output, scheduler=cluster.scheduler_address)  # the next run computes them
            assert report.computed == missing and report.reused == len(spec) - missing
        assert report.missing == 0 and report.done == len(spec)
    assert_same_grid(output, reference)
    check_readable(output, reference)


def run_grid_and_kill_a_worker(spec: GridSpec, output: Path, cluster: Any, client: Any,
                               rng: np.random.Generator) -> tuple[Any, bool]:
    """Run ``spec`` on the cluster and SIGKILL a worker that processes a point, after 1 ..
    total - 2 points are written and a random part of a point more; return the run's report
    and whether a worker was killed (none is if no point was left to process)."""
    pids = client.run(os.getpid)  # worker address -> pid of the worker process (not its nanny)
    points = int(rng.integers(1, len(spec) - 1))  # written before the kill: work remains
    written = threading.Event()

    def progress(event: Any) -> None:
        if event.computed >= points:
            written.set()

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["report"] = run_grid(spec, output, scheduler=cluster.scheduler_address, progress=progress)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            outcome["error"] = error
        finally:
            written.set()

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    assert written.wait(TIMEOUT) and "error" not in outcome, outcome.get("error")
    time.sleep(float(rng.uniform(0.0, POINT_TIME / 2)))
    busy = sorted(address for address, keys in client.processing().items() if keys and address in pids)
    if busy:
        victim = str(rng.choice(busy))  # a worker computing a point right now
        os.kill(pids[victim], signal.SIGKILL)
    runner.join(TIMEOUT)
    assert not runner.is_alive(), "the grid hangs after losing a worker"
    assert "error" not in outcome, repr(outcome.get("error"))
    # The nanny restarts the killed worker: wait for it, so the next attempt finds two.
    client.wait_for_workers(2, timeout=TIMEOUT)
    return outcome["report"], bool(busy)


# ----------------------------------------------------------------------------- format versions

# Files of each kind, then their version attribute rewritten: deleted, 0 (written before
# format versions), or one newer than this dmft.
VERSIONS = ["missing", "zero", "newer"]


def set_version(path: Path, attribute: str, how: str, current: int, group: str = "/") -> None:
    with h5py.File(path, "a") as handle:
        attrs = handle[group].attrs
        if how == "missing":
            del attrs[attribute]
        else:
            attrs[attribute] = 0 if how == "zero" else current + 1


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def assert_refused(outcome: Any, *fragments: str) -> None:
    """Exit status 2 and one line on the command line, saying why; no traceback."""
    assert outcome.exit_code == 2, outcome.output
    assert outcome.output.count("\n") == 1 and outcome.output.startswith("Error: "), outcome.output
    assert "Traceback" not in outcome.output and isinstance(outcome.exception, SystemExit)
    for fragment in fragments:
        assert fragment in outcome.output, outcome.output


# Langevin dynamics at T = 0.5: stationary after a few time units, so `dmft teff` answers.
LANGEVIN = {"dataset": "gmm2", "alpha": 2, "delta": 0.5, "ridge": 0.5, "loss": "logistic", "algorithm": "gd",
            "temperature": 0.5, "dt": 0.1, "steps": 120}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A `dmft solve`, a `dmft simulate` and a `dmft grid` file, each of the current format."""
    directory = tmp_path_factory.mktemp("versions")
    problem = dmft.Problem.from_flat(**LANGEVIN)
    paths = {"solve": directory / "solve.h5", "simulate": directory / "simulate.h5", "grid": directory / "grid.h5"}
    dmft.save(dmft.solve(problem, dmft.SolverOptions(samples=1000, subpopulations=4, seed=1)), paths["solve"])
    dmft.save(simulate(problem, SimulationOptions(dimension=200, seeds=2, seed=1)), paths["simulate"])
    paths["config"] = write_config(directory, 'batch_fraction = [0.3, 0.6]\n')
    assert run_grid(GridSpec.from_toml(paths["config"]), paths["grid"], workers=1).done == 2
    return paths


def copy(files: dict[str, Path], kind: str, tmp_path: Path) -> Path:
    target = tmp_path / files[kind].name
    shutil.copyfile(files[kind], target)
    return target


@pytest.mark.parametrize("how", VERSIONS)
def test_solve_file_of_another_version(files: dict[str, Path], tmp_path: Path, how: str) -> None:
    path = copy(files, "solve", tmp_path)
    set_version(path, "format_version", how, FORMAT_VERSION)
    if how == "newer":
        with pytest.raises(FileFormatError, match=rf"in format {FORMAT_VERSION + 1}; .*upgrade dmft"):
            dmft.load(path)
        for command in (("teff", str(path)), ("plot", str(path)), ("compare", str(path), str(files["simulate"]))):
            assert_refused(cli(*command), f"format {FORMAT_VERSION + 1}", "upgrade dmft")
        return
    old, current = dmft.load(path), dmft.load(files["solve"])
    np.testing.assert_array_equal(old.C, current.C)
    np.testing.assert_array_equal(old.stderr["R"], current.stderr["R"])
    assert old.problem == current.problem and old.options == current.options
    outcome = cli("teff", str(path), "--json")
    assert outcome.exit_code == 0 and '"T_eff"' in outcome.output, outcome.output
    outcome = cli("compare", str(path), str(files["simulate"]), "--max-z", "1000")
    assert outcome.exit_code == 0, outcome.output
    if how == "zero":  # the figures once: they take a while
        outcome = cli("plot", str(path))
        assert outcome.exit_code == 0 and "_C.png" in outcome.output, outcome.output


def test_old_solve_file_that_lacks_something_says_which_format(files: dict[str, Path], tmp_path: Path) -> None:
    path = copy(files, "solve", tmp_path)
    set_version(path, "format_version", "missing", FORMAT_VERSION)
    with h5py.File(path, "a") as handle:
        del handle["kernels"]
    message = "format 0, written before format versions"
    with pytest.raises(FileFormatError, match=rf"{message}.*missing kernels/Gamma_C"):
        dmft.load(path)
    assert_refused(cli("teff", str(path)), message, "kernels")
    assert_refused(cli("plot", str(path)), message, "kernels")


@pytest.mark.parametrize("how", VERSIONS)
def test_simulation_file_of_another_version(files: dict[str, Path], tmp_path: Path, how: str) -> None:
    path = copy(files, "simulate", tmp_path)
    set_version(path, "format_version", how, SIMULATION_FORMAT_VERSION)
    if how == "newer":
        with pytest.raises(FileFormatError, match="upgrade dmft"):
            load_simulation(path)
        for command in (("teff", str(path)), ("compare", str(files["solve"]), str(path))):
            assert_refused(cli(*command), f"format {SIMULATION_FORMAT_VERSION + 1}", "upgrade dmft")
        return
    old, current = load_simulation(path), load_simulation(files["simulate"])
    np.testing.assert_array_equal(old.C, current.C)
    assert old.problem == current.problem and old.options == current.options
    outcome = cli("teff", str(path), "--json")
    assert outcome.exit_code == 0 and '"T_eff"' in outcome.output, outcome.output


def unfinish_point(path: Path, name: str) -> None:
    """What a kill before point ``name`` was written leaves: an empty group, a pending row."""
    with h5py.File(path, "a") as handle:
        group = handle["points"][name]
        for key in list(group.attrs):
            del group.attrs[key]
        for key in list(group):
            del group[key]
        handle["summary/status"][int(name)] = np.array(b"pending", dtype=handle["summary/status"].dtype)


@pytest.mark.parametrize("how", VERSIONS)
def test_grid_file_of_another_version(files: dict[str, Path], tmp_path: Path, how: str) -> None:
    path = copy(files, "grid", tmp_path)
    set_version(path, "grid_format_version", how, GRID_FORMAT_VERSION)
    unfinish_point(path, "1")  # an interrupted grid: resumed only if its format is readable
    resume = ("grid", str(files["config"]), "--output", str(path), "--workers", "1", "--quiet")
    if how == "newer":
        upgrade = rf"grid format {GRID_FORMAT_VERSION + 1}; .*upgrade dmft"
        for read in (load_summary, grid_metadata, lambda p: load_point(p, 0)):
            with pytest.raises(FileFormatError, match=upgrade):
                read(path)
        before = path.read_bytes()
        assert_refused(cli(*resume), f"grid format {GRID_FORMAT_VERSION + 1}", "upgrade dmft", "--overwrite")
        assert path.read_bytes() == before  # refused before anything is written
        for command in (("plot", str(path)), ("plot", str(path), "--point", "0")):
            assert_refused(cli(*command), f"grid format {GRID_FORMAT_VERSION + 1}", "upgrade dmft")
        return
    assert list(load_summary(path)["status"]) == ["done", "pending"]
    assert grid_metadata(path) == grid_metadata(files["grid"])
    outcome = cli(*resume)
    assert outcome.exit_code == 0 and "1 computed now, 1 already there" in outcome.output, outcome.output
    assert_same_grid(path, files["grid"])
    np.testing.assert_array_equal(load_point(path, 1).C, load_point(files["grid"], 1).C)
    if how == "zero":
        outcome = cli("plot", str(path), "--x", "batch_fraction", "--y", "test_error")
        assert outcome.exit_code == 0 and "wrote " in outcome.output, outcome.output


@pytest.mark.parametrize("how", VERSIONS)
def test_grid_point_of_another_version(files: dict[str, Path], tmp_path: Path, how: str) -> None:
    # A point group has the layout of a `dmft solve` file and its own format_version.
    path = copy(files, "grid", tmp_path)
    set_version(path, "format_version", how, FORMAT_VERSION, group="points/0")
    if how == "newer":
        with pytest.raises(FileFormatError, match=rf"/points/0: written by .* format {FORMAT_VERSION + 1}; "
                                                  r".*upgrade dmft"):
            load_point(path, 0)
        assert_refused(cli("plot", str(path), "--point", "0"), f"format {FORMAT_VERSION + 1}", "upgrade dmft")
        assert load_point(path, 1).C.shape == (11, 11)  # the other points stay readable
        return
    np.testing.assert_array_equal(load_point(path, 0).C, load_point(files["grid"], 0).C)
    outcome = cli("plot", str(path), "--point", "0")
    assert outcome.exit_code == 0 and "wrote " in outcome.output, outcome.output
