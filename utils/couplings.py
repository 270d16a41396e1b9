"""Couplings of noise and data for conditional flow matching (taught in notebook 06).

Conditional flow matching can condition on a *pair* (x0, x1) drawn from any
coupling of the source and the data. With the straight interpolant
xt = (1 - t) x0 + t x1 (+ sigma noise) the conditional field is x1 - x0.

    x0, x1 = ot_couple(x0, x1)       # minibatch OT: x0 reordered, exact optimal pairing
    xt, ut = straight_pair(x0, x1, t, sigma=0.1, generator=g)

- independent pairs (x0 and x1 drawn separately): I-CFM, the first rectified flow
  (Liu et al. 2023, Albergo and Vanden-Eijnden 2023);
- ``ot_couple`` on each minibatch: OT-CFM (Tong et al. 2024; Pooladian et al. 2023,
  "Multisample flow matching"), whose learned paths are straighter.

For the squared cost, the interpolants of two distinct optimal pairs (a, b) and (c, d)
are never at the same point at the same time: (1 - t) a + t b = (1 - t) c + t d with
0 < t < 1 gives <a - c, b - d> = -t / (1 - t) |b - d|^2 < 0, against the cyclical
monotonicity <a - c, b - d> >= 0 of an optimal plan. Their *segments* can still cross,
at different times. That is what the ODE needs: one velocity at each (x, t).

    segment_crossings(x0, x1)        # how many pairs of segments (x0_i, x1_i) cross in the plane
    crossing_time_gaps(x0, x1)       # at each crossing, how far apart in time the two pass it
    non_monotone_pairs(x0, x1)       # pairs that a swap of ends would shorten (0 when optimal)
"""
from __future__ import annotations

import numpy as np
import torch
from .errors import InputError, check_points, check_times
from .metrics import optimal_assignment

__all__ = ["ot_couple", "ot_permutation", "straight_pair", "pairing_cost", "segment_crossings",
           "crossing_time_gaps", "non_monotone_pairs"]


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


def _upper_pairs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.triu_indices(n, n, offset=1).unbind(0)


def _crossing_params(x0: torch.Tensor, x1: torch.Tensor):
    """For every two pairs i < j: (s, r, crossing) with x0_i + s (x1_i - x0_i) = x0_j + r (x1_j - x0_j)."""
    _check_pair(x0, x1)
    if x0.shape[1] != 2:
        raise InputError(f"segment crossings are counted in the plane: points of shape (n, 2), got {tuple(x0.shape)}.")
    a, b = x0.detach().double().cpu(), x1.detach().double().cpu()
    i, j = _upper_pairs(len(a))
    e, f, g = b[i] - a[i], b[j] - a[j], a[j] - a[i]

    def cross(u, v):
        return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]

    den = cross(e, f)
    ok = den.abs() > 1e-12  # parallel segments do not cross properly
    den = torch.where(ok, den, torch.ones_like(den))
    s, r = cross(g, f) / den, cross(g, e) / den
    crossing = ok & (s > 0) & (s < 1) & (r > 0) & (r < 1)
    return s, r, crossing


def segment_crossings(x0: torch.Tensor, x1: torch.Tensor) -> int:
    """The number of pairs i < j whose segments [x0_i, x1_i] and [x0_j, x1_j] cross (in 2D)."""
    return int(_crossing_params(x0, x1)[2].sum())


def crossing_time_gaps(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """At each crossing of two segments: |s - r|, the gap between the times at which the two interpolants
    x_t = (1 - t) x0 + t x1 pass the crossing point. 0 would be a meeting: same point, same time.
    Returns a float64 tensor with one entry per crossing (see ``segment_crossings``).
    """
    s, r, crossing = _crossing_params(x0, x1)
    return (s - r).abs()[crossing]


def non_monotone_pairs(x0: torch.Tensor, x1: torch.Tensor) -> int:
    """The number of pairs i < j with <x0_i - x0_j, x1_i - x1_j> < 0: swapping their ends would lower
    the total squared distance. 0 for an optimal pairing (cyclical monotonicity); only such pairs can
    meet at the same point at the same time.
    """
    _check_pair(x0, x1)
    a, b = x0.detach().double().cpu(), x1.detach().double().cpu()
    i, j = _upper_pairs(len(a))
    return int((((a[i] - a[j]) * (b[i] - b[j])).sum(1) < -1e-12).sum())
