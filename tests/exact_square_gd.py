"""Exact d -> infinity solution of GD with square loss on random labels (linear dynamics).

The update (docs/theory.md §1, with heavy-ball momentum beta, docs/theory.md §2.8) is

    w_{k+1} = M w_k + dt b + beta (w_k - w_{k-1}) + sqrt(2 T dt) xi_k,    w_{-1} = w_0,

with M = (1 - dt lam) I - dt Delta S, S = Z^T Z / d and b = sqrt(Delta) Z^T y / sqrt(d),
E[b b^T] = Delta S. In the eigenbasis of S every coordinate obeys the same scalar
second-order recursion with a(s) = 1 - dt lam - dt Delta s:

    x_{k+1} = (a + beta) x_k - beta x_{k-1} + (source at update k).

Two solutions of it give everything:

- the impulse response G_l (a unit source at update i moves x_{i+l} by G_l):
  G_0 = 0, G_1 = 1, G_{l+1} = (a + beta) G_l - beta G_{l-1};
- the response to the initial condition (x_0 = x_{-1} = 1, no source):
  A_0 = 1, A_1 = a, A_{k+1} = (a + beta) A_k - beta A_{k-1}, i.e. A_k = G_{k+1} - beta G_k
  (both sides obey the recursion and agree at k = 0, 1).

A constant source from update 0 on gives P_k = sum_{l=1}^{k} G_l. With beta = 0,
G_l = a^{l-1}, A_k = a^k, P_k = sum_{i<k} a^i: the formulas of plain GD. Hence

    C[k,k'] = int dmu_S(s) [ sigma0^2 A_k A_k' + dt^2 Delta s P_k P_k' ]
              + 2 T dt sum_{i < min(k,k')} int dmu_S(s) G_{k-i} G_{k'-i}
    R[k,j]  = int dmu_S(s) G_{k-j}                                       (k > j)

The residual r = sqrt(Delta) Z w / sqrt(d) - y obeys, with G = Z Z^T / d (Z S = G Z,
Z b = sqrt(Delta d) G y), r_{k+1} = (a(g) + beta) r_k - beta r_{k-1} - dt lam y with
r_{-1} = r_0: so r_k = A_k(g) r_0 - dt lam P_k(g) y, and per eigenvalue g of G, with
r_0 = sqrt(Delta) (Z w_0)_g / sqrt(d) - y_g, E[(Z w_0)_g^2] / d = sigma0^2 g, E[y_g^2] = 1,

    E[r_k^2] = A_k^2 (Delta sigma0^2 g + 1) + 2 A_k dt lam P_k + (dt lam P_k)^2,

and the training loss is (1/2) int dmu_G E[r_k^2] (at T = 0).
mu_S is alpha times the Marchenko-Pastur law of ratio 1/alpha; mu_G = mu_S/alpha plus an atom
of mass 1 - 1/alpha at zero (alpha >= 1 here). Integrals by Gauss-Chebyshev quadrature,
exact to round-off for these smooth integrands.
"""

from __future__ import annotations

import numpy as np


def marchenko_pastur_nodes(alpha: float, n_nodes: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the spectral law of S = Z^T Z / d, Z of shape (alpha d, d), alpha >= 1."""
    if alpha < 1:
        raise ValueError("this helper covers alpha >= 1 (no atom in mu_S)")
    ratio = 1.0 / alpha
    lower, upper = (1 - np.sqrt(ratio)) ** 2, (1 + np.sqrt(ratio)) ** 2
    centre, radius = (upper + lower) / 2, (upper - lower) / 2
    theta = (np.arange(n_nodes) + 0.5) * np.pi / n_nodes  # midpoint rule in theta: spectral accuracy
    x = centre + radius * np.cos(theta)
    # density sqrt((b-x)(x-a)) / (2 pi ratio x), dx = radius sin(theta) dtheta
    weights = (radius * np.sin(theta)) ** 2 / (2 * np.pi * ratio * x) * (np.pi / n_nodes)
    return alpha * x, weights / weights.sum()


def impulse_responses(a: np.ndarray, momentum: float, lags: int) -> np.ndarray:
    """G_l(a) for l = 0..lags, shape (lags + 1, len(a)): G_0 = 0, G_1 = 1,
    G_{l+1} = (a + beta) G_l - beta G_{l-1}."""
    G = np.zeros((lags + 1, a.size))
    if lags >= 1:
        G[1] = 1.0
    for lag in range(1, lags):
        G[lag + 1] = (a + momentum) * G[lag] - momentum * G[lag - 1]
    return G


def _responses(a: np.ndarray, momentum: float, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(G, A, P) on k = 0..steps: impulse response, initial-condition response, constant-source response."""
    G = impulse_responses(a, momentum, steps + 1)
    A = G[1:] - momentum * G[:-1]  # A_k = G_{k+1} - beta G_k
    P = np.cumsum(G[:-1], axis=0)  # P_k = sum_{l=1}^{k} G_l (G_0 = 0)
    return G[:-1], A, P


def exact_square_gd(alpha, delta, ridge, dt, steps, init_variance, temperature=0.0, momentum=0.0):
    """Return (C, R, train_loss, distance) on k = 0..steps.

    Langevin noise adds 2 T dt sum_{i < min(k,k')} int G_{k-i} G_{k'-i} dmu_S to C. Two
    replicas from the same w_0 with independent noise differ only by it: w^a - w^b obeys
    the same linear map with source sqrt(2 T dt) (xi^a - xi^b) and starts at zero, so
    D_k = 4 T dt sum_{i<k} int G_{k-i}^2 dmu_S (the training loss is given for T = 0 only).
    ``momentum`` is the heavy-ball beta (0 <= beta < 1); with beta = 0 the G_l are powers.
    """
    s, weight = marchenko_pastur_nodes(alpha)
    a = 1 - dt * ridge - dt * delta * s
    G, A, P = _responses(a, momentum, steps)  # each (k, node)
    C = (init_variance * (A * weight) @ A.T
         + dt**2 * delta * (P * weight * s) @ P.T)
    # Langevin part N[k, k'] = sum_{i<k'} int G_{k-i} G_{k'-i} for k >= k'; with l = k' - i it is
    # sum_{l=1}^{k'} Q[k-k'+l, l], Q = int G G^T: cumulative sums along the diagonals of Q.
    Q = (G * weight) @ G.T
    langevin = np.zeros((steps + 1, steps + 1))
    for lag in range(steps + 1):
        partial = np.cumsum(np.diagonal(Q, offset=-lag)[1:])  # l = 1..steps-lag
        later = np.arange(1, steps + 1 - lag)  # k' = 1..steps-lag
        langevin[later + lag, later] = partial
        langevin[later, later + lag] = partial
    C = C + 2 * temperature * dt * langevin
    distance = 4 * temperature * dt * np.diagonal(langevin).copy()
    R = np.zeros((steps + 1, steps + 1))
    response = G @ weight  # int G_l dmu_S, l = 0..steps
    for lag in range(1, steps + 1):
        R[np.arange(lag, steps + 1), np.arange(0, steps + 1 - lag)] = response[lag]
    # Training loss: spectrum of G = mu_S / alpha + (1 - 1/alpha) delta_0.
    g = np.append(s, 0.0)
    g_weight = np.append(weight / alpha, 1 - 1 / alpha)
    a_g = 1 - dt * ridge - dt * delta * g
    _, A_g, P_g = _responses(a_g, momentum, steps)
    residual = (A_g**2 * (delta * init_variance * g + 1) + (dt * ridge * P_g) ** 2
                + 2 * A_g * dt * ridge * P_g)
    return C, R, 0.5 * residual @ g_weight, distance
