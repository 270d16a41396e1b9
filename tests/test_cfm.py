"""The CFM loss, step and loop of utils.cfm against closed forms; reproducible from the generator alone."""
from __future__ import annotations

import math

import torch

from utils.cfm import cfm_loss, train_cfm, training_step
from utils.datasets import moons
from utils.models import TimeMLP
from utils.paths import OTPath, SchedulePath, VPPath


def _field(x, t):
    return torch.tanh(x) * (1 + t[:, None]) - 0.3 * x


def test_cfm_loss_matches_the_closed_form_of_the_ot_path():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(64, 2, generator=g, dtype=torch.float64), moons(64, seed=1).double()
    t = torch.rand(64, generator=g, dtype=torch.float64)
    xt, ut = t[:, None] * x1 + (1 - 0.9 * t[:, None]) * x0, x1 - 0.9 * x0
    expected = ((_field(xt, t) - ut) ** 2).sum(1).mean()
    assert torch.allclose(cfm_loss(_field, OTPath(0.1), x0, x1, t), expected)


def test_training_step_depends_on_the_generator_only():
    def run(global_seed):
        torch.manual_seed(0)
        model = TimeMLP()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        torch.manual_seed(global_seed)
        g = torch.Generator().manual_seed(5)
        return [training_step(model, opt, VPPath(), moons(128, seed=k), g) for k in range(3)]
    assert run(1) == run(2)


def test_train_cfm_accepts_any_schedule_path():
    c = math.pi / 2
    path = SchedulePath(lambda t: (torch.sin(c * t), torch.cos(c * t), c * torch.cos(c * t), -c * torch.sin(c * t)))
    model, losses = train_cfm(moons, path=path, num_steps=5, batch_size=64)
    assert len(losses) == 5 and all(math.isfinite(v) for v in losses)
    assert model(torch.zeros(3, 2), torch.full((3,), 0.5)).shape == (3, 2)
