"""Path energy, NPE, reflow pairs and the NFE table against closed forms; the CFM trainer's options."""
from __future__ import annotations

import math

import pytest
import torch

from utils.cfm import train_cfm
from utils.datasets import moons
from utils.errors import InputError
from utils.metrics import w2
from utils.showdown import (flow_sampler, nfe_to_reach, normalized_path_energy, path_energy, quality_vs_nfe,
                            reflow_pairs)

X0 = torch.randn(300, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_path_energy_of_a_translation_and_a_rotation():
    c = torch.tensor([1.0, 2.0], dtype=torch.float64)
    pe, x1 = path_energy(lambda x, t: c.expand_as(x), X0, num_steps=10)
    assert pe == pytest.approx(5.0) and torch.allclose(x1, X0 + c)
    assert normalized_path_energy(lambda x, t: c.expand_as(x), X0, X0 + c) == pytest.approx(0.0, abs=1e-9)
    rot = lambda x, t: torch.stack([-x[:, 1], x[:, 0]], 1)  # noqa: E731
    pe, _ = path_energy(rot, X0, num_steps=2000)
    assert pe == pytest.approx((X0**2).sum(1).mean().item(), rel=1e-3)


def test_reflow_pairs_follow_the_flow():
    rot = lambda x, t: torch.stack([-x[:, 1], x[:, 0]], 1)  # noqa: E731
    a, b = reflow_pairs(rot, X0, num_steps=2000)
    R = torch.tensor([[math.cos(1), -math.sin(1)], [math.sin(1), math.cos(1)]], dtype=torch.float64)
    assert torch.equal(a, X0) and torch.allclose(b, X0 @ R.T, atol=2e-3)


def test_quality_table_and_nfe_to_reach():
    ref = moons(200, seed=1)
    samplers = {"perfect": lambda x0, nfe: ref.clone(), "shifted": lambda x0, nfe: ref + 1.0 / nfe}
    table = quality_vs_nfe(samplers, torch.zeros(200, 2), ref, [1, 2, 4])
    assert table["perfect"] == [0.0, 0.0, 0.0]
    assert table["shifted"] == pytest.approx([math.sqrt(2) / n for n in (1, 2, 4)], rel=1e-5)
    assert nfe_to_reach(table["shifted"], [1, 2, 4], 0.4) == 4
    assert nfe_to_reach(table["shifted"], [1, 2, 4], 0.1) is None


def test_train_cfm_options_and_errors():
    model, losses = train_cfm(moons, coupling="ot", sigma=0.1, num_steps=30, batch_size=64)
    assert len(losses) == 30 and all(math.isfinite(v) for v in losses)
    x = flow_sampler(model)(torch.randn(50, 2), 4)
    assert x.shape == (50, 2) and w2(x, moons(50)) < 5
    with pytest.raises(InputError, match="either `path`"):
        train_cfm(moons)
    with pytest.raises(InputError, match="sample_pair"):
        train_cfm(moons, coupling="given")


def test_flow_sampler_spends_nfe_evaluations_with_any_method():
    from utils.solvers import NFECounter

    rot = lambda x, t: torch.stack([-x[:, 1], x[:, 0]], 1)  # noqa: E731
    for method, steps in [("euler", 8), ("midpoint", 4), ("rk4", 2)]:
        counted = NFECounter(rot)
        flow_sampler(counted, method)(X0, 8)
        assert counted.nfe == 8, method
    # midpoint is second order: at equal NFE it is far closer to the exact rotation by 1 rad than Euler
    R = torch.tensor([[math.cos(1), -math.sin(1)], [math.sin(1), math.cos(1)]], dtype=torch.float64)
    err = {m: (flow_sampler(rot, m)(X0, 16) - X0 @ R.T).abs().max().item() for m in ("euler", "midpoint")}
    assert err["midpoint"] < err["euler"] / 10
    with pytest.raises(InputError, match="multiple of 2"):
        flow_sampler(rot, "midpoint")(X0, 3)
    with pytest.raises(InputError, match="method"):
        flow_sampler(rot, "heun")


def test_quality_table_keeps_samples():
    ref, kept = moons(200, seed=1), {}
    samplers = {"shifted": lambda x0, nfe: ref + 1.0 / nfe}
    quality_vs_nfe(samplers, torch.zeros(200, 2), ref, [1, 2], kept)
    assert set(kept) == {("shifted", 1), ("shifted", 2)} and torch.equal(kept["shifted", 2], ref + 0.5)
    with pytest.raises(InputError, match="samples"):
        quality_vs_nfe(samplers, torch.zeros(200, 2), ref, [1], samples=[])


def test_ddpm_sampler_is_the_respaced_ancestral_sampler_with_its_seed():
    """06's DDPM row: the same samples as utils.samplers.sample_ddpm with nfe steps and the given seed."""
    import torch

    from utils.mixtures import eight_gaussians_mixture
    from utils.samplers import sample_ddpm
    from utils.sde import VPSDE
    from utils.showdown import ddpm_sampler

    sde, target = VPSDE(), eight_gaussians_mixture()
    score = target.score_fn(sde)
    x0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    got = ddpm_sampler(sde, score, seed=4)(x0, 5)
    want = sample_ddpm(sde, score, x0, num_steps=5, generator=torch.Generator().manual_seed(4))
    assert want.nfe == 5 and torch.equal(got, want.x)
    assert not torch.equal(got, ddpm_sampler(sde, score, seed=5)(x0, 5))  # the seed draws the noise
