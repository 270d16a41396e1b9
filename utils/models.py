"""Small networks for vector fields and scores (used from notebook 03 on).

``TimeMLP(dim, hidden=64, depth=3)`` maps (x, t) to a vector of x's shape:
x (n, dim), t (n,) -> (n, dim). Time enters as extra input features
(t and a few sinusoids), which is enough for 2D problems on a CPU. The
3x64 SELU MLP is the network of the 2D results the course compares with
(Tong et al. 2024).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .errors import InputError, check_points

__all__ = ["TimeMLP", "time_features", "count_parameters"]


def time_features(t: torch.Tensor, num_freqs: int = 4) -> torch.Tensor:
    """t (n,) -> (n, 1 + 2 num_freqs): t, sin(2^k pi t), cos(2^k pi t)."""
    freqs = (2.0 ** torch.arange(num_freqs, device=t.device, dtype=t.dtype)) * math.pi
    ang = t[:, None] * freqs
    return torch.cat([t[:, None], torch.sin(ang), torch.cos(ang)], dim=1)


class TimeMLP(nn.Module):
    """An MLP v_theta(x, t): `depth` hidden layers of width `hidden`, SELU activations."""

    def __init__(self, dim: int = 2, hidden: int = 64, depth: int = 3, num_freqs: int = 4,
                 out_dim: int | None = None):
        super().__init__()
        self.dim, self.num_freqs = dim, num_freqs
        layers, width = [], dim + 1 + 2 * num_freqs
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SELU()]
            width = hidden
        layers.append(nn.Linear(width, out_dim or dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        check_points(x, "x", dim=self.dim)
        if not isinstance(t, torch.Tensor):
            t = torch.full((x.shape[0],), float(t), device=x.device, dtype=x.dtype)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        if t.ndim == 2 and t.shape[1] == 1:
            t = t[:, 0]
        if t.shape != (x.shape[0],):
            raise InputError(f"`t` must have shape ({x.shape[0]},) for x of shape {tuple(x.shape)}, "
                             f"got {tuple(t.shape)}.")
        return self.net(torch.cat([x, time_features(t.to(x.dtype), self.num_freqs)], dim=1))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
