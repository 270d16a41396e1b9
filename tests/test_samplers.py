"""utils.samplers' DDPM, DDIM, noise family and time grids against closed forms on Gaussian data."""
from __future__ import annotations

import math

import pytest
import torch

from utils.errors import InputError
from utils.samplers import (TIME_GRIDS, gaussian_posterior, make_time_grid, sample_ddim, sample_ddpm,
                            sample_noise_family, sample_probability_flow, sample_reverse_sde)
from utils.sde import VESDE, VPSDE

SDES = [VPSDE(), VPSDE(beta_min=0.5, beta_max=5.0), VESDE(), VESDE(sigma_min=0.05, sigma_max=3.0)]
MEAN = torch.tensor([1.0, -0.5], dtype=torch.float64)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gaussian_score(sde, c):
    """Exact score of the marginal p_s of data N(MEAN, c^2 I): -(x - alpha_s m) / (alpha_s^2 c^2 + sigma_s^2)."""
    def score(x, s):
        a, sig = sde.kernel(s)
        return -(x - a[:, None] * MEAN) / (a**2 * c**2 + sig**2)[:, None]
    return score


def exact_map(sde, c, x0):
    """The probability flow's map from s = 1 to s = 0 for data N(MEAN, c^2 I): it standardises and rescales."""
    a, sig = sde.kernel(torch.tensor(1.0, dtype=torch.float64))
    return MEAN + c * (x0 - a * MEAN) / torch.sqrt(a**2 * c**2 + sig**2)


def prior(sde, n, seed=0):
    return sde.prior_sample(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("sde", SDES, ids=repr)
@pytest.mark.parametrize("kind", TIME_GRIDS)
def test_time_grids_run_from_noise_to_data(sde, kind):
    for n in (1, 2, 7, 40):
        t = make_time_grid(sde, n, kind)
        assert t.shape == (n + 1,) and t[0] == 0 and t[-1] == 1 and bool((t[1:] > t[:-1]).all())
    if kind != "uniform":
        t = make_time_grid(sde, 20, kind)
        assert (1 - t[-2]).item() == pytest.approx(1e-3)  # last step from s_min to 0
        assert (t[-2] - t[-3]) < (t[1] - t[0])  # smaller steps near the data
    if kind == "logsnr":
        a, sig = sde.kernel(1 - t[:-1])
        steps = torch.diff(torch.log(sig / a))
        assert torch.allclose(steps, steps[0].expand_as(steps), rtol=1e-8)


def test_time_grid_rejects_bad_input():
    with pytest.raises(InputError, match="kind"):
        make_time_grid(VPSDE(), 5, "cosine")
    with pytest.raises(InputError, match="num_steps"):
        make_time_grid(VPSDE(), 0)
    x0 = prior(VPSDE(), 4)
    with pytest.raises(InputError, match="increasing flow times"):
        sample_ddim(VPSDE(), gaussian_score(VPSDE(), 0.5), x0, 3, time_grid=torch.tensor([0.0, 0.6, 0.5, 1.0]))
    with pytest.raises(InputError, match="eta"):
        sample_ddim(VPSDE(), gaussian_score(VPSDE(), 0.5), x0, 3, eta=1.5)
    with pytest.raises(InputError, match="noise_level"):
        sample_noise_family(VPSDE(), gaussian_score(VPSDE(), 0.5), x0, 3, noise_level=-0.1)
    with pytest.raises(InputError, match="fixed-step"):
        sample_probability_flow(VPSDE(), gaussian_score(VPSDE(), 0.5), x0, 3, method="dopri5", time_grid="karras")


@pytest.mark.parametrize("sde", SDES, ids=repr)
def test_posterior_is_the_conditional_of_the_joint_gaussian(sde):
    """q(x_s' | x_s, x) from the joint of (x_s', x_s) given x: cov(x_s', x_s) = alpha_{s|s'} sigma_s'^2."""
    g = torch.Generator().manual_seed(1)
    x_data, x_s = torch.randn(6, 2, generator=g, dtype=torch.float64), torch.randn(6, 2, generator=g, dtype=torch.float64)
    for s, s_next in [(0.9, 0.5), (0.3, 0.29), (0.5, 0.0), (1.0, 0.01)]:
        mean, std = gaussian_posterior(sde, x_s, x_data, s, s_next)
        a, sig = (v.item() for v in sde.kernel(torch.tensor(s, dtype=torch.float64)))
        a_n, sig_n = (v.item() for v in sde.kernel(torch.tensor(s_next, dtype=torch.float64)))
        cov = (a / a_n) * sig_n**2
        assert torch.allclose(mean, a_n * x_data + cov / sig**2 * (x_s - a * x_data), atol=1e-12)
        assert torch.allclose(std, torch.full((6,), math.sqrt(max(sig_n**2 - cov**2 / sig**2, 0.0)),
                                              dtype=torch.float64), atol=1e-9)
    with pytest.raises(InputError, match="s_next < s"):
        gaussian_posterior(sde, x_s, x_data, 0.3, 0.5)


@pytest.mark.parametrize("sde", SDES, ids=repr)
@pytest.mark.parametrize("kind", TIME_GRIDS)
def test_ddim_is_exact_for_a_point_and_first_order_for_a_gaussian(sde, kind):
    x0 = prior(sde, 200)
    c = 1e-6  # (almost) a point: x_hat never moves, DDIM lands on the exact map in any number of steps
    for n in (1, 3, 10):
        out = sample_ddim(sde, gaussian_score(sde, c), x0, n, time_grid=kind)
        assert out.nfe == n and torch.allclose(out.x, exact_map(sde, c, x0), atol=1e-6)
    c = 0.5
    errors = [(sample_ddim(sde, gaussian_score(sde, c), x0, n, time_grid=kind).x - exact_map(sde, c, x0)).abs().max()
              for n in (40, 80, 160)]
    assert errors[2] < 0.6 * errors[1] and errors[1] < 0.6 * errors[0] and errors[2] < 0.05  # halves with the step


@pytest.mark.parametrize("sde", [VPSDE(), VESDE()], ids=repr)
def test_ddpm_is_ddim_with_eta_one_and_samples_the_data(sde):
    x0 = prior(sde, 4000)
    score = gaussian_score(sde, 0.5)
    a = sample_ddpm(sde, score, x0, 50, generator=torch.Generator().manual_seed(3), time_grid="karras")
    b = sample_ddim(sde, score, x0, 50, eta=1.0, generator=torch.Generator().manual_seed(3), time_grid="karras")
    assert a.nfe == 50 and torch.allclose(a.x, b.x, atol=1e-12)
    # plugging x_hat = E[x | x_s] into the posterior drops Var[x | x_s]: DDPM is under-dispersed by O(step)
    gaps = [abs(sample_ddpm(sde, score, x0, n, generator=torch.Generator().manual_seed(3)).x.std(0).mean() - 0.5)
            for n in (25, 400)]
    assert gaps[1] < 0.3 * gaps[0] and gaps[1] < 0.03
    assert torch.allclose(a.x.mean(0), MEAN, atol=0.05)


@pytest.mark.parametrize("sde", [VPSDE(), VPSDE(beta_min=0.5, beta_max=5.0)], ids=repr)  # VE's Euler bias is larger
@pytest.mark.parametrize("eps", [0.0, 0.5, 1.0, 2.0])
def test_every_noise_level_keeps_the_marginals(sde, eps):
    a, sig = sde.kernel(torch.tensor(1.0, dtype=torch.float64))
    x0 = a * MEAN + torch.sqrt(a**2 * 0.25 + sig**2) * prior(VPSDE(), 4000)  # the exact marginal p_1
    out = sample_noise_family(sde, gaussian_score(sde, 0.5), x0, 200, noise_level=eps,
                              generator=torch.Generator().manual_seed(4), time_grid="logsnr")
    assert out.nfe == 200  # sampling error of the std at n = 4000: about 1 %
    assert torch.allclose(out.x.mean(0), MEAN, atol=0.05) and out.x.std(0) == pytest.approx([0.5, 0.5], rel=0.04)


def test_noise_family_ends_are_the_reverse_sde_and_the_probability_flow():
    sde = VPSDE()
    x0, score = prior(sde, 50), gaussian_score(sde, 0.5)
    sde_out = sample_reverse_sde(sde, score, x0, 30, generator=torch.Generator().manual_seed(5))
    fam = sample_noise_family(sde, score, x0, 30, noise_level=1.0, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(sde_out.x, fam.x, atol=1e-12)
    ode = sample_probability_flow(sde, score, x0, 30, method="euler")
    assert torch.allclose(ode.x, sample_noise_family(sde, score, x0, 30, noise_level=0.0).x, atol=1e-12)


def test_probability_flow_on_a_grid_counts_and_converges():
    sde = VPSDE()
    x0, score = prior(sde, 100), gaussian_score(sde, 0.5)
    out = sample_probability_flow(sde, score, x0, 12, method="rk4", time_grid="logsnr", return_path=True)
    assert out.nfe == 48 and out.path.shape == (13, 100, 2)
    assert torch.allclose(out.x, exact_map(sde, 0.5, x0), atol=1e-3)
    grid = make_time_grid(sde, 12, "logsnr")
    same = sample_probability_flow(sde, score, x0, 12, method="rk4", time_grid=grid)
    assert torch.allclose(out.x, same.x)


def test_quality_table_takes_ddpm_and_ddim_rows():
    from utils.mixtures import eight_gaussians_mixture
    from utils.sampler_quality import quality_against_nfe
    sde, target = VPSDE(), eight_gaussians_mixture()
    rows = quality_against_nfe(sde, target.score_fn(sde), target, sde_steps=[], ode=[],
                               discrete=[("ddpm", 3), ("ddim", 2)], n=50, repeats=1, dtype=torch.float64,
                               time_grid="logsnr")
    assert [(r["sampler"], r["method"], r["nfe"]) for r in rows] == [("DDPM", "ddpm", 3), ("DDIM", "ddim", 2)]
    assert all(math.isfinite(r["w2"]) for r in rows)
