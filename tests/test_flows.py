"""utils.flows against autograd Jacobians, closed forms and samples of the moons."""
from __future__ import annotations

import math

import pytest
import torch

from utils import flows
from utils.changevars import grid, grid_integral, jacobian
from utils.datasets import moons
from utils.errors import InputError


def _randomised(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


@pytest.mark.parametrize("mask", [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0, 0.0]])
def test_coupling_inverts_and_log_det_matches_autograd(mask):
    layer = _randomised(flows.AffineCoupling(torch.tensor(mask), hidden=16))
    z = torch.randn(30, len(mask), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x, ld = layer(z)
    back, ld_inv = layer.inverse(x)
    assert torch.allclose(back, z, atol=1e-10)
    assert torch.allclose(x[:, torch.tensor(mask).bool()], z[:, torch.tensor(mask).bool()])
    full = torch.linalg.slogdet(jacobian(lambda v: layer(v)[0], z)).logabsdet
    assert torch.allclose(ld, full, atol=1e-10) and torch.allclose(ld_inv, -full, atol=1e-10)
    assert ld.abs().max() > 1e-3  # it really scales


def test_stacked_flow_log_prob_is_normalised_and_matches_autograd():
    torch.manual_seed(3)
    flow = flows.realnvp(2, num_layers=4, hidden=16).double()
    z = torch.randn(20, 2, dtype=torch.float64)
    x, ld = flow(z)
    assert torch.allclose(flow.inverse(x)[0], z, atol=1e-9)
    assert torch.allclose(ld, torch.linalg.slogdet(jacobian(lambda v: flow(v)[0], z)).logabsdet, atol=1e-9)
    assert grid_integral(flow.log_prob, lim=12.0, n=300) == pytest.approx(1.0, abs=2e-3)
    assert flow.sample(7).shape == (7, 2) and flow.sample(3).dtype == torch.float64


def test_permutation_and_nll_closed_form():
    perm = flows.Permutation([2, 0, 1])
    z = torch.randn(5, 3)
    assert torch.equal(perm.inverse(perm(z)[0])[0], z) and torch.equal(perm(z)[1], torch.zeros(5))
    # one affine coupling with s, t constant is x2 = z2 e^s + t: a Gaussian with known NLL
    layer = flows.AffineCoupling(torch.tensor([1.0, 0.0]), hidden=4).double()
    with torch.no_grad():
        for p in layer.net.parameters():
            p.zero_()
        layer.net[-1].bias.copy_(torch.tensor([0.0, 0.7, 0.0, 1.5], dtype=torch.float64))
    s = math.tanh(0.7)
    x = torch.randn(400, 2, dtype=torch.float64) * torch.tensor([1.0, math.exp(s)], dtype=torch.float64) \
        + torch.tensor([0.0, 1.5], dtype=torch.float64)
    exact = -torch.distributions.Normal(torch.tensor([0.0, 1.5], dtype=torch.float64),
                                        torch.tensor([1.0, math.exp(s)], dtype=torch.float64)).log_prob(x).sum(1).mean()
    assert flows.flow_nll(flows.Flow([layer]), x).item() == pytest.approx(exact.item(), abs=1e-10)
    with pytest.raises(InputError, match="permutation"):
        flows.Permutation([0, 0])
    with pytest.raises(InputError, match="mask"):
        flows.AffineCoupling(torch.tensor([1.0, 1.0]))


def test_moons_density_integrates_to_one_and_matches_samples():
    assert grid_integral(flows.moons_log_prob, lim=3.0, n=200) == pytest.approx(1.0, abs=1e-4)
    x = moons(4000, seed=5)
    # converged in the number of quadrature nodes
    a, b = flows.moons_log_prob(x[:1000]), flows.moons_log_prob(x[:1000], num_angles=800)
    assert (a - b).abs().max() < 1e-9
    pts, _ = grid(lim=3.0, n=60)  # and away from the data, on the figures' grid
    assert (flows.moons_log_prob(pts) - flows.moons_log_prob(pts, num_angles=800)).abs().max() < 1e-9
    # a histogram of many samples agrees with the density on a coarse grid
    many = moons(200_000, seed=6).double()
    pts, area = grid(lim=2.4, n=12)
    counts, _ = torch.histogramdd(many, bins=[12, 12], range=[-2.4, 2.4, -2.4, 2.4])
    hist = counts.T.flatten() / (len(many) * area)
    fine, _ = grid(lim=2.4, n=120)  # average the density over each coarse cell
    dens = flows.moons_log_prob(fine).exp().reshape(12, 10, 12, 10).mean((1, 3)).flatten()
    assert (hist - dens).abs().max() < 0.02
    # the true density beats any fitted model on average: a Gaussian is much worse
    gauss = torch.distributions.MultivariateNormal(x.mean(0).double(), torch.cov(x.T.double()))
    assert -flows.moons_log_prob(x).mean() < -gauss.log_prob(x.double()).mean() - 1.0
