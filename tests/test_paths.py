"""Gaussian paths against closed forms, finite differences of the flow, and the continuity equation."""
from __future__ import annotations

import math

import pytest
import torch

from utils import fields
from utils.errors import InputError
from utils.paths import OTPath, SchedulePath, VPPath, gaussian_conditional_velocity
from utils.sde import VPSDE
from utils.mixtures import GaussianMixture, eight_gaussians_mixture, mixture_score
from utils.samplers import probability_flow_field


def _cosine(t, sigma_min=0.05):
    c = math.pi / 2
    return (torch.sin(c * t), sigma_min + (1 - sigma_min) * torch.cos(c * t), c * torch.cos(c * t),
            -(1 - sigma_min) * c * torch.sin(c * t))

G = torch.Generator().manual_seed(0)
X0 = torch.randn(32, 2, generator=G, dtype=torch.float64)
X1 = torch.randn(32, 2, generator=G, dtype=torch.float64) * 2
T = torch.rand(32, generator=G, dtype=torch.float64) * 0.9 + 0.05
PATHS = [OTPath(0.0), OTPath(0.1), VPPath(), VPPath(0.5, 5.0), SchedulePath(_cosine, name="cosine")]


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



# ---------------------------------------------------------------- schedule, SchedulePath

@pytest.mark.parametrize("path", PATHS, ids=repr)
def test_schedule_gives_the_coefficients_of_mean_std(path):
    a, s, da, ds = path.schedule(T)
    assert a.shape == (32, 1) and a.dtype == torch.float64
    mu, sigma = path.mean_std(X1, T)
    dmu, dsigma = path.mean_std_derivatives(X1, T)
    assert torch.allclose(a * X1, mu) and torch.allclose(s, sigma)
    assert torch.allclose(da * X1, dmu) and torch.allclose(ds, dsigma)
    a0, s0, da0, ds0 = path.schedule(0.3)  # a float: 0-d tensors that keep a float32 batch in float32
    assert a0.ndim == 0 and (a0 * X1.float()).dtype == torch.float32
    assert torch.allclose(a0 * X1, path.mean_std(X1, 0.3)[0])


def test_schedule_path_meets_its_boundary_conditions_and_checks_its_output():
    path = SchedulePath(_cosine, name="cosine")
    mu0, s0 = path.mean_std(X1, 0.0)
    mu1, s1 = path.mean_std(X1, 1.0)
    assert torch.allclose(mu0, torch.zeros_like(X1), atol=1e-12) and torch.allclose(s0, torch.ones(32, 1,
                                                                                                  dtype=torch.float64))
    assert torch.allclose(mu1, X1) and torch.allclose(s1, torch.full((32, 1), 0.05, dtype=torch.float64))
    assert repr(path) == "SchedulePath(cosine)"
    with pytest.raises(InputError, match="four tensors"):
        SchedulePath(lambda t: (t, t)).mean_std(X1, 0.5)
    with pytest.raises(InputError, match="one value per time"):
        SchedulePath(lambda t: (torch.ones(3), t, t, t)).mean_std(X1, 0.5)
    with pytest.raises(InputError, match="function"):
        SchedulePath(3)


# ---------------------------------------------------------------- score to velocity (utils.fields)

@pytest.mark.parametrize("path", PATHS, ids=repr)
def test_velocity_from_score_is_the_posterior_average(path):
    """Tweedie's conversion of the exact score (autograd of the mixture density) against the posterior average."""
    data = torch.randn(6, 2, generator=G, dtype=torch.float64)
    x = (torch.randn(30, 2, generator=G, dtype=torch.float64) * 1.5).requires_grad_(True)
    for t in (0.2, 0.6, 0.9):
        score = torch.autograd.grad(path.marginal_log_prob(x, data, t).sum(), x)[0]
        u = fields.velocity_from_score(x.detach(), score, t, path)
        assert torch.allclose(u, path.marginal_velocity(x.detach(), data, t), atol=1e-9)


def test_vp_conversion_is_the_probability_flow_ode():
    """For VP both coefficients are beta(1 - t)/2: FM-VP's marginal field is notebook 04's PF-ODE field."""
    vp = VPPath()
    for t in (0.1, 0.5, 0.95):
        a, s, da, ds = vp.schedule(t)
        beta = 0.1 + (1 - t) * 19.9
        assert torch.allclose(da / a, torch.tensor(beta / 2, dtype=torch.float64))
        assert torch.allclose(s**2 * da / a - ds * s, torch.tensor(beta / 2, dtype=torch.float64))
    target, sde = eight_gaussians_mixture(), VPSDE()
    pf = probability_flow_field(sde, target.score_fn(sde))
    for t in (0.05, 0.5, 0.99):
        x = target.sample(300, 1, s=1 - t, sde=sde, dtype=torch.float64)
        fm = fields.mixture_marginal_velocity(x, target, t, vp)
        assert torch.allclose(pf(x, t), fm, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("path", [OTPath(0.05), SchedulePath(_cosine), VPPath(0.5, 5.0)], ids=repr)
def test_mixture_marginal_velocity_matches_the_score_of_the_noised_mixture(path):
    """Posterior average (no score) against the conversion of utils.sde's independent mixture score."""
    target = GaussianMixture(torch.tensor([[1.0, 0.0], [-1.0, 1.0], [0.0, -2.0]]), torch.tensor([0.3, 0.1, 0.5]),
                             torch.tensor([1.0, 2.0, 1.0]))
    x = torch.randn(50, 2, generator=G, dtype=torch.float64) * 2
    for t in (0.3, 0.8):
        a, s, _, _ = path.schedule(t)
        score = mixture_score(x, target.means, target.stds, target.weights, mean_scale=a, noise_std=s)
        assert torch.allclose(fields.mixture_marginal_velocity(x, target, t, path),
                              fields.velocity_from_score(x, score, t, path), atol=1e-9)
    # per-point times work too
    tt = torch.rand(50, generator=G, dtype=torch.float64) * 0.8 + 0.1
    rows = torch.stack([fields.mixture_marginal_velocity(x[i:i + 1], target, float(tt[i]), path)[0] for i in range(50)])
    assert torch.allclose(fields.mixture_marginal_velocity(x, target, tt, path), rows, atol=1e-12)


# ---------------------------------------------------------------- one path, many fields

def test_ring_density_and_field_are_exact():
    path = OTPath(0.05)
    g = torch.linspace(-4, 4, 401, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    mass = fields.ring_log_prob(grid, 0.5, path).exp().sum() * (g[1] - g[0]) ** 2
    assert abs(mass.item() - 1) < 1e-6
    theta = torch.arange(2000, dtype=torch.float64) * 2 * math.pi / 2000  # a quasi-exact ring of points
    ring = 1.5 * torch.stack([theta.cos(), theta.sin()], 1)
    x = torch.randn(30, 2, generator=G, dtype=torch.float64) * 2
    for t in (0.3, 0.8, 1.0):
        assert torch.allclose(fields.ring_marginal_velocity(x, t, path), path.marginal_velocity(x, ring, t), atol=1e-10)
        assert torch.allclose(fields.ring_log_prob(x, t, path), path.marginal_log_prob(x, ring, t), atol=1e-10)
    pts = fields.ring_sample(100, 1.5, torch.Generator().manual_seed(0))
    assert torch.allclose(pts.norm(dim=1), torch.full((100,), 1.5))


def test_rotation_leaves_a_radially_symmetric_path_alone():
    """div(p_t w) = 0 for w = omega R x, while the ring's own field solves the continuity equation."""
    path = OTPath(0.05)
    x = (torch.randn(200, 2, generator=G, dtype=torch.float64) * 2).requires_grad_(True)
    t, h = 0.6, 1e-5
    p = lambda x, t: fields.ring_log_prob(x, t, path).exp()  # noqa: E731
    dp_dt = (p(x, t + h) - p(x, t - h)) / (2 * h)
    for field, expected in ((lambda x: fields.rotation(x, 2.0), 0 * dp_dt),
                            (lambda x: fields.rotation(x, 6.0, width=1.0), 0 * dp_dt),
                            (lambda x: fields.ring_marginal_velocity(x, t, path), -dp_dt)):
        flux = p(x, t)[:, None] * field(x)
        div = sum(torch.autograd.grad(flux[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(2))
        assert torch.allclose(div, expected, atol=1e-8 * dp_dt.abs().max().item() * 10)


def test_field_errors_are_clear():
    with pytest.raises(InputError, match="t > 0"):
        fields.velocity_from_score(X1, X1, 0.0, OTPath())
    with pytest.raises(InputError, match="GaussianPath"):
        fields.velocity_from_score(X1, X1, 0.5, "OT")
    with pytest.raises(InputError, match="sigma_t = 0"):
        fields.mixture_marginal_velocity(X1, eight_gaussians_mixture(), 1.0, VPPath())
    with pytest.raises(InputError, match="sigma_min > 0"):
        fields.ring_marginal_velocity(X1, 1.0, OTPath(0.0))


def test_vp_mean_at_t0_is_small_but_not_zero():
    """Notebook 05's path table: mu_0 = alpha_1 x1 with alpha_1 = exp(-(beta_min + beta_max) / 4), by quadrature."""
    from scipy.integrate import quad

    for lo, hi in [(0.1, 20.0), (0.5, 5.0)]:
        path = VPPath(lo, hi)
        T1, _ = quad(lambda s: lo + s * (hi - lo), 0.0, 1.0)
        alpha1 = float(path.alpha(torch.tensor(1.0, dtype=torch.float64)))
        assert math.isclose(alpha1, math.exp(-T1 / 2), rel_tol=1e-9)
        assert math.isclose(alpha1, math.exp(-(lo + hi) / 4), rel_tol=1e-9) and alpha1 > 0
