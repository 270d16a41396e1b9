"""Never returns."""
import torch


def build():
    return torch.nn.Linear(2, 2)


def sample(net, z, nfe):
    while True:
        pass
