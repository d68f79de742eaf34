"""dmft.statistics: the mean of independent runs and its standard error."""

import math

import numpy as np
import pytest

from dmft.statistics import jackknife_stderr, mean_and_stderr


def test_standard_error_is_the_spread_over_the_root_of_the_runs():
    runs = [np.array([1.0, 2.0]), np.array([3.0, 2.0]), np.array([5.0, 2.0])]
    mean, stderr = mean_and_stderr(runs)
    np.testing.assert_array_equal(mean, [3.0, 2.0])
    np.testing.assert_allclose(stderr, [2.0 / math.sqrt(3), 0.0], rtol=1e-15)  # sample std 2, then 0


def test_one_run_has_no_standard_error():
    mean, stderr = mean_and_stderr([np.array([1.5, -2.0])])
    np.testing.assert_array_equal(mean, [1.5, -2.0])
    assert np.all(np.isnan(stderr))


def test_jackknife_of_the_mean_is_its_standard_error():
    # An exact identity: leave-one-out means of n runs give back std(ddof=1) / sqrt(n).
    runs = np.random.default_rng(3).standard_normal(9)
    leave_out = [np.delete(runs, i).mean() for i in range(runs.size)]
    assert jackknife_stderr(leave_out) == pytest.approx(mean_and_stderr(runs)[1], rel=1e-12)
