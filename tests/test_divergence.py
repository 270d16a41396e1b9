"""utils.divergence against autograd traces, closed forms, torchdiffeq and a grid integral."""
from __future__ import annotations

import math

import pytest
import torch

from utils.changevars import grid_integral, jacobian
from utils.divergence import divergence_exact, divergence_hutchinson, ode_log_likelihood
from utils.errors import InputError
from utils.models import TimeMLP

A = torch.tensor([[-0.4, 1.2], [-0.7, 0.1]], dtype=torch.float64)


def mlp_field(dim=3, seed=0):
    torch.manual_seed(seed)
    return TimeMLP(dim, hidden=16, depth=2).double()


def test_exact_divergence_is_the_trace_of_autograd_jacobian():
    u = mlp_field()
    x, t = torch.randn(10, 3, dtype=torch.float64), torch.rand(10, dtype=torch.float64)
    trace = jacobian(lambda y: u(y, t), x).diagonal(dim1=1, dim2=2).sum(-1)
    assert torch.allclose(divergence_exact(u, x, t), trace, atol=1e-12)
    assert torch.allclose(divergence_exact(lambda y, s: y @ A.T, x[:, :2], 0.3),
                          torch.full((10,), float(torch.trace(A)), dtype=torch.float64))


def test_divergence_is_differentiable_and_works_under_no_grad():
    u = mlp_field()
    x = torch.randn(5, 3, dtype=torch.float64)
    div = divergence_exact(u, x, 0.5)
    div.sum().backward()
    assert u.net[0].weight.grad is not None and u.net[0].weight.grad.abs().sum() > 0
    with torch.no_grad():
        assert torch.allclose(divergence_exact(u, x, 0.5), div.detach())


@pytest.mark.parametrize("probe", ["gaussian", "rademacher"])
def test_hutchinson_is_unbiased_with_the_predicted_variance(probe):
    u = mlp_field(seed=1)
    x = torch.randn(1, 3, dtype=torch.float64).repeat(4000, 1)  # 4000 independent single-probe estimates
    t = torch.full((4000,), 0.2, dtype=torch.float64)
    est = divergence_hutchinson(u, x, t, 1, torch.Generator().manual_seed(0), probe=probe).detach()
    J = jacobian(lambda y: u(y, t[:1]), x[:1])[0]
    S = (J + J.T) / 2
    # Var(eps^T J eps): 2 ||S||_F^2 for Gaussian probes; the off-diagonal part only for Rademacher
    var = 2 * (S**2).sum() if probe == "gaussian" else 2 * (S**2).sum() - 2 * (S.diagonal() ** 2).sum()
    assert abs(est.mean() - torch.trace(J)) < 5 * math.sqrt(var / 4000)
    assert est.var().item() == pytest.approx(var.item(), rel=0.15)
    averaged = divergence_hutchinson(u, x[:500], t[:500], 16, torch.Generator().manual_seed(1), probe=probe).detach()
    assert averaged.var().item() == pytest.approx(var.item() / 16, rel=0.3)


def test_hutchinson_reproducible_and_errors():
    u = mlp_field()
    x = torch.randn(6, 3, dtype=torch.float64)
    a = divergence_hutchinson(u, x, 0.1, 3, torch.Generator().manual_seed(4))
    b = divergence_hutchinson(u, x, 0.1, 3, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    with pytest.raises(InputError, match="num_probes"):
        divergence_hutchinson(u, x, 0.1, 0)
    with pytest.raises(InputError, match="probe"):
        divergence_hutchinson(u, x, 0.1, probe="uniform")
    with pytest.raises(InputError, match="shape of x"):
        divergence_exact(lambda y, s: y[:, :1], x, 0.1)


def test_log_likelihood_of_a_linear_flow_is_the_exact_gaussian():
    u = lambda x, t: (1 + t)[:, None] * (x @ A.T)  # noqa: E731  flow exp(1.5 A) at t = 1
    M = torch.linalg.matrix_exp(1.5 * A)
    x1 = torch.randn(50, 2, dtype=torch.float64) @ M.T
    exact = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), M @ M.T).log_prob(x1)
    assert torch.allclose(ode_log_likelihood(u, x1, num_steps=40), exact, atol=1e-6)
    logp, x0 = ode_log_likelihood(u, x1, method="dopri5", rtol=1e-9, atol=1e-9, return_x0=True)
    assert torch.allclose(logp, exact, atol=1e-7)
    assert torch.allclose(x0, torch.linalg.solve(M, x1.T).T, atol=1e-7)


def test_log_likelihood_of_a_neural_field_integrates_to_one():
    u = mlp_field(dim=2, seed=2)
    with torch.no_grad():
        mass = grid_integral(lambda p: ode_log_likelihood(u, p, num_steps=8), lim=7.0, n=120)
    assert mass == pytest.approx(1.0, abs=5e-3)
    # Hutchinson in the augmented ODE is unbiased for the log-likelihood too (the divergence enters linearly)
    x1 = torch.randn(1, 2, dtype=torch.float64).repeat(2000, 1)
    g = torch.Generator().manual_seed(3)
    noisy = ode_log_likelihood(u, x1, num_steps=4,
                               divergence=lambda f, x, t: divergence_hutchinson(f, x, t, 1, g)).detach()
    exact = ode_log_likelihood(u, x1[:1], num_steps=4).detach()
    assert abs(noisy.mean() - exact[0]) < 5 * noisy.std() / math.sqrt(2000)
