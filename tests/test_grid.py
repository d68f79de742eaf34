"""Parameter grids: configuration checks, reproducibility across executors, resumability, locking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from grid_helpers import assert_same_points, point_arrays, raw_bytes, small_spec, write_config

import dmft
from dmft.cli import main
from dmft.errors import DmftError, ParameterError
from dmft.grid import (GridEvent, GridProgress, GridSpec, OutputLock, load_point, load_summary, point_seed, point_teff,
                       run_grid)
from dmft.grid import executors as grid_executors
from dmft.grid import runner as grid_runner
from dmft.grid import worker as grid_worker
from dmft.io import read_result

# ----------------------------------------------------------------------------- configuration


def test_points_are_the_cartesian_product_in_order(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    assert spec.shape == (2, 2) and len(spec) == 4
    assert [p.coords for p in spec.points] == [
        {"algorithm": "sgd", "batch_fraction": 0.3}, {"algorithm": "sgd", "batch_fraction": 0.6},
        {"algorithm": "persistent-sgd", "batch_fraction": 0.3}, {"algorithm": "persistent-sgd", "batch_fraction": 0.6},
    ]
    assert spec.points[3].problem.algorithm.name == "persistent-sgd"
    assert spec.points[3].problem.steps == 10 and spec.points[3].options.samples == 400
    assert len({p.options.seed for p in spec.points}) == 4


def test_point_seed_depends_on_parameters_not_on_grid_order(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    reordered = GridSpec.from_toml(write_config(tmp_path, """
        batch_fraction = [0.6, 0.3]
        algorithm = ["persistent-sgd", "sgd"]
    """, name="other.toml"))
    seeds = {tuple(sorted(p.coords.items())): p.options.seed for p in spec.points}
    assert seeds == {tuple(sorted(p.coords.items())): p.options.seed for p in reordered.points}
    parameters = spec.points[0].parameters()
    assert point_seed(7, parameters) == spec.points[0].options.seed
    assert point_seed(8, parameters) != spec.points[0].options.seed
    # The solver seed is the grid seed too; both given and different is refused.
    with pytest.raises(ParameterError) as info:
        GridSpec.from_dict({"seed": 1, "solver": {"seed": 2}})
    assert info.value.parameter == "seed"
    assert GridSpec.from_dict({"solver": {"seed": 5}}).seed == 5


def bad(problem: str = "", solver: str = "", grid: str = "", top: str = "seed = 7") -> str:
    """A tiny configuration with one thing wrong somewhere."""
    return (f"{top}\n[problem]\nsteps = 10\n{problem}\n[solver]\nsamples = 400\nsubpopulations = 2\n{solver}\n"
            f"[grid]\nalpha = [1.0, 2.0]\n{grid}\n")


BAD_CONFIGS = [
    (bad(top="seed = 7\n[nonsense]\nx = 1"), "nonsense"),  # unknown table
    (bad(top="seed = 7\nridge = 0.1"), "ridge"),  # a problem key outside [problem]
    (bad(top="seed = -1"), "seed"),
    (bad(top='seed = "one"'), "seed"),
    (bad(problem="bogus = 1"), "bogus"),  # unknown key
    (bad(problem='ridge = "small"'), "ridge"),  # wrong type
    (bad(problem="samples = 400"), "samples"),  # wrong table
    (bad(problem="dt = 0.0"), "dt"),  # out of range, fixed value
    (bad(solver="ridge = 0.1"), "ridge"),
    (bad(solver='damping = "strong"'), "damping"),
    (bad(solver="seed = 3"), "seed"),  # differs from the top-level seed
    (bad(grid="delta = 0.5"), "delta"),  # not a list
    (bad(grid="delta = []"), "delta"),  # empty list
    (bad(grid="delta = [0.5, 0.5]"), "delta"),  # repeated value
    (bad(grid="whatever = [1, 2]"), "whatever"),
    (bad(grid="batch_fraction = [0.3, 0.6, 1.5]"), "batch_fraction"),  # out of range at one point
    (bad(grid="init_variance = [1.0, -1.0]"), "init_variance"),
    (bad(grid="subpopulations = [2, 300]"), "subpopulations"),  # a solver option out of range
    (bad(grid="chunk_size = [64, 2.5]"), "chunk_size"),
    (bad(grid='algorithm = ["sgd", "adam"]'), "algorithm"),
    (bad(grid="seed = [1, 2]"), "seed"),
    (bad(grid='algorithm = ["persistent-sgd"]\ndt = [0.1, 0.5]\npersistence_time = [0.2]'), "persistence_time"),
    (bad(grid="steps = [10, 20]"), "steps"),  # also in [problem]
    (bad(solver="damping = 0.1", grid="damping = [0.1, 0.2]"), "damping"),  # also in [solver]
]


@pytest.mark.parametrize("text, key", BAD_CONFIGS, ids=[f"{i}-{key}" for i, (_, key) in enumerate(BAD_CONFIGS)])
def test_bad_configuration_is_refused_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    output = tmp_path / "out.h5"
    result = CliRunner().invoke(main, ["grid", str(config), "--output", str(output), "--workers", "1"])
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"Error: {key}:"), message
    assert not output.exists() and not Path(f"{output}.lock").exists()
    with pytest.raises(ParameterError) as info:
        GridSpec.from_toml(config)
    assert info.value.parameter == key


def test_invalid_toml_and_missing_file_are_one_line_errors(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[problem\nsteps = 3\n")
    for path in (config, tmp_path / "missing.toml"):
        result = CliRunner().invoke(main, ["grid", str(path), "--output", str(tmp_path / "o.h5")])
        assert result.exit_code == 2 and result.output.startswith("Error: config:"), result.output


def test_a_bad_point_deep_in_the_grid_is_reported_with_its_coordinates(tmp_path: Path) -> None:
    with pytest.raises(ParameterError) as info:
        GridSpec.from_toml(write_config(tmp_path, """
            ridge = [0.0, 0.1]
            delta = [0.5, 1.0]
            batch_fraction = [0.5, 2.0]
        """))
    assert info.value.parameter == "batch_fraction"
    assert "grid point 1" in str(info.value) and "more bad points" in str(info.value)


# ----------------------------------------------------------------------------- running and reproducibility


def test_same_numbers_with_one_and_two_workers(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    report = run_grid(spec, one, workers=1)
    assert (report.done, report.failed, report.missing, report.computed) == (4, 0, 0, 4)
    run_grid(spec, two, workers=2)  # worker processes, points finishing in any order
    assert_same_points(one, two)
    a, b = load_summary(one), load_summary(two)
    for column in ("seed", "test_error", "train_loss", "m", "self_overlap_stderr"):
        np.testing.assert_array_equal(a[column], b[column])
    # A point equals a direct `dmft.solve` with the derived seed: the grid adds nothing to the numbers.
    point = spec.points[2]
    direct = dmft.solve(point.problem, point.options)
    stored = load_point(one, 2)
    np.testing.assert_array_equal(direct.C, stored.C)
    np.testing.assert_array_equal(direct.test_error, stored.test_error)


def test_same_numbers_on_a_dask_cluster(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    spec = small_spec(tmp_path)
    one, dask = tmp_path / "one.h5", tmp_path / "dask.h5"
    run_grid(spec, one, workers=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster:
        report = run_grid(spec, dask, scheduler=cluster.scheduler_address)
        with distributed.Client(cluster) as client:  # the workers share this host's cores
            threads = client.submit(grid_worker.numba_threads_on_dask, pure=False).result()
    assert threads == max(1, (os.cpu_count() or 1) // 2)
    assert (report.done, report.computed, report.missing) == (4, 4, 0)
    assert_same_points(one, dask)
    a, b = load_summary(one), load_summary(dask)
    for column in ("seed", "test_error", "train_loss", "m", "self_overlap_stderr"):
        np.testing.assert_array_equal(a[column], b[column])
    with h5py.File(dask, "r") as handle:  # computed elsewhere, written here
        assert handle["points/0"].attrs["computed_by"] != f"{os.uname().nodename}:{os.getpid()}"


def test_layout_summary_and_points(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    output = tmp_path / "grid.h5"
    run_grid(spec, output, workers=1)
    summary = load_summary(output)
    assert summary.dtype.names[:5] == ("point", "group", "algorithm", "batch_fraction", "status")
    for column in ("train_loss", "train_error", "test_error", "test_error_stderr", "T_eff", "T_eff_note", "wall_time",
                   "error", "seed"):
        assert column in summary.dtype.names
    assert list(summary["status"]) == ["done"] * 4
    assert list(summary["algorithm"]) == ["sgd", "sgd", "persistent-sgd", "persistent-sgd"]
    assert np.all(np.isfinite(summary["test_error"])) and np.all(summary["wall_time"] > 0)
    with h5py.File(output, "r") as handle:
        assert handle.attrs["kind"] == "dmft-grid"
        assert json.loads(handle.attrs["axes"]) == ["algorithm", "batch_fraction"]
        assert list(handle["axes/batch_fraction"][()]) == [0.3, 0.6]
        # Dimension scales: xarray / netCDF readers see every column along "point".
        assert handle["summary/test_error"].dims[0].label == "" and len(handle["summary/test_error"].dims[0]) == 1
        assert handle["summary/test_error"].dims[0][0].name == "/summary/point"
        group = handle["points/3"]
        assert group.attrs["status"] == b"done" or group.attrs["status"] == "done"
        assert group.attrs["algorithm"] == "persistent-sgd" and group.attrs["batch_fraction"] == 0.6
        assert json.loads(group.attrs["grid_coords"]) == {"algorithm": "persistent-sgd", "batch_fraction": 0.6}
        result = read_result(group)  # the layout of a `dmft solve` file
    assert result.problem == spec.points[3].problem and result.options == spec.points[3].options
    assert summary["test_error"][3] == result.test_error[-1]
    assert summary["train_loss_stderr"][3] == result.stderr["train_loss"][-1]


def test_failing_point_is_recorded_and_the_others_complete(tmp_path: Path) -> None:
    config = write_config(tmp_path, """
        dt = [0.1, 1.0]
        ridge = [0.0, 0.1]
    """, base="""
        seed = 7
        [problem]
        steps = 10
        algorithm = "gd"
        loss = "square"
        alpha = 4.0
        [solver]
        samples = 400
        subpopulations = 2
    """)
    output = tmp_path / "grid.h5"
    result = CliRunner().invoke(main, ["grid", str(config), "--output", str(output), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "2 done, 2 failed" in result.output and "DivergenceError" in result.output
    summary = load_summary(output)
    assert list(summary["status"]) == ["done", "done", "failed", "failed"]
    assert all("diverged" in message for message in summary["error"][2:])
    assert np.all(np.isnan(summary["test_error"][2:])) and np.all(np.isfinite(summary["test_error"][:2]))
    with h5py.File(output, "r") as handle:
        assert handle["points/2"].attrs["error_type"] == "DivergenceError"
    with pytest.raises(DmftError, match="failed"):
        load_point(output, 2)
    # Failed points are results: a second run leaves them; --retry-failed tries them again.
    report = run_grid(GridSpec.from_toml(config), output, workers=1)
    assert report.computed == 0 and report.failed == 2
    report = run_grid(GridSpec.from_toml(config), output, workers=1, retry_failed=True)
    assert report.computed == 2 and report.failed == 2 and report.done == 2


# ----------------------------------------------------------------------------- resuming


def test_killed_grid_resumes_and_leaves_earlier_points_untouched(tmp_path: Path) -> None:
    # Points of ~0.1-0.5 s each, so that a SIGKILL right after the first one leaves work to resume.
    config = write_config(tmp_path, """
        ridge = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35]
    """, base="""
        seed = 3
        [problem]
        steps = 40
        [solver]
        samples = 3000
        subpopulations = 2
    """)
    output = tmp_path / "grid.h5"
    command = [sys.executable, "-c", "from dmft.cli import main; main()", "grid", str(config), "--output", str(output),
               "--workers", "1"]
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
                               start_new_session=True)
    try:
        assert process.stderr is not None
        for line in process.stderr:  # one line per point written (stderr is not a terminal)
            if " done in " in line:
                break
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stderr.close()
    summary = load_summary(output)
    done = [name.split("/")[1] for name, status in zip(summary["group"], summary["status"]) if status == "done"]
    assert 1 <= len(done) < 8, "the kill should land in the middle of the grid"
    before = raw_bytes(output, done)
    assert Path(f"{output}.lock").exists()  # left behind by the killed run: stale, taken over below

    rerun = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{8 - len(done)} computed now, {len(done)} already there" in rerun.stdout
    assert list(load_summary(output)["status"]) == ["done"] * 8
    assert raw_bytes(output, done) == before
    assert not Path(f"{output}.lock").exists()
    # The resumed grid holds the numbers of an uninterrupted one.
    reference = tmp_path / "reference.h5"
    run_grid(GridSpec.from_toml(config), reference, workers=1)
    assert_same_points(output, reference)


def crash_on_point_one(task: object) -> object:
    """Stands in for the worker's solve_point in worker processes: point 1 kills its worker."""
    if getattr(task, "index") == 1:
        os._exit(1)
    return grid_worker.solve_point(task)  # type: ignore[arg-type]


def test_lost_worker_leaves_points_missing_and_the_next_run_completes(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    spec = small_spec(tmp_path)
    output = tmp_path / "grid.h5"
    with monkeypatch.context() as patch:
        patch.setattr(grid_executors, "solve_point", crash_on_point_one)
        report = run_grid(spec, output, workers=2)
        assert report.missing >= 1 and report.failed == 0  # not the point's fault: not recorded as failed
        assert 1 in [index for index, _ in report.lost] and "BrokenProcessPool" in report.lost[0][1]
        config = write_config(tmp_path, 'algorithm = ["sgd", "persistent-sgd"]\nbatch_fraction = [0.3, 0.6]\n')
        result = CliRunner().invoke(main, ["grid", str(config), "--output", str(output), "--workers", "2", "-q"])
        assert result.exit_code == 1 and "were not computed" in result.output, result.output
    summary = load_summary(output)
    assert summary["status"][1] == "pending"
    finished = [str(i) for i in range(4) if summary["status"][i] == "done"]
    before = raw_bytes(output, finished)
    report = run_grid(spec, output, workers=2)
    assert report.done == 4 and report.computed == 4 - len(finished)
    assert raw_bytes(output, finished) == before


def test_incomplete_point_is_detected_and_recomputed(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    output = tmp_path / "grid.h5"
    run_grid(spec, output, workers=1)
    reference = point_arrays(output)
    untouched = raw_bytes(output, ["0", "1", "3"])
    # What a kill in the middle of writing point 2 leaves: a group without status, half its datasets.
    with h5py.File(output, "a") as handle:
        group = handle["points/2"]
        del group.attrs["status"]
        del group["C"]
        handle["summary/status"][2] = np.array(b"pending", dtype=handle["summary/status"].dtype)
    report = run_grid(spec, output, workers=1)
    assert report.computed == 1 and report.reused == 3 and report.done == 4
    assert raw_bytes(output, ["0", "1", "3"]) == untouched
    recomputed = point_arrays(output)
    for key in reference["2"]:
        np.testing.assert_array_equal(recomputed["2"][key], reference["2"][key])


def test_summary_row_lagging_behind_its_group_is_rebuilt_without_recomputing(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    output = tmp_path / "grid.h5"
    run_grid(spec, output, workers=1)
    expected = load_summary(output)
    with h5py.File(output, "a") as handle:  # a kill between the group's status and its summary row
        handle["summary/status"][1] = np.array(b"pending", dtype=handle["summary/status"].dtype)
        handle["summary/test_error"][1] = np.nan
    report = run_grid(spec, output, workers=1)
    assert report.computed == 0
    summary = load_summary(output)
    assert summary["status"][1] == "done" and summary["test_error"][1] == expected["test_error"][1]


def test_damaged_file_is_salvaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = small_spec(tmp_path)
    output = tmp_path / "grid.h5"
    run_grid(spec, output, workers=1)
    reference = point_arrays(output)
    with h5py.File(output, "a") as handle:
        del handle["points/1"]["kernels"]  # unreadable point: dropped by the salvage, recomputed
        del handle["points/1"].attrs["status"]
    real_repair = grid_runner.repair

    def failing_repair(*args: object) -> None:  # as if HDF5 refused to touch the damaged file
        raise OSError("bad heap index")

    monkeypatch.setattr(grid_runner, "repair", failing_repair)
    events: list[GridEvent] = []
    report = run_grid(spec, output, workers=1, progress=events.append)
    monkeypatch.setattr(grid_runner, "repair", real_repair)
    assert report.salvaged_from is not None and report.salvaged_from.exists()
    assert "damaged" in events[0].message and "kept 3" in events[0].message
    assert report.reused == 3 and report.computed == 1 and report.done == 4
    assert_same_points(output, output)  # readable
    result = point_arrays(output)
    for name in reference:
        for key in reference[name]:
            np.testing.assert_array_equal(result[name][key], reference[name][key])


def test_different_configuration_against_existing_file_is_refused(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    output = tmp_path / "grid.h5"
    run_grid(spec, output, workers=1)
    before = output.read_bytes()
    other = GridSpec.from_toml(write_config(tmp_path, """
        algorithm = ["sgd", "persistent-sgd"]
        batch_fraction = [0.3, 0.7]
    """, name="other.toml"))
    with pytest.raises(DmftError, match=r"different grid .*batch_fraction"):
        run_grid(other, output, workers=1)
    steps = GridSpec.from_dict({"problem": {"steps": 11}, "solver": {"samples": 400, "subpopulations": 2},
                                "grid": {"algorithm": ["sgd", "persistent-sgd"], "batch_fraction": [0.3, 0.6]},
                                "seed": 7})
    with pytest.raises(DmftError, match="steps = 10 in the file, 11 now"):
        run_grid(steps, output, workers=1)
    assert output.read_bytes() == before
    # A solve file is not a grid file either.
    solve_file = tmp_path / "solve.h5"
    dmft.save(dmft.solve(spec.points[0].problem, spec.points[0].options), solve_file)
    with pytest.raises(DmftError, match="not a dmft grid file"):
        run_grid(spec, solve_file, workers=1)
    report = run_grid(other, output, workers=1, overwrite=True)
    assert report.computed == 4


# ----------------------------------------------------------------------------- one writer


def test_second_concurrent_writer_is_refused(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    output = tmp_path / "grid.h5"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from dmft.grid import OutputLock; "
                               "OutputLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)",
         str(output)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(DmftError, match=f"being written by another `dmft grid` \\(PID {holder.pid}"):
            run_grid(spec, output, workers=1)
        config = write_config(tmp_path, 'algorithm = ["sgd"]\n')
        result = CliRunner().invoke(main, ["grid", str(config), "--output", str(output)])
        assert result.exit_code == 2 and f"PID {holder.pid}" in result.output
        assert not output.exists()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    # The holder died without cleaning up: its lock file is stale and is taken over.
    assert Path(f"{output}.lock").exists()
    assert run_grid(spec, output, workers=1).done == 4


def test_lock_in_the_same_process_and_stale_lock_file(tmp_path: Path) -> None:
    output = tmp_path / "grid.h5"
    Path(f"{output}.lock").write_text(json.dumps({"pid": 999999999, "host": "elsewhere"}))
    with OutputLock(output) as lock:
        assert lock.stale == {"pid": 999999999, "host": "elsewhere"}
        assert json.loads(Path(f"{output}.lock").read_text())["pid"] == os.getpid()
        with pytest.raises(DmftError, match=f"PID {os.getpid()}"):
            OutputLock(output).acquire()
    assert not Path(f"{output}.lock").exists()


# ----------------------------------------------------------------------------- command line and helpers


def test_cli_grid_runs_and_reports(tmp_path: Path) -> None:
    config = write_config(tmp_path, 'batch_fraction = [0.2, 0.4]\n')
    output = tmp_path / "grid.h5"
    runner = CliRunner()
    result = runner.invoke(main, ["grid", str(config), "--output", str(output), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "2 points, 2 done, 0 failed (2 computed now, 0 already there)" in result.output
    assert "point 0 (batch_fraction=0.2) done in" in result.output  # not a terminal: one line per point
    result = runner.invoke(main, ["grid", str(config), "--output", str(output), "--quiet"])
    assert result.exit_code == 0 and "0 computed now, 2 already there" in result.output
    result = runner.invoke(main, ["grid", str(config), "--output", str(output), "--workers", "0"])
    assert result.exit_code == 2 and result.output.startswith("Error: workers:")
    result = runner.invoke(main, ["grid", str(config), "--output", str(output), "--workers", "2",
                                  "--scheduler", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2 and result.output.startswith("Error: workers:")


def test_unreachable_scheduler_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("distributed")
    monkeypatch.setattr(grid_executors, "SCHEDULER_TIMEOUT", "1s")
    config = write_config(tmp_path, 'batch_fraction = [0.2]\n')
    output = tmp_path / "grid.h5"
    result = CliRunner().invoke(main, ["grid", str(config), "--output", str(output), "--quiet",
                                       "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2 and result.output.startswith("Error: scheduler: cannot connect"), result.output
    assert load_summary(output)["status"][0] == "pending"  # nothing computed, the file is still resumable


def test_point_teff_adapter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    result = dmft.solve(spec.points[0].problem, spec.points[0].options)

    class Estimate:
        T_eff, T_eff_stderr = 0.25, 0.01

    import types

    fake = types.ModuleType("dmft.fdt")
    fake.effective_temperature = lambda r: Estimate()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dmft.fdt", fake)
    monkeypatch.setattr(dmft, "fdt", fake, raising=False)
    assert point_teff(result) == (0.25, 0.01, "")

    def refuse(r: object) -> None:
        raise DmftError("not stationary: C[k,k] drifts by 5%")

    fake.effective_temperature = refuse  # type: ignore[attr-defined]
    value, error, note = point_teff(result)
    assert np.isnan(value) and "not stationary" in note
    monkeypatch.setitem(sys.modules, "dmft.fdt", None)  # as if the module did not exist
    monkeypatch.delattr(dmft, "fdt", raising=False)
    value, error, note = point_teff(result)
    assert np.isnan(value) and note.startswith("dmft.fdt not available")


def test_progress_display(tmp_path: Path) -> None:
    import io

    spec = small_spec(tmp_path)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = GridProgress("grid.h5", stream=stream)
    run_grid(spec, tmp_path / "grid.h5", workers=1, progress=progress)
    progress.close()
    text = stream.getvalue()
    assert "\r" in text and "4/4 points" in text and "[####" in text
    quiet = io.StringIO()
    run_grid(spec, tmp_path / "other.h5", workers=1, progress=GridProgress("x", quiet=True, stream=quiet))
    assert quiet.getvalue() == ""


def test_example_configurations_are_valid() -> None:
    data = Path(__file__).parent.parent / "data"
    configs = sorted(data.glob("grid_*.toml"))
    assert any(path.name == "grid_sgd_batch.toml" for path in configs)
    for path in configs:
        spec = GridSpec.from_toml(path)
        assert len(spec) >= 2, path


def test_attributes_read_back_as_python_values() -> None:
    # h5py hands back numpy scalars, np.bytes_ included (a subclass of both bytes and np.generic).
    from dmft.io import attribute_value

    assert attribute_value(np.bytes_(b"done")) == "done" and attribute_value(b"x") == "x"
    assert type(attribute_value(np.float64(0.5))) is float and type(attribute_value(np.int64(3))) is int
    assert attribute_value("[1, 2]") == "[1, 2]"  # text stays text (error messages may start with "[")


def test_kernels_are_compiled_once_per_variant_before_local_workers(monkeypatch) -> None:
    # On a first run every local worker compiled the same kernels at the same time; the
    # coordinator now compiles each distinct variant once first (warmup.compile_for_run).
    # Points differing only in parameters the kernels take at run time share a variant; a
    # point too large to run is left to fail in its worker.
    from dmft import warmup

    calls = []
    monkeypatch.setattr(warmup, "compile_for_run",
                        lambda problem, options, threads=None: calls.append((options.precision, options.replicas)))
    spec = GridSpec.from_dict({"seed": 1, "problem": {"steps": 10}, "solver": {"samples": 200},
                               "grid": {"algorithm": ["sgd", "persistent-sgd"], "batch_fraction": [0.2, 0.5],
                                        "replicas": [1, 2], "precision": ["compact", "single"]}})
    grid_runner.compile_kernels(list(spec.points), threads=1)
    assert sorted(calls) == sorted([("compact", 1), ("compact", 2), ("single", 1), ("single", 2)])
    calls.clear()
    huge = GridSpec.from_dict({"seed": 1, "problem": {"steps": 10**6}, "solver": {"samples": 200},
                               "grid": {"batch_fraction": [0.2, 0.5]}})
    grid_runner.compile_kernels(list(huge.points), threads=1)  # memory refused: nothing compiled, no error
    assert calls == []
