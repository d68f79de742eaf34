"""A step's random draws into the population's chunked storage: the innovations zeta_k,
the probe signs pi_k and the selection s(k), from counter-based streams (``streams``).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .. import streams
from .variants import serial

# Largest stored magnitude of an innovation in units of its lattice (int8 storage).
ZETA_MAX = 127.0
# From this many samples on, a step's draws run on all threads.
DRAW_PARALLEL_THRESHOLD = 2048


@numba.njit(parallel=True, cache=True)
def draw_step(k, key, replica, switching, zeta_step, zeta, probes, selection):
    """Step k's draws of one replica into the chunked storage: zeta_k (in units of
    ``zeta_step``, rounded and capped to +-ZETA_MAX unless ``zeta`` is float64), the
    probe signs pi_k, and s(k) (``selection``, in place: s(k-1) on entry for k > 0).

    Blocks of streams.DRAW_BLOCK samples, each from its own counter-based streams
    (``key``, k, block, purpose, ``replica``): the numbers depend neither on the threads
    nor on the chunk width. ``switching`` = (P(s(0) = 1), P(leave), P(join))
    (``Algorithm.switching_probabilities``); s(k) stays 1 when it cannot change (GD).
    """
    n = selection.shape[0]
    width = zeta.shape[2]
    n_probes = probes.shape[1]
    quantize = zeta_step != 1.0
    inverse_step = 1.0 / zeta_step  # a power of 2: the same as dividing
    first_use, leave, join = switching[0], switching[1], switching[2]
    always = first_use >= 1.0 and leave <= 0.0
    purposes = streams.N_PURPOSES * replica
    n_blocks = (n + streams.DRAW_BLOCK - 1) // streams.DRAW_BLOCK
    words = np.empty((n_blocks, streams.BUFFER_WORDS), np.uint64)
    normals = np.empty((n_blocks, streams.DRAW_BLOCK))
    signs = np.empty((n_blocks, (n_probes + 15) // 16 * 16), np.uint64)  # whole vectors of Philox blocks
    for block in prange(n_blocks):
        first = block * streams.DRAW_BLOCK
        size = min(streams.DRAW_BLOCK, n - first)
        z = normals[block, :size]
        streams.standard_normals(z, words[block], (key, k, block, purposes + streams.NORMALS))
        if quantize:
            for s in range(size):
                z[s] = min(max(np.rint(z[s] * inverse_step), -ZETA_MAX), ZETA_MAX)
        if n_probes > 0:
            streams.fill_words(signs[block], streams.ZERO, (key, k, block, purposes + streams.PROBE_SIGNS))
        # The block in segments that each lie in one chunk (one segment whenever 64 divides
        # the width), stored through row views by loops that vectorise.
        done = 0
        while done < size:
            chunk, offset = (first + done) // width, (first + done) % width
            length = min(size - done, width - offset)
            zeta_part = zeta[chunk, k, offset:offset + length]
            for s in range(length):
                zeta_part[s] = z[done + s]
            for p in range(n_probes):
                word = signs[block, p] >> np.uint64(done)
                probe_part = probes[chunk, p, k, offset:offset + length]
                for s in range(length):
                    probe_part[s] = 2 * np.int8((word >> np.uint64(s)) & streams.ONE) - 1
            done += length
        if always:
            selection[first : first + size] = 1.0
            continue
        uniforms = words[block, : streams.DRAW_BLOCK // 2]  # two 32-bit uniforms per word
        streams.fill_words(uniforms, streams.ZERO, (key, k, block, purposes + streams.SELECTION))
        for s in range(size):
            u = streams.unit_32(uniforms[s // 2], s % 2)
            if k == 0:
                selection[first + s] = 1.0 if u < first_use else 0.0
            else:  # without branches: s(k-1) is a coin flip to the branch predictor
                stays = selection[first + s]
                selection[first + s] = stays * (u >= leave) + (1.0 - stays) * (u < join)


draw_step_serial = serial(draw_step)
