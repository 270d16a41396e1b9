"""Notebook 05's references (utils.cfm_references): the recipe is the notebook's loop, step for step."""
from __future__ import annotations

import math

import pytest
import torch

from utils import cfm_references as fr
from utils.cfm import training_step
from utils.datasets import moons
from utils.models import TimeMLP
from utils.runtime import seed_everything


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_cosine_schedule_meets_the_boundary_conditions():
    t = torch.tensor([[0.0], [1.0]])
    a, sigma, da, dsigma = fr.cosine_schedule(t, 0.1)
    assert a[0].item() == 0 and a[1].item() == pytest.approx(1.0)
    assert sigma[0].item() == 1 and sigma[1].item() == pytest.approx(0.1)
    h, t = 1e-6, torch.tensor([[0.3]])
    a_p, s_p, _, _ = fr.cosine_schedule(t + h, 0.1)
    a_m, s_m, _, _ = fr.cosine_schedule(t - h, 0.1)
    _, _, da, dsigma = fr.cosine_schedule(t, 0.1)
    assert ((a_p - a_m) / (2 * h)).item() == pytest.approx(da.item(), rel=1e-6)
    assert ((s_p - s_m) / (2 * h)).item() == pytest.approx(dsigma.item(), rel=1e-6)


@pytest.mark.parametrize("key", ["ot", "vp", "cosine"])
def test_the_recipe_is_the_notebook_loop(key):
    path = fr.fm_path(key)
    g = seed_everything(0)  # notebook 05's training cell
    live = TimeMLP()
    optimizer = torch.optim.Adam(live.parameters(), lr=1e-3)
    for _ in range(5):
        training_step(live, optimizer, path, moons(256, g), g)
    g = seed_everything(0)  # what utils.references does before build and train
    ref = TimeMLP()
    fr.train_moons_fm(ref, path, 5, g)
    for p, q in zip(live.parameters(), ref.parameters()):
        assert torch.equal(p, q)


def test_evaluate_is_deterministic_and_finite():
    seed_everything(0)
    model = TimeMLP()
    a = fr.evaluate_moons_fm(model, fr.fm_path("ot"))
    b = fr.evaluate_moons_fm(model, fr.fm_path("ot"))
    assert a == b and all(math.isfinite(v) for v in a.values())
    assert set(a) == {"w2_100", "test_cfm_loss", "precision_100", "recall_100", "w2_100_mean8"}


def test_unknown_path():
    with pytest.raises(ValueError, match="unknown path"):
        fr.fm_path("sideways")
