"""Subpopulations side by side (dmft/solvers/runs.py): results in order, progress over all
runs, a failure or an early stop that stops the runs still going, independent runs that
are the solves one by one, and fewer at once when memory is short."""

import threading
import time
from dataclasses import replace

import numpy as np
import pytest

import dmft
from dmft import solvers, workflows
from dmft.errors import ParameterError
from dmft.solvers import runs

STEPS = 20


def counting_run(name, pause, steps_taken, fail_at=None):
    """A run of STEPS steps of ``pause`` seconds; records its steps; raises at ``fail_at``."""
    def run(progress):
        for step in range(1, STEPS + 1):
            time.sleep(pause)
            if fail_at == step:
                raise ValueError(f"{name} failed")
            steps_taken[name] = step
            if progress is not None:
                progress(step, STEPS)
        return name, threading.get_ident()
    return run


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_come_in_order_whatever_finishes_first(workers):
    # The first runs are the slowest: side by side, later ones finish first. Out-of-order
    # results would change the running sums, hence the numbers, with the thread count.
    taken, reports, lock = {}, [], threading.Lock()

    def progress(done, total):
        with lock:
            reports.append((done, total))

    pauses = [0.004, 0.002, 0.001, 0.0, 0.0]
    tasks = [counting_run(index, pause, taken) for index, pause in enumerate(pauses)]
    results = list(runs.in_order(tasks, workers, STEPS, progress))
    assert [name for name, _ in results] == list(range(len(pauses)))
    here = threading.get_ident()
    assert all((thread == here) == (workers == 1) for _, thread in results)  # one worker: in this thread
    done = [d for d, _ in reports]
    assert done == sorted(done) and done[-1] == len(pauses) * STEPS  # every step counted, never backwards
    assert {total for _, total in reports} == {len(pauses) * STEPS}


def test_a_failed_run_raises_and_stops_the_others():
    # Run 1 fails at its third step; run 2, started when run 0 was handed on, must stop at
    # its next step rather than run its course.
    taken = {}
    tasks = [counting_run(0, 0.002, taken), counting_run(1, 0.0, taken, fail_at=3),
             counting_run(2, 0.05, taken)]
    with pytest.raises(ValueError, match="1 failed"):
        list(runs.in_order(tasks, 2, STEPS))
    assert taken[0] == STEPS and taken[1] == 2
    assert taken.get(2, 0) < STEPS


def test_a_caller_that_stops_early_stops_the_runs_still_going():
    # What an interruption does: the consumer leaves the loop (here, after the first
    # result); the run still going stops at its next step.
    taken = {}
    tasks = [counting_run(0, 0.0, taken), counting_run(1, 0.05, taken)]
    results = runs.in_order(tasks, 2, STEPS)
    assert next(results)[0] == 0
    results.close()
    assert taken.get(1, 0) < STEPS


def test_solve_runs_side_by_side_are_the_solves_one_by_one():
    # dmft.workflows.solve_runs runs its solves side by side: each must be what the solve of
    # its seed alone gives, bit for bit, and in the order of the seeds.
    problem = dmft.Problem.from_flat(steps=20)
    options = dmft.SolverOptions(samples=1200, subpopulations=3, seed=4)
    together = workflows.solve_runs(problem, options)
    for run, seed in zip(together, workflows.run_seeds(4, 3), strict=True):
        alone = dmft.solve(problem, replace(options, samples=400, subpopulations=1, seed=seed))
        for name in ("C", "R", "m", "train_loss"):
            np.testing.assert_array_equal(getattr(run, name), getattr(alone, name), err_msg=name)


def test_fewer_subpopulations_at_once_when_memory_is_short(monkeypatch):
    # As many side by side as fit in 90% of the available memory, and an error naming the
    # parameter when not even one does.
    problem, options = dmft.Problem.from_flat(steps=400), dmft.SolverOptions(samples=8000, subpopulations=8)
    one, two = (solvers.memory_estimate(problem, options, n) for n in (1, 2))
    monkeypatch.setattr(solvers, "available_memory", lambda: int((one + two) / 2 / 0.9))
    assert solvers.subpopulations_at_once(problem, options, threads=4) == 1
    monkeypatch.setattr(solvers, "available_memory", lambda: int(two / 0.9) + 1)
    assert solvers.subpopulations_at_once(problem, options, threads=4) == 2
    monkeypatch.setattr(solvers, "available_memory", lambda: int(one / 0.9) - 1)
    with pytest.raises(ParameterError):
        solvers.subpopulations_at_once(problem, options, threads=4)
