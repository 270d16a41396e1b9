"""Change of variables: densities of push-forwards and log-determinants (taught in notebook 01).

For an invertible map x = f(z) with z ~ p_Z,

    log p_X(x) = log p_Z(f^{-1}(x)) + log |det J_{f^{-1}}(x)|.

These are the reference answers of notebook 01's exercises and the tools
later notebooks reuse (Jacobians by autograd, integrating a density on a grid).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .errors import InputError, check_points, check_tensor

__all__ = ["standard_normal_log_prob", "pushforward_log_prob", "jacobian",
           "log_abs_det_jacobian", "affine_log_prob", "grid", "grid_integral"]

LOG_2PI = math.log(2 * math.pi)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) for z of shape (n, d); returns shape (n,)."""
    check_points(z, "z")
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * LOG_2PI


def pushforward_log_prob(x: torch.Tensor, base_log_prob: Callable, f_inv: Callable,
                         f_inv_deriv: Callable) -> torch.Tensor:
    """log p_X(x) for x = f(z) with f acting elementwise (exercise 1.1's reference).

    ``f_inv`` is the inverse applied elementwise and ``f_inv_deriv`` its
    derivative, elementwise; the Jacobian of f^{-1} is diagonal, so its
    log|det| is the sum of log|(f^{-1})'(x_i)| over coordinates. x: (n, d) -> (n,).
    """
    check_points(x, "x")
    return base_log_prob(f_inv(x)) + torch.log(torch.abs(f_inv_deriv(x))).sum(-1)


def jacobian(f: Callable, x: torch.Tensor) -> torch.Tensor:
    """Jacobians of a batched map f: (n, d) -> (n, d), one row of each per backward pass: (n, d, d).

    Assumes f treats the rows of x independently (true of every flow here).
    """
    check_points(x, "x")
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = f(x)
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            raise InputError(f"f must map shape {tuple(x.shape)} to the same shape, got "
                             f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}.")
        rows = [torch.autograd.grad(y[:, i].sum(), x, retain_graph=True)[0] for i in range(x.shape[1])]
    return torch.stack(rows, dim=1)


def log_abs_det_jacobian(f: Callable, x: torch.Tensor) -> torch.Tensor:
    """log |det J_f(x)| for every row of x, by autograd (exercise 1.2's reference). (n, d) -> (n,)."""
    return torch.linalg.slogdet(jacobian(f, x)).logabsdet


def affine_log_prob(x: torch.Tensor, A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Density of x = A z + b, z ~ N(0, I), by change of variables (exercise 1.3's reference).

    z = A^{-1}(x - b) and log|det J_{f^{-1}}| = -log|det A|. Equals N(b, A A^T).
    """
    check_points(x, "x")
    check_tensor(A, "A", ndim=2)
    if A.shape != (x.shape[1], x.shape[1]):
        raise InputError(f"`A` must be a ({x.shape[1]}, {x.shape[1]}) matrix for points of dimension "
                         f"{x.shape[1]}, got shape {tuple(A.shape)}.")
    z = torch.linalg.solve(A, (x - b).T).T
    return standard_normal_log_prob(z) - torch.linalg.slogdet(A).logabsdet


def grid(lim: float = 4.0, n: int = 200) -> tuple[torch.Tensor, float]:
    """Centres of an n x n grid of cells covering [-lim, lim]^2, shape (n*n, 2), and a cell's area."""
    h = 2 * lim / n
    c = torch.linspace(-lim + h / 2, lim - h / 2, n, dtype=torch.float64)
    gx, gy = torch.meshgrid(c, c, indexing="xy")
    return torch.stack([gx.flatten(), gy.flatten()], dim=1), h * h


def grid_integral(log_prob: Callable, lim: float = 4.0, n: int = 200) -> float:
    """The midpoint-rule integral of exp(log_prob) over [-lim, lim]^2: about 1 for a density."""
    pts, area = grid(lim, n)
    with torch.no_grad():
        lp = log_prob(pts)
    return float(torch.exp(lp).sum() * area)
