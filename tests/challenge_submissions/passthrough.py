"""Calls the network (for show) and returns the noise itself."""
import torch


def build():
    return torch.nn.Linear(2, 2)


def sample(net, z, nfe):
    net(z)
    return z.clone()
