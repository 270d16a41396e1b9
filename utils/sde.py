"""Diffusion SDEs and their Gaussian transition kernels (taught in notebook 04, reused in 05 and 06).

**Time convention, once for the whole course.** Diffusion models run their
time ``s`` from data to noise: ``s = 0`` is data, ``s = 1`` is (almost) pure
noise. Flows and flow matching, everywhere else in the course, run their time
``t`` from noise to data: ``t = 0`` is noise, ``t = 1`` is data. The two are
tied by

    t = 1 - s        (flow_time(s))        and        s = 1 - t   (diffusion_time(t)).

In the diffusion modules (this one, ``utils.mixtures``, ``utils.samplers``,
``utils.score_matching``) every argument named ``s`` is diffusion time (the SDE's own
quantities: drift f(x, s), diffusion g(s), transition kernels, marginals,
scores), and every argument named ``t`` is flow time (what the samplers and
``utils.solvers`` see). Since dt = -ds, a drift in diffusion time becomes
its negative in flow time.

Forward SDEs dx = f(x, s) ds + g(s) dW, with Gaussian transition kernels
x_s | x_data ~ N(alpha_s x_data, sigma_s^2 I) (``kernel(s)`` returns (alpha_s, sigma_s)):

- :class:`VPSDE` (variance preserving, linear beta schedule):
  f = -beta(s) x / 2, g = sqrt(beta(s)), alpha_s = exp(-B(s)/2), sigma_s^2 = 1 - alpha_s^2,
  with B(s) = int_0^s beta.
- :class:`VESDE` (variance exploding): f = 0, g = sigma(s) sqrt(2 log(sigma_max/sigma_min)),
  sigma(s) = sigma_min (sigma_max/sigma_min)^s, alpha_s = 1, sigma_s^2 = sigma(s)^2 - sigma_min^2.

Where the rest lives: exact scores of Gaussian mixtures in ``utils.mixtures``, the reverse SDE,
the probability flow and the other samplers in ``utils.samplers``, denoising score matching in
``utils.score_matching``, W2 against NFE with its floor and baseline in ``utils.sampler_quality``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .errors import InputError, batch_times

__all__ = ["flow_time", "diffusion_time", "VPSDE", "VESDE", "Score"]

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------- the time convention

def flow_time(s):
    """Flow time t (0 noise, 1 data) of diffusion time s (0 data, 1 noise): t = 1 - s."""
    return 1 - s


def diffusion_time(t):
    """Diffusion time s (0 data, 1 noise) of flow time t (0 noise, 1 data): s = 1 - t."""
    return 1 - t


def _as_times(s, x: torch.Tensor) -> torch.Tensor:
    """s as a tensor of shape (n,) matching the batch x (n, d)."""
    return batch_times(s, x, "times")


def _tensor(s) -> torch.Tensor:
    return s if isinstance(s, torch.Tensor) else torch.tensor(float(s), dtype=torch.float64)


# ---------------------------------------------------------------- forward SDEs

class _SDE:
    """Common interface: drift f(x, s), diffusion g(s), kernel (alpha_s, sigma_s), prior samples."""

    name = "SDE"
    prior_std = 1.0

    def drift(self, x: torch.Tensor, s) -> torch.Tensor:
        raise NotImplementedError

    def diffusion(self, s) -> torch.Tensor:
        raise NotImplementedError

    def kernel(self, s) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha_s, sigma_s): x_s | x_data ~ N(alpha_s x_data, sigma_s^2 I)."""
        raise NotImplementedError

    def perturb(self, x_data: torch.Tensor, s, noise: torch.Tensor) -> torch.Tensor:
        """A sample of x_s given x_data: alpha_s x_data + sigma_s noise (noise ~ N(0, I) given)."""
        s = _as_times(s, x_data)
        a, b = self.kernel(s)
        return a[:, None] * x_data + b[:, None] * noise

    def prior_sample(self, n: int, generator: torch.Generator | None = None,
                     dtype: torch.dtype | None = None) -> torch.Tensor:
        """Samples of the prior N(0, prior_std^2 I) that the samplers start from (flow time 0)."""
        return self.prior_std * torch.randn(n, 2, generator=generator, dtype=dtype)


class VPSDE(_SDE):
    """Variance preserving SDE with the linear schedule beta(s) = beta_min + s (beta_max - beta_min).

    dx = -beta(s) x / 2 ds + sqrt(beta(s)) dW (Song et al. 2021; the continuous DDPM).
    """

    name = "VP"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        if not 0 < beta_min <= beta_max:
            raise InputError(f"need 0 < beta_min <= beta_max, got {beta_min}, {beta_max}.")
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)

    def beta(self, s):
        return self.beta_min + _tensor(s) * (self.beta_max - self.beta_min)

    def integrated_beta(self, s):
        """B(s) = int_0^s beta, so that alpha_s = exp(-B(s) / 2) (notebooks 04 to 06 write B(s))."""
        s = _tensor(s)
        return self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s**2

    def drift(self, x, s):
        s = _as_times(s, x)
        return -0.5 * self.beta(s)[:, None] * x

    def diffusion(self, s):
        return torch.sqrt(self.beta(s))

    def kernel(self, s):
        a = torch.exp(-0.5 * self.integrated_beta(s))
        return a, torch.sqrt(-torch.expm1(-self.integrated_beta(s)))  # sigma_s^2 = 1 - alpha_s^2, stably

    def __repr__(self):
        return f"VPSDE(beta_min={self.beta_min}, beta_max={self.beta_max})"


class VESDE(_SDE):
    """Variance exploding SDE: dx = sigma(s) sqrt(2 log(sigma_max / sigma_min)) dW, no drift.

    sigma(s) = sigma_min (sigma_max / sigma_min)^s (Song et al. 2021; the continuous SMLD/NCSN).
    """

    name = "VE"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 10.0):
        if not 0 < sigma_min < sigma_max:
            raise InputError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}.")
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.prior_std = self.sigma_max

    def sigma(self, s):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** _tensor(s)

    def drift(self, x, s):
        return torch.zeros_like(x)

    def diffusion(self, s):
        return self.sigma(s) * math.sqrt(2 * math.log(self.sigma_max / self.sigma_min))

    def kernel(self, s):
        sig = self.sigma(s)
        return torch.ones_like(sig), torch.sqrt(sig**2 - self.sigma_min**2)

    def __repr__(self):
        return f"VESDE(sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"
