"""The counter-based streams behind the population's draws (dmft/solvers/streams.py).

Philox against Random123's published known answers; the normals against N(0, 1) by
Kolmogorov-Smirnov and chi-square tests on fixed draws (deterministic: a fixed key); the
step's draws (innovations, probe signs, selections) against their laws, with binomial
tolerances of four standard deviations.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy import stats

import dmft
from dmft.solvers import streams
from dmft.solvers.kernels.draws import draw_step, draw_step_serial
from dmft.solvers.population import ZETA_STEP, make_population


@numba.njit(cache=True)
def _philox(counter, key):
    return streams.philox(counter[0], counter[1], counter[2], counter[3], key[0], key[1])


@numba.njit(cache=True)
def _normals(key, steps, blocks, purpose):
    """streams.DRAW_BLOCK normals for each (step, block) of one purpose."""
    out = np.empty((steps, blocks, streams.DRAW_BLOCK))
    words = np.empty(streams.BUFFER_WORDS, np.uint64)
    for step in range(steps):
        for block in range(blocks):
            streams.standard_normals(out[step, block], words, (key, step, block, purpose))
    return out


KEY = np.array([0x12345678, 0x9ABCDEF0], dtype=np.uint64)


@pytest.mark.parametrize("counter, key, expected", [
    # Random123's kat_vectors, philox4x32 10: counter, key, output.
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_gives_random123s_known_answers(counter, key, expected):
    output = _philox(np.array(counter, dtype=np.uint64), np.array(key, dtype=np.uint64))
    assert tuple(int(x) for x in output) == expected


def test_words_are_philox_blocks_in_counter_order_however_the_stream_is_cut():
    stream = (KEY, 7, 3, streams.NORMALS)
    whole = np.empty(32, np.uint64)
    assert streams.fill_words(whole, streams.ZERO, stream) == 16
    first, rest = np.empty(16, np.uint64), np.empty(16, np.uint64)
    assert streams.fill_words(rest, streams.fill_words(first, streams.ZERO, stream), stream) == 16
    np.testing.assert_array_equal(np.concatenate([first, rest]), whole)
    x = _philox(np.array([5, 7, 3, streams.NORMALS], dtype=np.uint64), KEY)
    assert int(whole[10]) == int(x[0]) | int(x[1]) << 32 and int(whole[11]) == int(x[2]) | int(x[3]) << 32


def test_ziggurat_layers_all_have_the_same_area():
    x, ratio = streams.ZIGGURAT_X, streams.ZIGGURAT_RATIO
    density = lambda t: np.exp(-0.5 * t**2)  # noqa: E731
    area = x[0] * density(x[1])  # the base layer: its rectangle and the tail beyond R
    tail = math.sqrt(2 * math.pi) * stats.norm.sf(x[1])
    np.testing.assert_allclose(x[1] * density(x[1]) + tail, area, rtol=1e-12)
    layers = x[1:-1] * (density(x[2:]) - density(x[1:-1]))
    # R and V are published to 13 digits: the top layer, built last, is off by 1.2e-9.
    np.testing.assert_allclose(layers, area, rtol=1e-8)
    assert x[-1] == 0 and np.all(np.diff(x[1:]) < 0)
    np.testing.assert_allclose(ratio, x[1:] / x[:-1], rtol=0)


@pytest.mark.physics
def test_normals_follow_the_standard_normal_law():
    z = _normals(KEY, 40, 400, streams.NORMALS).ravel()  # 1 024 000 draws
    n = z.size
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-4
    # Fine bins catch an error in a wedge (1% of the draws) that the KS statistic may miss.
    edges = np.concatenate([[-np.inf], np.linspace(-3.5, 3.5, 141), [np.inf]])
    observed = np.histogram(z, edges)[0]
    expected = n * np.diff(stats.norm.cdf(edges))
    assert stats.chisquare(observed, expected).pvalue > 1e-4
    # The tail beyond R has its own algorithm: its frequency and its shape.
    tail_start = streams.ZIGGURAT_TAIL
    tail = np.abs(z[np.abs(z) > tail_start])
    p = 2 * stats.norm.sf(tail_start)
    assert abs(tail.size - n * p) < 4 * math.sqrt(n * p * (1 - p))
    truncated = stats.truncnorm(tail_start, np.inf)
    assert stats.kstest(tail, truncated.cdf).pvalue > 1e-4


@pytest.mark.physics
def test_streams_of_different_counters_are_uncorrelated():
    z = _normals(KEY, 20, 100, streams.NORMALS)
    other_key = _normals(KEY + np.uint64(1), 20, 100, streams.NORMALS)
    other_purpose = _normals(KEY, 20, 100, streams.SELECTION)
    n = z[1:].size
    pairs = [(z[1:], z[:-1]), (z[:, 1:], z[:, :-1]), (z, other_key), (z, other_purpose)]
    for a, b in pairs:  # next step, next sample block, another key, another purpose
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 4 / math.sqrt(n)


def _draws(algorithm, steps, samples=6000, chunk_size=256, precision="single", serial=False, probes=2):
    problem = dmft.Problem.from_flat(dataset="gmm2", algorithm=algorithm, batch_fraction=0.3, persistence_time=0.5,
                                     dt=0.1, steps=steps)
    population = make_population(problem, samples, np.random.SeedSequence(5), probes=probes, chunk_size=chunk_size,
                                 precision=precision)
    draw = draw_step_serial if serial else draw_step
    selections = np.empty((steps + 1, samples))
    for k in range(steps + 1):
        draw(k, population.stream_key, 0, population.switching, population.zeta_step, population.zeta,
             population.probes, population.selection)
        selections[k] = population.selection
    zeta = np.moveaxis(population.zeta, 1, 0).reshape(steps + 1, -1)[:, :samples]
    signs = np.moveaxis(population.probes, (1, 2), (0, 1)).reshape(probes, steps + 1, -1)[:, :, :samples]
    return population, zeta, signs, selections


def test_draws_do_not_depend_on_threads_or_chunk_width():
    _, zeta, signs, selections = _draws("persistent-sgd", 6, samples=1000)
    for chunk_size, serial in ((64, True), (100, False), (1000, False)):
        _, other_zeta, other_signs, other_selections = _draws("persistent-sgd", 6, samples=1000,
                                                              chunk_size=chunk_size, serial=serial)
        np.testing.assert_array_equal(other_zeta, zeta)
        np.testing.assert_array_equal(other_signs, signs)
        np.testing.assert_array_equal(other_selections, selections)


def test_double_precision_innovations_are_the_stored_ones_before_rounding():
    _, single, _, _ = _draws("sgd", 3)
    _, double, _, _ = _draws("sgd", 3, precision="double")
    np.testing.assert_array_equal(single, np.clip(np.rint(double / ZETA_STEP), -127, 127))


@pytest.mark.physics
def test_probe_signs_are_fair_independent_coins():
    _, _, signs, _ = _draws("sgd", 20)
    assert set(np.unique(signs)) == {-1, 1}
    n = signs[0].size
    assert abs(signs.mean()) < 4 / math.sqrt(signs.size)
    assert abs(np.mean(signs[0] * signs[1])) < 4 / math.sqrt(n)  # two probes of a sample
    assert abs(np.mean(signs[0, 1:] * signs[0, :-1])) < 4 / math.sqrt(n)  # consecutive steps


def _binomial_close(successes, trials, p):
    return abs(successes - trials * p) < 4 * math.sqrt(trials * p * (1 - p))


@pytest.mark.parametrize("algorithm, leave, join", [
    ("sgd", 0.7, 0.3),  # a fresh Bernoulli(b = 0.3) at every step
    ("persistent-sgd", 0.1 * 0.7 / (0.3 * 0.5), 0.1 / 0.5),  # dt (1 - b) / (b tau), dt / tau (docs/theory.md §1)
])
@pytest.mark.physics
def test_selections_follow_the_algorithms_switching_law(algorithm, leave, join):
    _, _, _, s = _draws(algorithm, 40)
    assert _binomial_close(s[0].sum(), s[0].size, 0.3)
    selected, unselected = s[:-1] == 1, s[:-1] == 0
    assert _binomial_close((s[1:][selected] == 0).sum(), selected.sum(), leave)
    assert _binomial_close((s[1:][unselected] == 1).sum(), unselected.sum(), join)


def test_gd_selects_every_sample_at_every_step():
    _, _, _, s = _draws("gd", 3)
    assert np.all(s == 1)


@pytest.mark.parametrize("algorithm, leave, join", [
    ("sgd", 0.7, 0.3),
    ("persistent-sgd", 0.1 * 0.7 / (0.3 * 0.5), 0.1 / 0.5),
])
@pytest.mark.physics
def test_the_simulators_selections_follow_the_same_law(algorithm, leave, join):
    # Algorithm.next_selection (numpy, finite-d simulator) shares the switching rule.
    law = dmft.Problem.from_flat(algorithm=algorithm, batch_fraction=0.3, persistence_time=0.5, dt=0.1).algorithm
    rng = np.random.default_rng(11)
    s = [law.initial_selection(rng, 6000)]
    for _ in range(40):
        s.append(law.next_selection(rng, s[-1], 0.1))
    s = np.array(s)
    assert _binomial_close(s[0].sum(), s[0].size, 0.3)
    selected, unselected = s[:-1] == 1, s[:-1] == 0
    assert _binomial_close((s[1:][selected] == 0).sum(), selected.sum(), leave)
    assert _binomial_close((s[1:][unselected] == 1).sum(), unselected.sum(), join)
