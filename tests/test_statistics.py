"""dmft.statistics: the mean of independent runs and its standard error."""

import math

import numpy as np

from dmft.statistics import mean_and_stderr


def test_standard_error_is_the_spread_over_the_root_of_the_runs():
    runs = [np.array([1.0, 2.0]), np.array([3.0, 2.0]), np.array([5.0, 2.0])]
    mean, stderr = mean_and_stderr(runs)
    np.testing.assert_array_equal(mean, [3.0, 2.0])
    np.testing.assert_allclose(stderr, [2.0 / math.sqrt(3), 0.0], rtol=1e-15)  # sample std 2, then 0


def test_one_run_has_no_standard_error():
    mean, stderr = mean_and_stderr([np.array([1.5, -2.0])])
    np.testing.assert_array_equal(mean, [1.5, -2.0])
    assert np.all(np.isnan(stderr))
