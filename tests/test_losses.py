"""The per-sample losses against numpy's formulas and central differences."""

import numpy as np
import pytest

from dmft.losses import LINEAR, LOSS_CODES, SYMMETRIC, loss_terms_array

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
