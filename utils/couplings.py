"""Couplings of noise and data for conditional flow matching (taught in notebook 06).

Conditional flow matching can condition on a *pair* (x0, x1) drawn from any
coupling of the source and the data. With the straight interpolant
xt = (1 - t) x0 + t x1 (+ sigma noise) the conditional field is x1 - x0.

    x0, x1 = ot_couple(x0, x1)       # minibatch OT: x0 reordered, exact optimal pairing
    xt, ut = straight_pair(x0, x1, t, sigma=0.1, generator=g)

- independent pairs (x0 and x1 drawn separately): I-CFM, the first rectified flow
  (Liu et al. 2023, Albergo and Vanden-Eijnden 2023);
- ``ot_couple`` on each minibatch: OT-CFM (Tong et al. 2024). Pairs that minimise
  the total squared distance never cross, so the learned paths are straighter.
"""
from __future__ import annotations

import numpy as np
import torch
from .errors import InputError, check_points, check_times
from .metrics import optimal_assignment

__all__ = ["ot_couple", "ot_permutation", "straight_pair", "pairing_cost"]


def _check_pair(x0: torch.Tensor, x1: torch.Tensor) -> None:
    check_points(x0, "x0")
    check_points(x1, "x1")
    if x0.shape != x1.shape:
        raise InputError(f"`x0` and `x1` must have the same shape (n, d) to be paired one to one; got "
                         f"{tuple(x0.shape)} and {tuple(x1.shape)}.")


def ot_permutation(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """The permutation p minimising sum_i |x0[p[i]] - x1[i]|^2 (exact, by linear assignment)."""
    _check_pair(x0, x1)
    rows, cols, _ = optimal_assignment(x0, x1)  # x0[rows[k]] goes to x1[cols[k]]
    perm = np.empty_like(rows)
    perm[cols] = rows
    return torch.as_tensor(perm, dtype=torch.long, device=x0.device)


def ot_couple(x0: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reorder x0 so that (x0[i], x1[i]) is the optimal pairing under squared Euclidean cost.

    Returns (x0 reordered, x1). Among all n! pairings this one has the least total
    squared distance: the exact optimal transport plan between the two equally
    weighted point clouds (what ``utils.metrics.w2`` measures).
    """
    return x0[ot_permutation(x0, x1)], x1


def pairing_cost(x0: torch.Tensor, x1: torch.Tensor) -> float:
    """Mean squared distance of the pairs (x0[i], x1[i])."""
    _check_pair(x0, x1)
    return float(((x0 - x1) ** 2).sum(1).mean())


def straight_pair(x0: torch.Tensor, x1: torch.Tensor, t, sigma: float = 0.0,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """xt = (1 - t) x0 + t x1 + sigma eps and the conditional field ut = x1 - x0 of the pair."""
    _check_pair(x0, x1)
    t = check_times(t, x0.shape[0]).to(dtype=x0.dtype, device=x0.device)[:, None]
    if not isinstance(sigma, (int, float)) or sigma < 0:
        raise InputError(f"`sigma` must be a number >= 0, got {sigma!r}.")
    xt = (1 - t) * x0 + t * x1
    if sigma > 0:
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        xt = xt + sigma * eps
    return xt, x1 - x0
