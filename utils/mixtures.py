"""Gaussian mixtures and their exact scores under the diffusion kernels (taught in notebook 04, reused in 05-07).

A :class:`GaussianMixture` target stays a Gaussian mixture under the kernels of ``utils.sde``,
so its marginal density and its score are exact at every diffusion time s
(:meth:`GaussianMixture.marginal_log_prob`, :meth:`GaussianMixture.marginal_score`):

    target = eight_gaussians_mixture()
    score = target.score_fn(sde)          # exact score(x, s), for the samplers of utils.samplers
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .errors import InputError, check_points
from .sde import Score, _SDE, _as_times

__all__ = ["GaussianMixture", "eight_gaussians_mixture", "mixture_log_prob", "mixture_score"]


def _component_terms(x, means, stds, weights, mean_scale, noise_std):
    """log(w_k N(x; a m_k, v_k I)) for every point and component, and the means and variances."""
    a = torch.as_tensor(mean_scale, dtype=x.dtype, device=x.device)
    b = torch.as_tensor(noise_std, dtype=x.dtype, device=x.device)
    a = a.reshape(-1, 1) if a.ndim else a.reshape(1, 1)  # (n or 1, 1)
    b = b.reshape(-1, 1) if b.ndim else b.reshape(1, 1)
    means, stds, weights = (v.to(dtype=x.dtype, device=x.device) for v in (means, stds, weights))
    var = a**2 * stds[None, :] ** 2 + b**2  # (n or 1, K)
    centres = a[:, :, None] * means.T[None]  # (n or 1, d, K)
    diff = x[:, :, None] - centres  # (n, d, K)
    d = x.shape[1]
    log_comp = (-0.5 * (diff**2).sum(1) / var - 0.5 * d * torch.log(2 * math.pi * var)
                + torch.log(weights / weights.sum())[None])
    return log_comp, diff, var


def mixture_log_prob(x, means, stds, weights, mean_scale=1.0, noise_std=0.0) -> torch.Tensor:
    """log p(x) for p = sum_k w_k N(a m_k, (a^2 std_k^2 + b^2) I): a mixture seen through the kernel (a, b).

    x (n, d); means (K, d); stds, weights (K,); a = mean_scale and b = noise_std floats or (n,).
    """
    log_comp, _, _ = _component_terms(x, means, stds, weights, mean_scale, noise_std)
    return torch.logsumexp(log_comp, dim=1)


def mixture_score(x, means, stds, weights, mean_scale=1.0, noise_std=0.0) -> torch.Tensor:
    """grad_x log p(x) of the same mixture: sum_k r_k(x) (a m_k - x) / v_k, r = responsibilities."""
    log_comp, diff, var = _component_terms(x, means, stds, weights, mean_scale, noise_std)
    resp = torch.softmax(log_comp, dim=1)  # (n, K)
    return -(resp[:, None, :] * diff / var[:, None, :]).sum(-1)


@dataclass
class GaussianMixture:
    """sum_k w_k N(m_k, std_k^2 I) in 2D: a target whose noised marginals are known exactly."""

    means: torch.Tensor  # (K, 2)
    stds: torch.Tensor  # (K,)
    weights: torch.Tensor  # (K,), normalised on use

    def __post_init__(self):
        self.means = torch.as_tensor(self.means, dtype=torch.float64)
        self.stds = torch.as_tensor(self.stds, dtype=torch.float64).reshape(-1)
        self.weights = torch.as_tensor(self.weights, dtype=torch.float64).reshape(-1)
        K = self.means.shape[0]
        if self.means.ndim != 2 or self.stds.shape != (K,) or self.weights.shape != (K,):
            raise InputError(f"means (K, d), stds (K,), weights (K,) expected; got {tuple(self.means.shape)}, "
                             f"{tuple(self.stds.shape)}, {tuple(self.weights.shape)}.")
        if (self.stds <= 0).any() or (self.weights < 0).any() or self.weights.sum() <= 0:
            raise InputError("stds must be positive and weights non-negative with a positive sum.")

    def sample(self, n: int, generator: torch.Generator | int | None = None, s=0.0, sde: _SDE | None = None,
               dtype: torch.dtype | None = None, stratified: bool = False) -> torch.Tensor:
        """n samples of the target (s = 0) or of its exact marginal at diffusion time s under ``sde``.

        ``stratified``: each component gets exactly its share n w_k of the points (largest remainders),
        instead of a multinomial count. A stratified *reference* halves the sampling noise of W2 on
        multimodal targets, since only the sample being judged then has random mode counts.
        """
        dtype = dtype or torch.get_default_dtype()
        if isinstance(generator, int) or generator is None:
            generator = torch.Generator().manual_seed(0 if generator is None else generator)
        w = self.weights / self.weights.sum()
        if stratified:
            share = n * w
            counts = share.floor().long()
            extra = torch.argsort(share - counts, descending=True)[: n - int(counts.sum())]
            counts[extra] += 1
            k = torch.repeat_interleave(torch.arange(len(w)), counts)
        else:
            k = torch.multinomial(w, n, replacement=True, generator=generator)
        x = self.means[k] + self.stds[k, None] * torch.randn(n, self.means.shape[1], generator=generator,
                                                             dtype=torch.float64)
        if sde is not None and float(s) > 0:
            a, b = sde.kernel(torch.tensor(float(s), dtype=torch.float64))
            x = a * x + b * torch.randn(x.shape, generator=generator, dtype=torch.float64)
        return x.to(dtype)

    def _kernel(self, x, s, sde):
        if sde is None:
            return 1.0, 0.0
        s = _as_times(s, x)
        return sde.kernel(s)

    def marginal_log_prob(self, x: torch.Tensor, s=0.0, sde: _SDE | None = None) -> torch.Tensor:
        """Exact log p_s(x) of the noised target at diffusion time s (float or (n,))."""
        check_points(x, "x", dim=self.means.shape[1])
        a, b = self._kernel(x, s, sde)
        return mixture_log_prob(x, self.means, self.stds, self.weights, a, b)

    def marginal_score(self, x: torch.Tensor, s=0.0, sde: _SDE | None = None) -> torch.Tensor:
        """Exact score grad_x log p_s(x) at diffusion time s (float or (n,))."""
        check_points(x, "x", dim=self.means.shape[1])
        a, b = self._kernel(x, s, sde)
        return mixture_score(x, self.means, self.stds, self.weights, a, b)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.marginal_log_prob(x)

    def score_fn(self, sde: _SDE) -> Score:
        """The exact score as a function score(x, s) of diffusion time s, for the samplers."""
        return lambda x, s: self.marginal_score(x, s, sde)

    def log_prob_fn(self, sde: _SDE) -> Callable:
        """log p_s(x) as a function of (x, s)."""
        return lambda x, s: self.marginal_log_prob(x, s, sde)


def eight_gaussians_mixture(radius: float = 2.0, std: float = 0.2) -> GaussianMixture:
    """The exact mixture behind ``utils.datasets.eight_gaussians``: 8 equal modes on a circle."""
    angle = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
    means = radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    return GaussianMixture(means, torch.full((8,), float(std)), torch.ones(8))
