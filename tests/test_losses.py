"""The per-sample losses against numpy's formulas and central differences."""

import numpy as np
import pytest

from dmft.loss_kernels import loss_terms_array
from dmft.losses import LINEAR, LOSS_CODES, SYMMETRIC

MARGIN, SHARPNESS, THETA = 1.0, 3.0, 0.5
# Preactivations from the quadratic regime to where a naive exp(-z) overflows.
H = np.concatenate([np.linspace(-6.0, 6.0, 121), [-800.0, -40.0, -31.0, 31.0, 40.0, 800.0]])


def expected_value(name: str, z: np.ndarray) -> np.ndarray:
    if name == "logistic":
        return np.logaddexp(0.0, -z)
    if name == "smooth-hinge":
        return np.logaddexp(0.0, SHARPNESS * (MARGIN - z)) / SHARPNESS
    if name == "square-hinge":
        return 0.5 * np.maximum(MARGIN - z, 0.0) ** 2
    return 0.5 * (1.0 - z) ** 2  # square: (y - phi)^2 / 2 with y^2 = 1


@pytest.mark.parametrize("readout", [LINEAR, SYMMETRIC], ids=["linear", "symmetric"])
@pytest.mark.parametrize("name", ["logistic", "square", "square-hinge", "smooth-hinge"])
@pytest.mark.parametrize("label", [1.0, -1.0])
def test_loss_value_and_derivatives(name, readout, label):
    h = H if readout == LINEAR else H[np.abs(H) < 7]  # h^2 of the large h would swamp the differences
    y = np.full_like(h, label)
    value, d1, d2, gap = loss_terms_array(LOSS_CODES[name], readout, MARGIN, SHARPNESS, THETA, y, h)
    phi = h if readout == LINEAR else h * h - THETA
    # numba may fuse h * h - theta into one rounding (an FMA): the last bit can differ.
    np.testing.assert_allclose(gap, y * phi, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(value, expected_value(name, gap), rtol=1e-14)
    assert np.all(np.isfinite(d1)) and np.all(np.isfinite(d2))
    # Central differences, where the loss is smooth (away from the square hinge's kink).
    step = 1e-5
    smooth = np.abs(h) < 7
    if name == "square-hinge":
        smooth &= np.abs(MARGIN - y * phi) > 1e-3
    plus = loss_terms_array(LOSS_CODES[name], readout, MARGIN, SHARPNESS, THETA, y, h + step)
    minus = loss_terms_array(LOSS_CODES[name], readout, MARGIN, SHARPNESS, THETA, y, h - step)
    scale = 1.0 + np.abs(d1[smooth])
    np.testing.assert_allclose(((plus[0] - minus[0]) / (2 * step))[smooth] / scale, d1[smooth] / scale, atol=1e-7)
    scale = 1.0 + np.abs(d2[smooth])
    np.testing.assert_allclose(((plus[1] - minus[1]) / (2 * step))[smooth] / scale, d2[smooth] / scale, atol=1e-6)


@pytest.mark.parametrize("fastmath", [False, "kernels"], ids=["strict", "kernel-flags"])
def test_vectorised_softplus_and_sigmoid_match_libm_within_a_few_ulp(fastmath):
    # The population kernel's polynomial exp(-|x|) and log1p, against libm through the
    # scalar path (_softplus_and_sigmoid), from 0 to where e^-|x| is the smallest normal
    # double and beyond; NaN stays NaN, infinities give the limits. Compiled strictly and
    # with the flags of the kernels that inline it (reassociation, contraction).
    import math

    import numba

    from dmft.loss_kernels import _softplus_and_sigmoid, softplus_and_sigmoid_rows
    from dmft.solvers.kernels.layout import FAST

    @numba.njit(error_model="numpy", fastmath=FAST if fastmath else False)
    def rows(x):
        softplus, sigmoid, work = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        softplus_and_sigmoid_rows(x, softplus, sigmoid, work)
        return softplus, sigmoid

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 3, 20000), rng.uniform(-760, 760, 20000), np.linspace(-40, 40, 8001),
                        [0.0, -0.0, 1e-300, -1e-300, 707.9, -707.9, 708.5, -708.5, 745.2, -745.2, 1e6, -1e6]])
    softplus, sigmoid = rows(x)
    expected = np.array([_softplus_and_sigmoid(v) for v in x])
    ulp = np.finfo(float).eps
    tiny = 1.01 * np.exp(-708.0)  # below, e^-|x| is taken as e^-708 (to its ulps): an absolute error
    for got, want in ((softplus, expected[:, 0]), (sigmoid, expected[:, 1])):
        error = np.abs(got - want)
        assert np.all(error <= 4 * ulp * np.abs(want) + tiny), float(np.max(error / (np.abs(want) + tiny)))
    nan_sp, nan_sg = rows(np.array([math.nan, math.inf, -math.inf]))
    assert math.isnan(nan_sp[0]) and math.isnan(nan_sg[0])
    assert nan_sp[1] == math.inf and nan_sg[1] == 1.0
    assert 0.0 <= nan_sp[2] <= tiny and 0.0 <= nan_sg[2] <= tiny
