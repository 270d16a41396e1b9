"""2D toy data, generated on the fly with a seed (no downloads). Used from notebook 00 on.

Every sampler returns a tensor of shape (n, 2) in torch's default dtype (float32,
or float64 in the notebooks that train, see notebook 02) and takes a
``torch.Generator`` or an integer seed, so the same call gives the same points.
"""
from __future__ import annotations

import math

import torch

from .errors import InputError

__all__ = ["as_generator", "moons", "eight_gaussians", "checkerboard", "SAMPLERS", "sample"]


def as_generator(seed: int | torch.Generator | None) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(0 if seed is None else int(seed))


def _check_n(n) -> int:
    if not isinstance(n, int) or n <= 0:
        raise InputError(f"`n` must be a positive integer, got {n!r}.")
    return n


def moons(n: int, seed: int | torch.Generator | None = 0, noise: float = 0.05) -> torch.Tensor:
    """Two interleaving half circles, centred and scaled to about unit variance per axis."""
    g = as_generator(seed)
    _check_n(n)
    upper = torch.rand(n, generator=g) < 0.5
    theta = math.pi * torch.rand(n, generator=g)
    x = torch.where(upper, torch.cos(theta), 1 - torch.cos(theta))
    y = torch.where(upper, torch.sin(theta), 0.5 - torch.sin(theta))
    pts = torch.stack([x, y], 1) + noise * torch.randn(n, 2, generator=g)
    return ((pts - torch.tensor([0.5, 0.25])) * torch.tensor([1.2, 2.0])).to(torch.get_default_dtype())


def eight_gaussians(n: int, seed: int | torch.Generator | None = 0, radius: float = 2.0,
                    std: float = 0.2) -> torch.Tensor:
    """Eight Gaussians of standard deviation ``std`` evenly spaced on a circle."""
    g = as_generator(seed)
    _check_n(n)
    k = torch.randint(0, 8, (n,), generator=g)
    angle = 2 * math.pi * k / 8
    centres = radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    return (centres + std * torch.randn(n, 2, generator=g)).to(torch.get_default_dtype())


def checkerboard(n: int, seed: int | torch.Generator | None = 0) -> torch.Tensor:
    """Uniform on the black squares of a 4 x 4 checkerboard on [-2, 2]^2."""
    g = as_generator(seed)
    _check_n(n)
    x1 = 4 * torch.rand(n, generator=g) - 2
    col = torch.floor(x1).long() % 2
    x2 = torch.rand(n, generator=g) + 2 * torch.randint(0, 2, (n,), generator=g) - 2 + col.to(x1.dtype)
    return torch.stack([x1, x2], 1).to(torch.get_default_dtype())


SAMPLERS = {"moons": moons, "8gaussians": eight_gaussians, "checkerboard": checkerboard}


def sample(name: str, n: int, seed: int | torch.Generator | None = 0) -> torch.Tensor:
    """Sample a data set by name: one of ``SAMPLERS``."""
    if name not in SAMPLERS:
        raise InputError(f"Unknown data set {name!r}; choose one of {sorted(SAMPLERS)}.")
    return SAMPLERS[name](n, seed)
