"""Counter-based random streams: the population's draws as pure functions of where they go.

Every random word of a step is Philox4x32-10 (Salmon, Moraes, Dror and Shaw 2011, "Parallel
random numbers: as easy as 1, 2, 3") of a counter (block, step, sample block, purpose) under
the population's key. So threads can fill the blocks of 64 samples in any order and any
number, and the numbers do not change; and the draws run inside numba, on all cores,
where numpy's generator ran on one. The 4x32 variant's multiplications are
32 x 32 -> 64 bits, which vectorise (vpmuludq), where Philox4x64's 128-bit products do not.

Standard normals use Doornik's ZIGNOR ziggurat (128 layers, 2005): one word per normal
99% of the time, exact up to the 53-bit resolution of its uniforms.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# Philox4x32 multipliers and Weyl increments of the key (Random123).
PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = np.uint64(0x9E3779B9)
PHILOX_W1 = np.uint64(0xBB67AE85)
PHILOX_ROUNDS = 10

# The scheme of the draws, written into every solve's file (``random_streams``, with how
# the innovations are stored: population.draw_scheme). A change here changes every result
# of a given seed, so it changes this name.
SCHEME = "philox4x32-10 counters (key, step, block of 64 samples, purpose); zignor-128 normals"
# Samples per block of draws: the unit a stream is keyed by, whatever the chunk width.
DRAW_BLOCK = 64
# Purposes of the streams of one replica (the counter's fourth word: purpose + N_PURPOSES * replica).
NORMALS, PROBE_SIGNS, SELECTION = range(3)
N_PURPOSES = 3
# Words generated at a time into a block's buffer: 64 normals take 66.6 +- 1.6 words, so
# one fill nearly always serves a block. A multiple of 16 words (8 Philox blocks, one
# vector of each 32-bit lane): 72 words cost as much as 128.
BUFFER_WORDS = 80

ZERO, ONE = np.uint64(0), np.uint64(1)  # uint64 arithmetic with an int64 literal would go through float64
LOW_32 = np.uint64(0xFFFFFFFF)
SHIFT_32 = np.uint64(32)
SHIFT_53 = np.uint64(11)
TO_UNIT = 2.0**-53
TO_UNIT_32 = 2.0**-32
LAYER_MASK = np.uint64(0x7F)


@numba.njit(cache=True, inline="always")
def philox(c0, c1, c2, c3, key0, key1):
    """Philox4x32-10 of the counter (c0, c1, c2, c3) under the key (key0, key1).

    32-bit words held in uint64 (the high halves stay zero), so each product of two words
    is exact: its high half is the ``mulhi`` of Random123.
    """
    for round_ in range(PHILOX_ROUNDS):
        if round_ > 0:
            key0 = (key0 + PHILOX_W0) & LOW_32
            key1 = (key1 + PHILOX_W1) & LOW_32
        product0 = PHILOX_M0 * c0
        product1 = PHILOX_M1 * c2
        c0, c1, c2, c3 = ((product1 >> SHIFT_32) ^ c1 ^ key0, product1 & LOW_32,
                          (product0 >> SHIFT_32) ^ c3 ^ key1, product0 & LOW_32)
    return c0, c1, c2, c3


@numba.njit(cache=True)
def fill_words(words, block, stream):
    """64-bit words of ``stream`` = (key, step, sample block, purpose) from Philox block
    ``block`` on into ``words`` (an even number of them); returns the next block.

    ``key`` holds two 32-bit words. Each Philox block gives two words: its outputs (x0, x1)
    and (x2, x3), low half first.
    """
    key, step, sample_block, purpose = stream
    block = np.uint64(block)
    c1, c2, c3 = np.uint64(step) & LOW_32, np.uint64(sample_block) & LOW_32, np.uint64(purpose) & LOW_32
    for i in range(words.shape[0] // 2):
        x0, x1, x2, x3 = philox((block + np.uint64(i)) & LOW_32, c1, c2, c3, key[0], key[1])
        words[2 * i] = x0 | (x1 << SHIFT_32)
        words[2 * i + 1] = x2 | (x3 << SHIFT_32)
    return block + np.uint64(words.shape[0] // 2)


@numba.njit(cache=True, inline="always")
def _take(words, position, block, stream):
    """The stream's next word, refilling ``words`` when used up: (word, position, block).

    Position and block travel as values, not in an array: kept in memory, they made every
    word several times dearer.
    """
    if position == words.shape[0]:
        block = fill_words(words, block, stream)
        position = 0
    return words[position], position + 1, block


@numba.njit(cache=True, inline="always")
def unit_open(word):
    """A uniform in (0, 1) from the word's top 53 bits (never 0: logarithms are safe)."""
    return (np.int64(word >> SHIFT_53) + 0.5) * TO_UNIT  # int64: a signed conversion is one instruction


@numba.njit(cache=True, inline="always")
def unit_32(word, half):
    """A uniform in (0, 1) from the low (``half`` 0) or high (1) 32 bits of the word: enough
    to compare with a probability p (P(u < p) is within 2^-32 of p)."""
    bits = (word >> np.uint64(32 * half)) & LOW_32
    return (np.int64(bits) + 0.5) * TO_UNIT_32


def ziggurat_tables(layers: int = 128, tail_start: float = 3.442619855899,
                    area: float = 9.91256303526217e-3) -> tuple[np.ndarray, np.ndarray]:
    """ZIGNOR's layer edges x[0..layers] (x[1] = R where the tail starts, x[layers] = 0) and
    ratios x[i+1] / x[i]. Every layer, and the base with the tail, has area ``area`` under
    exp(-x^2/2) (a test checks it)."""
    x = np.zeros(layers + 1)
    f = math.exp(-0.5 * tail_start**2)
    x[0], x[1] = area / f, tail_start
    for i in range(2, layers):
        x[i] = math.sqrt(-2.0 * math.log(area / x[i - 1] + f))
        f = math.exp(-0.5 * x[i] ** 2)
    return x, x[1:] / x[:-1]


ZIGGURAT_X, ZIGGURAT_RATIO = ziggurat_tables()
ZIGGURAT_TAIL = ZIGGURAT_X[1]


@numba.njit(cache=True)
def _rare_normal(u, i, words, position, block, stream):
    """ZIGNOR's rare branch (1% of the draws): the point u x[i] of layer ``i`` lies outside
    the layer's rectangle. Accept it from the wedge, or draw from the tail beyond R for the
    base layer (Marsaglia 1964); after a rejection, start over with a new point. Returns
    (the normal, position, block)."""
    x_table, ratio = ZIGGURAT_X, ZIGGURAT_RATIO
    while True:
        if i == 0:
            while True:
                word, position, block = _take(words, position, block, stream)
                x = math.log(unit_open(word)) / ZIGGURAT_TAIL
                word, position, block = _take(words, position, block, stream)
                if -2.0 * math.log(unit_open(word)) >= x * x:
                    return (x - ZIGGURAT_TAIL if u < 0.0 else ZIGGURAT_TAIL - x), position, block
        x = u * x_table[i]
        f0 = math.exp(-0.5 * (x_table[i] ** 2 - x * x))
        f1 = math.exp(-0.5 * (x_table[i + 1] ** 2 - x * x))
        word, position, block = _take(words, position, block, stream)
        if f1 + unit_open(word) * (f0 - f1) < 1.0:
            return x, position, block
        word, position, block = _take(words, position, block, stream)
        u = 2.0 * unit_open(word) - 1.0
        i = np.int64(word & LAYER_MASK)
        if abs(u) < ratio[i]:
            return u * x_table[i], position, block


@numba.njit(cache=True)
def standard_normals(out, words, stream):
    """Fill ``out`` with N(0, 1) draws of ``stream`` (``fill_words``; ``words``: a work
    buffer of BUFFER_WORDS).

    ZIGNOR: a point u x[i] of a random layer i, kept if inside the layer's rectangle (99%
    of the draws: one word each), else ``_rare_normal``. The common path reads the buffer
    directly and the rare one runs out of line, which keeps the common loop three times
    faster than through ``_take`` with the rare branch inline.
    """
    x_table, ratio = ZIGGURAT_X, ZIGGURAT_RATIO
    block = fill_words(words, ZERO, stream)
    position = 0
    for s in range(out.shape[0]):
        if position == words.shape[0]:
            block = fill_words(words, block, stream)
            position = 0
        word = words[position]
        position += 1
        u = 2.0 * unit_open(word) - 1.0
        i = np.int64(word & LAYER_MASK)  # bits 0-6; the uniform took bits 11-63
        if abs(u) < ratio[i]:
            out[s] = u * x_table[i]
        else:
            out[s], position, block = _rare_normal(u, i, words, position, block, stream)
