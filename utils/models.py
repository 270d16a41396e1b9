"""Small networks for vector fields and scores (used from notebook 03 on).

``TimeMLP(dim, hidden=64, depth=3)`` maps (x, t) to a vector of x's shape:
x (n, dim), t (n,) -> (n, dim). Time enters as extra input features
(t and a few sinusoids), which is enough for 2D problems on a CPU. The
3x64 SELU MLP is the network of the 2D results the course compares with
(Tong et al. 2024).

``ConditionalMLP(dim, num_classes)`` maps (x, t, y) to a vector of x's shape:
a class label y (n,) enters through a learned embedding, and the extra label
``null_label = num_classes`` means "no label" (classifier-free guidance,
notebook 07).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .errors import InputError, batch_times, check_points

__all__ = ["TimeMLP", "ConditionalMLP", "time_features", "count_parameters"]


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
        t = batch_times(t, x)
        return self.net(torch.cat([x, time_features(t.to(x.dtype), self.num_freqs)], dim=1))


class ConditionalMLP(nn.Module):
    """A class-conditional field v_theta(x, t, y) for classifier-free guidance (notebook 07).

    The first layer sees x and the time features; a learned embedding of the label y is added to
    its output; then ``depth - 1`` more hidden layers of width ``hidden`` (SELU). Labels run over
    0..num_classes - 1, and ``null_label = num_classes`` stands for "no label": trained on labels
    dropped at random, one network gives both v(x, t | y) and v(x, t | no label).
    """

    def __init__(self, dim: int = 64, num_classes: int = 10, hidden: int = 256, depth: int = 3,
                 num_freqs: int = 4):
        super().__init__()
        if depth < 1 or num_classes < 1:
            raise InputError(f"need depth >= 1 and num_classes >= 1, got {depth} and {num_classes}.")
        self.dim, self.num_classes, self.num_freqs = dim, num_classes, num_freqs
        self.null_label = num_classes
        self.inp = nn.Linear(dim + 1 + 2 * num_freqs, hidden)
        self.label_embedding = nn.Embedding(num_classes + 1, hidden)
        layers = []
        for _ in range(depth - 1):
            layers += [nn.SELU(), nn.Linear(hidden, hidden)]
        layers += [nn.SELU(), nn.Linear(hidden, dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, y: torch.Tensor) -> torch.Tensor:
        check_points(x, "x", dim=self.dim)
        n = x.shape[0]
        t = batch_times(t, x)
        if not isinstance(y, torch.Tensor) or y.shape != (n,) or y.is_floating_point():
            got = f"shape {tuple(y.shape)}, dtype {y.dtype}" if isinstance(y, torch.Tensor) else type(y).__name__
            raise InputError(f"`y` must be integer labels of shape ({n},), got {got}.")
        if n and (y.min() < 0 or y.max() > self.null_label):
            raise InputError(f"labels must lie in 0..{self.null_label} ({self.null_label} = no label), "
                             f"got values from {int(y.min())} to {int(y.max())}.")
        h = self.inp(torch.cat([x, time_features(t.to(x.dtype), self.num_freqs)], dim=1))
        return self.net(h + self.label_embedding(y.to(x.device)))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
