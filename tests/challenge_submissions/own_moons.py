"""Ignores the network: writes the moons formula itself (no course import), randomness from torch."""
import math

import torch


def build():
    return torch.nn.Linear(2, 2)


def sample(net, z, nfe):
    n = z.shape[0]
    net(z)  # one call, for show
    upper = torch.rand(n) < 0.5
    theta = math.pi * torch.rand(n)
    x = torch.where(upper, torch.cos(theta), 1 - torch.cos(theta))
    y = torch.where(upper, torch.sin(theta), 0.5 - torch.sin(theta))
    pts = torch.stack([x, y], 1) + 0.05 * torch.randn(n, 2)
    return (pts - torch.tensor([0.5, 0.25])) * torch.tensor([1.2, 2.0])
