"""Gaussian paths against closed forms, finite differences of the flow, and the continuity equation."""
from __future__ import annotations

import math

import pytest
import torch

from utils.errors import InputError
from utils.paths import OTPath, VPPath, gaussian_conditional_velocity

G = torch.Generator().manual_seed(0)
X0 = torch.randn(32, 2, generator=G, dtype=torch.float64)
X1 = torch.randn(32, 2, generator=G, dtype=torch.float64) * 2
T = torch.rand(32, generator=G, dtype=torch.float64) * 0.9 + 0.05
PATHS = [OTPath(0.0), OTPath(0.1), VPPath(), VPPath(0.5, 5.0)]


def test_ot_path_closed_form_and_boundaries():
    path = OTPath(sigma_min=0.1)
    mu, sigma = path.mean_std(X1, T)
    assert sigma.shape == (32, 1)
    assert torch.allclose(mu, T[:, None] * X1)
    assert torch.allclose(sigma[:, 0], 1 - 0.9 * T)
    mu0, s0 = path.mean_std(X1, 0.0)
    mu1, s1 = path.mean_std(X1, 1.0)
    assert torch.allclose(mu0, torch.zeros_like(X1)) and torch.allclose(s0, torch.ones(32, 1, dtype=torch.float64))
    assert torch.allclose(mu1, X1) and torch.allclose(s1, torch.full((32, 1), 0.1, dtype=torch.float64))
    # conditional flows are straight lines at constant speed x1 - (1 - sigma_min) x0
    xt = path.sample(X0, X1, T)
    assert torch.allclose(path.velocity(xt, X1, T), X1 - 0.9 * X0)


def test_vp_path_closed_form():
    path = VPPath(0.1, 20.0)
    mu, sigma = path.mean_std(X1, T)
    s = 1 - T
    alpha = torch.exp(-0.5 * (0.1 * s + 0.5 * 19.9 * s**2))
    assert torch.allclose(mu, alpha[:, None] * X1)
    assert torch.allclose(sigma[:, 0], torch.sqrt(1 - alpha**2))
    mu1, s1 = path.mean_std(X1, 1.0)
    assert torch.allclose(mu1, X1) and torch.allclose(s1, torch.zeros(32, 1, dtype=torch.float64))
    assert path.mean_std(X1, 0.0)[1].min() > 0.9999  # sigma_0 = sqrt(1 - alpha_1^2), alpha_1 = exp(-5.025)


@pytest.mark.parametrize("path", PATHS, ids=repr)
def test_velocity_is_the_time_derivative_of_the_flow(path):
    h = 1e-6
    xt = path.sample(X0, X1, T)
    fd = (path.sample(X0, X1, T + h) - path.sample(X0, X1, T - h)) / (2 * h)
    assert torch.allclose(path.velocity(xt, X1, T), fd, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("path", PATHS, ids=repr)
def test_derivatives_match_autograd(path):
    t = T.clone().requires_grad_(True)
    mu, sigma = path.mean_std(X1, t)
    dsigma = torch.autograd.grad(sigma.sum(), t, retain_graph=True)[0]
    dmu = torch.stack([torch.autograd.grad(mu[:, i].sum(), t, retain_graph=True)[0] for i in range(2)], 1)
    dmu_p, dsigma_p = path.mean_std_derivatives(X1, T)
    assert torch.allclose(dmu_p, dmu) and torch.allclose(dsigma_p[:, 0], dsigma)
    mu, sigma = path.mean_std(X1, T)
    xt = path.sample(X0, X1, T)
    assert torch.allclose(gaussian_conditional_velocity(xt, mu, sigma, dmu, dsigma[:, None]),
                          path.velocity(xt, X1, T))


@pytest.mark.parametrize("path", PATHS, ids=repr)
def test_marginal_field_is_the_posterior_average(path):
    data = torch.randn(7, 2, generator=G, dtype=torch.float64)
    x = torch.randn(20, 2, generator=G, dtype=torch.float64)
    t = torch.full((20,), 0.6, dtype=torch.float64)
    mu, sigma = path.mean_std(data, torch.full((7,), 0.6, dtype=torch.float64))
    dens = torch.stack([torch.distributions.MultivariateNormal(mu[j], sigma[j, 0] ** 2 * torch.eye(2,
                        dtype=torch.float64)).log_prob(x).exp() for j in range(7)], 1)  # (20, 7)
    cond = torch.stack([path.velocity(x, data[j].expand(20, 2), t) for j in range(7)], 1)  # (20, 7, 2)
    expected = (dens[:, :, None] * cond).sum(1) / dens.sum(1, keepdim=True)
    assert torch.allclose(path.marginal_velocity(x, data, t), expected, atol=1e-10)
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.ones(7, dtype=torch.float64)),
        torch.distributions.Independent(torch.distributions.Normal(mu, sigma.expand(7, 2)), 1))
    assert torch.allclose(path.marginal_log_prob(x, data, t), mix.log_prob(x), atol=1e-10)
    # one data point: the marginal field is that point's conditional field
    one = data[:1]
    assert torch.allclose(path.marginal_velocity(x, one, t), path.velocity(x, one.expand(20, 2), t))


@pytest.mark.parametrize("path", PATHS, ids=repr)
def test_marginal_field_solves_the_continuity_equation(path):
    """d/dt p_t(x) = -div(p_t u_t)(x), by autograd in x and a central difference in t."""
    data = torch.randn(5, 2, generator=G, dtype=torch.float64)
    x = (torch.randn(40, 2, generator=G, dtype=torch.float64) * 1.5).requires_grad_(True)
    t0, h = 0.55, 1e-5
    p = lambda x, t: path.marginal_log_prob(x, data, t).exp()  # noqa: E731
    dp_dt = (p(x, t0 + h) - p(x, t0 - h)) / (2 * h)
    flux = p(x, t0)[:, None] * path.marginal_velocity(x, data, t0)
    div = sum(torch.autograd.grad(flux[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(2))
    assert torch.allclose(dp_dt, -div, atol=1e-7, rtol=1e-5)


def test_flowing_the_marginal_field_reaches_the_data():
    from utils.solvers import solve_ode

    data = torch.tensor([[2.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    path = OTPath(sigma_min=0.01)
    x0 = torch.randn(200, 2, generator=G, dtype=torch.float64)
    x1 = solve_ode(lambda x, t: path.marginal_velocity(x, data, t), x0, num_steps=200, method="rk4").x
    nearest = torch.cdist(x1, data).min(1).values
    assert nearest.max() < 0.05
    # each mode receives about half the particles
    share = (torch.cdist(x1, data).argmin(1) == 0).double().mean().item()
    assert 0.35 < share < 0.65


def test_errors_are_clear():
    with pytest.raises(InputError, match="sigma_min"):
        OTPath(1.0)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        OTPath().mean_std(X1, 1.5)
    with pytest.raises(InputError, match="same shape"):
        OTPath().sample(X0[:3], X1, 0.5)
    with pytest.raises(InputError, match="t < 1"):
        VPPath().velocity(X1, X1, 1.0)
    with pytest.raises(InputError, match="shape"):
        OTPath().mean_std(X1, torch.rand(5))
    assert repr(OTPath(0.1)) == "OTPath(sigma_min=0.1)"
