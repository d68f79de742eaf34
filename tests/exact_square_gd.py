"""Exact d -> infinity solution of GD with square loss on random labels (linear dynamics).

w_{k+1} = M w_k + dt b with M = (1 - dt lam) I - dt Delta S, S = Z^T Z / d and
b = sqrt(Delta) Z^T y / sqrt(d), E[b b^T] = Delta S. In the eigenbasis of S (eigenvalue s,
a(s) = 1 - dt lam - dt Delta s, P_k(s) = sum_{i<k} a^i):

    C[k,k'] = int dmu_S(s) [ sigma0^2 a^{k+k'} + dt^2 Delta s P_k P_k' ]
    R[k,j]  = int dmu_S(s) a^{k-j-1}                                    (k > j)

and the residual r = sqrt(Delta) Z w / sqrt(d) - y evolves with G = Z Z^T / d:
r_{k+1} = a(g) r_k - dt lam y, giving the training loss (1/2) E|r_k|^2 / n.
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


def exact_square_gd(alpha, delta, ridge, dt, steps, init_variance, temperature=0.0):
    """Return (C, R, train_loss, distance) on k = 0..steps.

    Langevin noise adds 2 T dt sum_{i < min(k,k')} int a^{k-1-i} a^{k'-1-i} to C. Two replicas
    from the same w_0 with independent noise differ only by it: w^a - w^b obeys the same
    linear map, so D_k = 4 T dt sum_{i<k} int a^{2(k-1-i)} dmu_S (the training loss is
    given for T = 0 only).
    """
    s, weight = marchenko_pastur_nodes(alpha)
    a = 1 - dt * ridge - dt * delta * s
    k = np.arange(steps + 1)
    powers = a[None, :] ** k[:, None]  # (k, node)
    partial = np.cumsum(np.vstack([np.zeros_like(a), powers[:-1]]), axis=0)  # P_k = sum_{i<k} a^i
    C = (init_variance * (powers * weight) @ powers.T
         + dt**2 * delta * (partial * weight * s) @ partial.T)
    # Langevin part: sum_{i<min(k,k')} a^{k-1-i} a^{k'-1-i}, by the recursion N[k+1,k'+1] = a^2-weighted.
    langevin = np.zeros((steps + 1, steps + 1))
    for kk in range(1, steps + 1):
        for jj in range(1, kk + 1):
            lags = np.arange(jj)  # i = 0..jj-1, exponents kk-1-i and jj-1-i
            langevin[kk, jj] = langevin[jj, kk] = np.sum(
                (a[None, :] ** (kk - 1 - lags)[:, None] * a[None, :] ** (jj - 1 - lags)[:, None]) @ weight)
    C = C + 2 * temperature * dt * langevin
    distance = 4 * temperature * dt * np.diagonal(langevin).copy()
    R = np.zeros((steps + 1, steps + 1))
    for lag in range(1, steps + 1):
        value = weight @ a ** (lag - 1)
        R[np.arange(lag, steps + 1), np.arange(0, steps + 1 - lag)] = value
    # Training loss: spectrum of G = mu_S / alpha + (1 - 1/alpha) delta_0.
    g = np.append(s, 0.0)
    g_weight = np.append(weight / alpha, 1 - 1 / alpha)
    a_g = 1 - dt * ridge - dt * delta * g
    powers_g = a_g[None, :] ** k[:, None]
    partial_g = np.cumsum(np.vstack([np.zeros_like(a_g), powers_g[:-1]]), axis=0)
    residual = (powers_g**2 * (delta * init_variance * g + 1) + (dt * ridge * partial_g) ** 2
                + 2 * powers_g * dt * ridge * partial_g)
    return C, R, 0.5 * residual @ g_weight, distance
