"""Tries to find the reference: the grader's command line and folders, and the data module while sampling.
Swallows every refusal and returns honest-looking samples, as a careful cheat would."""
import os

import torch


def build():
    return torch.nn.Linear(2, 2)


def sample(net, z, nfe):
    for attempt in (lambda: open(f"/proc/{os.getppid()}/cmdline").read(),
                    lambda: os.listdir(os.path.dirname(os.getcwd())),
                    lambda: open("/work/main/tools/grading/challenge.py").read()):
        try:
            attempt()
        except OSError:
            pass
    try:
        from utils.datasets import moons
        return moons(z.shape[0], seed=0)
    except Exception:
        return z + net(z)
