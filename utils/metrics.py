"""Distances between point clouds for measuring sample quality (notebooks 04 to 07).

``w2(x, y)`` is the exact 2-Wasserstein distance between two equally
weighted clouds of the same size: the optimal transport plan between
uniform discrete measures of equal size is a permutation (Birkhoff), so it is
an assignment problem, solved exactly by scipy's Hungarian-type solver.
Always report it beside a finite-sample *floor*: the W2 between two samples
of the target itself.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .errors import InputError, check_points

__all__ = ["optimal_assignment", "w2", "w2_floor"]


def _sq_dists(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    x, y = x.detach().double().cpu(), y.detach().double().cpu()
    return torch.cdist(x, y).pow(2).numpy()


def optimal_assignment(x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, cost): x[rows[k]] goes to y[cols[k]] in the pairing of least total squared distance."""
    cost = _sq_dists(x, y)
    rows, cols = linear_sum_assignment(cost)
    return rows, cols, cost


def w2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Exact W2 between the empirical measures of x and y, each of shape (n, d)."""
    check_points(x, "x")
    check_points(y, "y")
    if x.shape != y.shape:
        raise InputError(f"w2 needs two clouds of the same shape (n, d); got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}. Subsample the larger one.")
    rows, cols, cost = optimal_assignment(x, y)
    return float(np.sqrt(cost[rows, cols].mean()))


def w2_floor(sampler, n: int = 1000, seeds: tuple[int, int] = (1001, 1002)) -> float:
    """W2 between two independent samples of size n from ``sampler(n, seed)``: the best a model can score."""
    return w2(sampler(n, seeds[0]), sampler(n, seeds[1]))
