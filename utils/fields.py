"""One path, many fields; one field, two names (taught in notebook 05).

**Score to velocity.** For a Gaussian path with mu_t(x1) = a_t x1 and std sigma_t
(x_t = a_t x1 + sigma_t x0), Tweedie's formula a_t E[x1 | x_t = x] = x + sigma_t^2 grad log p_t(x)
turns the marginal field u_t(x) = E[u_t(x | x1) | x_t = x] into

    u_t(x) = a_t'/a_t x + (sigma_t^2 a_t'/a_t - sigma_t' sigma_t) grad log p_t(x)

(Lipman et al. 2024, Flow Matching Guide and Code, section 4.8; Holderrieth & Erives 2025, MIT 6.S184).
For the VP path both coefficients equal beta(1 - t)/2, which is notebook 04's probability
flow ODE in flow time: flow matching with the VP path regresses the same field
(Lipman et al. 2023, section 4.1).

    u = velocity_from_score(x, score, t, path)         # exercise 5.4
    u = mixture_marginal_velocity(x, target, t, path)  # the same field, without any score

**Many fields, one path.** Only div(p_t u_t) enters the continuity equation, so any w_t with
div(p_t w_t) = 0 can be added to u_t without changing the path. For a radially symmetric p_t a
rotation w(x) = omega R x is such a field. Data uniform on a circle keeps every p_t radially
symmetric, and its marginal field is exact (Bessel functions):

    x1 = ring_sample(n, radius, generator)
    logp = ring_log_prob(x, t, path, radius)
    u = ring_marginal_velocity(x, t, path, radius)
    w = rotation(x, omega, width)                     # a rigid rotation, or a vortex

Shapes: x (n, 2); t a float in [0, 1] or a tensor (n,); ``path`` a :class:`~utils.paths.GaussianPath`.
"""
from __future__ import annotations

import math

import torch

from .errors import InputError, check_points
from .paths import GaussianPath

__all__ = ["velocity_from_score", "mixture_marginal_velocity", "ring_sample", "ring_log_prob",
           "ring_marginal_velocity", "rotation"]


def _path(path) -> GaussianPath:
    if not isinstance(path, GaussianPath):
        raise InputError(f"`path` must be a GaussianPath (OTPath, VPPath, SchedulePath), got {type(path).__name__}.")
    return path


def _coefficients(path, t, x):
    """a, sigma, a', sigma' at time t, shaped to broadcast against x (n, d), in x's dtype."""
    cols = _path(path).schedule(t if not isinstance(t, torch.Tensor) or t.ndim == 0 else t.to(x.dtype))
    return tuple(c.to(dtype=x.dtype, device=x.device) for c in cols)


def velocity_from_score(x: torch.Tensor, score: torch.Tensor, t, path: GaussianPath) -> torch.Tensor:
    """u_t(x) = a'/a x + (sigma^2 a'/a - sigma' sigma) score, for mu_t = a_t x1 (exercise 5.4).

    ``score`` is grad_x log p_t at x, shape (n, d). Needs a_t != 0 (t > 0 on the OT path).
    """
    check_points(x, "x")
    check_points(score, "score", dim=x.shape[1])
    a, s, da, ds = _coefficients(path, t, x)
    if (a == 0).any():
        raise InputError("a_t = 0 at this time (t = 0 on the OT path): the data term is gone and the score "
                         "no longer determines the field. Use t > 0.")
    return da / a * x + (s**2 * da / a - ds * s) * score


def mixture_marginal_velocity(x: torch.Tensor, target, t, path: GaussianPath) -> torch.Tensor:
    """The flow matching marginal field E[u_t(x | x1) | x_t = x] for a Gaussian-mixture target.

    ``target`` has ``means`` (K, d), ``stds`` (K,) and ``weights`` (K,) (``utils.sde.GaussianMixture``).
    Given component k, x1 ~ N(m_k, c_k^2 I) and x_t | x1 ~ N(a x1, sigma^2 I), so x_t ~ N(a m_k, v_k I) with
    v_k = a^2 c_k^2 + sigma^2 and E[x1 | x, k] = m_k + a c_k^2 / v_k (x - a m_k). The conditional field is
    affine in x1, so u = sigma'/sigma x + (a' - sigma' a / sigma) E[x1 | x]. No score is used.
    """
    check_points(x, "x")
    a, s, da, ds = _coefficients(path, t, x)
    if (s <= 0).any():
        raise InputError("sigma_t = 0 at this time (t = 1 on the VP path): the field is undefined there.")
    a, s, da, ds = (v.reshape(-1, 1) if v.ndim else v.reshape(1, 1) for v in (a, s, da, ds))  # (n or 1, 1)
    means = target.means.to(dtype=x.dtype, device=x.device)  # (K, d)
    c2 = target.stds.to(dtype=x.dtype, device=x.device) ** 2  # (K,)
    logw = torch.log(target.weights.to(dtype=x.dtype, device=x.device) / target.weights.sum())
    v = a**2 * c2[None] + s**2  # (n or 1, K)
    diff = x[:, :, None] - a[:, :, None] * means.T[None]  # (n, d, K)
    d = x.shape[1]
    log_comp = logw[None] - 0.5 * (diff**2).sum(1) / v - 0.5 * d * torch.log(v)
    r = torch.softmax(log_comp, dim=1)  # (n, K) responsibilities
    post_mean = means.T[None] + (a * c2[None] / v)[:, None, :] * diff  # (n, d, K): E[x1 | x, k]
    mean_x1 = (r[:, None, :] * post_mean).sum(-1)  # (n, d)
    return ds / s * x + (da - ds * a / s) * mean_x1


# ---------------------------------------------------------------- data on a circle, exactly

def ring_sample(n: int, radius: float = 1.5, generator: torch.Generator | None = None,
                dtype: torch.dtype | None = None) -> torch.Tensor:
    """n points uniform on the circle of the given radius (n, 2)."""
    theta = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    return (radius * torch.stack([theta.cos(), theta.sin()], 1)).to(dtype or torch.get_default_dtype())


def _ring_terms(x, t, path, radius):
    check_points(x, "x", dim=2)
    a, s, da, ds = _coefficients(path, t, x)
    if (s <= 0).any():
        raise InputError("sigma_t = 0 at this time: the ring's marginal is not a density there. Use sigma_min > 0.")
    a, s, da, ds = (v.reshape(-1) if v.ndim else v for v in (a, s, da, ds))
    norm = x.norm(dim=1).clamp_min(1e-12)
    z = a * radius * norm / s**2
    return a, s, da, ds, norm, z


def ring_log_prob(x: torch.Tensor, t, path: GaussianPath, radius: float = 1.5) -> torch.Tensor:
    """log p_t(x) for data uniform on a circle: (2 pi s^2)^-1 exp(-(|x|^2 + a^2 r^2) / 2s^2) I0(a r |x| / s^2)."""
    a, s, _, _, norm, z = _ring_terms(x, t, path, radius)
    return (-torch.log(2 * math.pi * s**2) - (norm**2 + (a * radius) ** 2) / (2 * s**2)
            + torch.log(torch.special.i0e(z)) + z)


def ring_marginal_velocity(x: torch.Tensor, t, path: GaussianPath, radius: float = 1.5) -> torch.Tensor:
    """The exact marginal field for data uniform on a circle: E[x1 | x] = r I1(z)/I0(z) x/|x|, z = a r |x| / s^2."""
    a, s, da, ds, norm, z = _ring_terms(x, t, path, radius)
    mean_x1 = (radius * torch.special.i1e(z) / torch.special.i0e(z) / norm)[:, None] * x
    col = lambda v: v[:, None] if v.ndim else v  # noqa: E731
    return col(ds / s) * x + col(da - ds * a / s) * mean_x1


def rotation(x: torch.Tensor, omega: float = 1.0, width: float | None = None) -> torch.Tensor:
    """w(x) = omega g(|x|) R x, R the rotation by +90 degrees; g = 1, or exp(-|x|^2 / (2 width^2)) (a vortex).

    x . w = 0 and div w = g'(|x|) x/|x| . R x + g div(R x) = 0, so div(p w) = grad p . w + p div w = 0 for any
    radially symmetric density p: adding w to a field changes its trajectories, not its path.
    """
    check_points(x, "x", dim=2)
    w = omega * torch.stack([-x[:, 1], x[:, 0]], 1)
    if width is not None:
        w = w * torch.exp(-(x**2).sum(1, keepdim=True) / (2 * width**2))
    return w
