"""utils.sde against closed forms, autograd, simulation and the Fokker-Planck equation."""
from __future__ import annotations

import math

import pytest
import torch

from utils.errors import InputError
from utils.metrics import w2
from utils.sde import VESDE, VPSDE, diffusion_time, flow_time
from utils.mixtures import GaussianMixture, eight_gaussians_mixture, mixture_log_prob
from utils.samplers import em_step, probability_flow_field, sample_probability_flow, sample_reverse_sde
from utils.score_matching import ScoreModel, dsm_loss, train_score_model
from utils.sampler_quality import w2_floor_spread

SDES = [VPSDE(), VPSDE(beta_min=0.5, beta_max=5.0), VESDE(), VESDE(sigma_min=0.05, sigma_max=3.0)]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one thread is faster than several on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _target():
    return GaussianMixture(torch.tensor([[-1.5, 0.0], [1.0, 1.0], [0.5, -1.5]]), torch.tensor([0.3, 0.5, 0.2]),
                           torch.tensor([0.5, 0.3, 0.2]))


def test_time_convention_is_one_mapping_both_ways():
    t = torch.linspace(0, 1, 11)
    assert torch.allclose(flow_time(diffusion_time(t)), t) and diffusion_time(0.0) == 1.0 and flow_time(0.0) == 1.0
    sde, target = VPSDE(), _target()
    score = target.score_fn(sde)
    x = torch.randn(5, 2, dtype=torch.float64)
    u = probability_flow_field(sde, score)(x, torch.full((5,), 0.3, dtype=torch.float64))
    s = torch.full((5,), 0.7, dtype=torch.float64)  # flow t = 0.3 is diffusion s = 0.7; dt = -ds
    assert torch.allclose(u, -(sde.drift(x, s) - 0.5 * sde.diffusion(s)[:, None] ** 2 * score(x, s)))


@pytest.mark.parametrize("sde", SDES, ids=repr)
def test_kernels_match_simulating_the_forward_sde(sde):
    g = torch.Generator().manual_seed(0)
    n, num_steps = 4000, 400
    x_data = torch.tensor([1.5, -0.5], dtype=torch.float64).expand(n, 2)
    x, ds = x_data.clone(), 1.0 / num_steps
    checkpoints = {200: 0.5, 400: 1.0}
    for k in range(num_steps):
        x = em_step(x, k * ds, ds, sde.drift, sde.diffusion, torch.randn(n, 2, generator=g, dtype=torch.float64))
        if k + 1 in checkpoints:
            a, b = sde.kernel(torch.tensor(checkpoints[k + 1], dtype=torch.float64))
            assert torch.allclose(x.mean(0), a * x_data[0], atol=4 * b.item() / math.sqrt(n) + 0.01 * b.item())
            assert x.std(0) == pytest.approx([b.item()] * 2, rel=0.05)


def test_kernel_closed_forms_at_the_ends():
    vp = VPSDE()
    a1, b1 = vp.kernel(1.0)
    assert a1.item() == pytest.approx(math.exp(-0.5 * (0.1 + 0.5 * 19.9)))
    assert a1**2 + b1**2 == pytest.approx(1.0)  # variance preserving
    a0, b0 = vp.kernel(0.0)
    assert a0.item() == 1.0 and b0.item() == 0.0
    ve = VESDE()
    assert ve.kernel(1.0)[1].item() == pytest.approx(math.sqrt(10.0**2 - 0.01**2)) and ve.kernel(0.0)[1].item() == 0


@pytest.mark.parametrize("sde", SDES[::2], ids=repr)
def test_marginal_density_solves_fokker_planck(sde):
    """d/ds p = -div(f p) + g^2 / 2 laplacian(p), checked at random points with autograd and finite differences."""
    target = _target()
    x = (torch.randn(12, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 1.5)
    for s0 in (0.2, 0.6):
        h = 1e-5
        dp_ds = (target.marginal_log_prob(x, s0 + h, sde).exp() - target.marginal_log_prob(x, s0 - h, sde).exp()) / (2 * h)
        xr = x.clone().requires_grad_(True)
        s = torch.full((12,), s0, dtype=torch.float64)
        p = target.marginal_log_prob(xr, s, sde).exp()
        flux = sde.drift(xr, s) * p[:, None]  # f p
        div = sum(torch.autograd.grad(flux[:, i].sum(), xr, create_graph=True)[0][:, i] for i in range(2))
        grad_p = torch.autograd.grad(p.sum(), xr, create_graph=True)[0]
        lap = sum(torch.autograd.grad(grad_p[:, i].sum(), xr, retain_graph=True)[0][:, i] for i in range(2))
        rhs = -div + 0.5 * sde.diffusion(s) ** 2 * lap
        assert torch.allclose(dp_ds, rhs.detach(), atol=1e-5 * max(1.0, rhs.abs().max().item()), rtol=1e-4)


@pytest.mark.parametrize("sde", [VPSDE(), VESDE()], ids=repr)
def test_score_is_autograd_of_the_exact_log_density(sde):
    target = _target()
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 2
    s = torch.rand(20, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    auto = torch.autograd.grad(target.marginal_log_prob(xr, s, sde).sum(), xr)[0]
    assert torch.allclose(target.marginal_score(x, s, sde), auto, atol=1e-10)


def test_log_density_against_torch_distributions_and_samples():
    target, sde = _target(), VPSDE()
    a, b = sde.kernel(torch.tensor(0.4, dtype=torch.float64))
    comp = torch.distributions.Independent(torch.distributions.Normal(
        a * target.means, torch.sqrt(a**2 * target.stds**2 + b**2)[:, None].expand(3, 2)), 1)
    mix = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(probs=target.weights), comp)
    x = torch.randn(30, 2, dtype=torch.float64)
    assert torch.allclose(target.marginal_log_prob(x, 0.4, sde), mix.log_prob(x), atol=1e-10)
    assert torch.allclose(mixture_log_prob(x, target.means, target.stds, target.weights, a, b), mix.log_prob(x))
    xs = target.sample(20000, 0, s=0.4, sde=sde, dtype=torch.float64)
    assert torch.allclose(xs.mean(0), mix.mean, atol=0.03) and torch.allclose(xs.var(0), mix.variance, rtol=0.05)


def test_eight_gaussians_is_the_data_set():
    from utils.datasets import eight_gaussians

    target = eight_gaussians_mixture()
    data = eight_gaussians(2000, seed=0).double()
    assert w2(data, target.sample(2000, 5, dtype=torch.float64)) < 0.2


@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_probability_flow_keeps_the_exact_marginals(method):
    """From p at s = 1 the ODE lands on p at s = 0.5 and s = 0: W2 to exact samples is at the finite-sample floor."""
    target, sde = eight_gaussians_mixture(), VPSDE()
    n = 300
    x0 = target.sample(n, 10, s=1.0, sde=sde)  # exact marginal at s = 1 (nearly N(0, I))
    sol = sample_probability_flow(sde, target.score_fn(sde), x0, num_steps=20, method=method, return_path=True,
                                  rtol=1e-4, atol=1e-4)
    half = sol.path[10] if method == "rk4" else sol.path[int(torch.argmin((sol.times - 0.5).abs()))]
    for got, s in ((half, 0.5), (sol.x, 0.0)):
        floor = w2(target.sample(n, 11, s=s, sde=sde), target.sample(n, 12, s=s, sde=sde))
        assert w2(got, target.sample(n, 13, s=s, sde=sde)) < 1.6 * floor + 0.05, s
    assert sol.nfe == (80 if method == "rk4" else sol.nfe) and sol.nfe > 0


def test_reverse_sde_reaches_the_target_and_counts_nfe():
    target, sde = eight_gaussians_mixture(), VPSDE()
    n = 300
    x0 = sde.prior_sample(n, torch.Generator().manual_seed(4))
    out = sample_reverse_sde(sde, target.score_fn(sde), x0, 200, generator=torch.Generator().manual_seed(5),
                             return_path=True)
    assert out.nfe == 200 and out.path.shape == (201, n, 2) and torch.equal(out.path[0], x0)
    floor = w2(target.sample(n, 11), target.sample(n, 12))
    assert w2(out.x, target.sample(n, 13)) < 1.6 * floor + 0.05
    # the noise is seeded: same generator, same samples; and a few steps are far worse
    again = sample_reverse_sde(sde, target.score_fn(sde), x0, 200, generator=torch.Generator().manual_seed(5))
    assert torch.equal(again.x, out.x)
    coarse = sample_reverse_sde(sde, target.score_fn(sde), x0, 2, generator=torch.Generator().manual_seed(5))
    assert w2(coarse.x, target.sample(n, 13)) > 3 * floor


def test_em_step_variance_and_dsm_optimum():
    x = torch.zeros(20000, 2, dtype=torch.float64)
    z = torch.randn(20000, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    out = em_step(x, 0.5, 0.01, lambda y, t: torch.ones_like(y), lambda t: 2 + 0 * t, z)
    assert out.mean().item() == pytest.approx(0.01, abs=0.002) and out.var().item() == pytest.approx(0.04, rel=0.05)
    # the exact score minimises DSM: any perturbation of it has a larger expected loss
    target, sde = _target(), VPSDE()
    g = torch.Generator().manual_seed(7)
    x_data = target.sample(20000, g, dtype=torch.float64)
    s = 0.05 + 0.9 * torch.rand(20000, generator=g, dtype=torch.float64)
    noise = torch.randn(20000, 2, generator=g, dtype=torch.float64)
    exact = target.score_fn(sde)
    best = dsm_loss(exact, x_data, s, noise, sde)
    for eps in (0.2, -0.2):
        assert dsm_loss(lambda y, r: exact(y, r) * (1 + eps), x_data, s, noise, sde) > best


def test_train_score_model_learns_the_score_quickly():
    target, sde = eight_gaussians_mixture(), VPSDE()
    model, losses = train_score_model(sde, lambda n, g: target.sample(n, g), num_steps=300, batch_size=256)
    assert isinstance(model, ScoreModel) and not model.training and len(losses) == 300
    assert sum(losses[-30:]) / 30 < sum(losses[:30]) / 30
    x = target.sample(500, 8, s=0.5, sde=sde)
    s = torch.full((500,), 0.5)
    torch.manual_seed(0)
    untrained = ScoreModel(sde)  # the same initialisation, before training
    with torch.no_grad():
        exact = target.marginal_score(x, s, sde)
        err = (model(x, s) - exact).pow(2).sum(1).mean()
        before = (untrained(x, s) - exact).pow(2).sum(1).mean()
    assert err < 0.2 * before and err < 0.1 * exact.pow(2).sum(1).mean()


def test_bad_input_is_explained():
    sde = VPSDE()
    with pytest.raises(InputError, match="beta_min"):
        VPSDE(beta_min=1.0, beta_max=0.5)
    with pytest.raises(InputError, match="positive integer"):
        sample_reverse_sde(sde, lambda x, s: -x, torch.zeros(3, 2), 0)
    with pytest.raises(InputError, match="stds"):
        GaussianMixture(torch.zeros(2, 2), torch.tensor([1.0, -1.0]), torch.ones(2))
    with pytest.raises(InputError, match="shape"):
        sde.drift(torch.zeros(3, 2), torch.zeros(4))
    with pytest.raises(InputError, match="data"):
        train_score_model(sde, "moons", num_steps=1)


def test_stratified_samples_and_the_floor():
    target = GaussianMixture(torch.zeros(3, 2) + torch.tensor([[0.0], [5.0], [10.0]]), torch.full((3,), 0.1),
                             torch.tensor([0.5, 0.3, 0.2]))
    x = target.sample(101, 0, stratified=True, dtype=torch.float64)
    counts = torch.bincount(((x[:, 0] + 2.5) // 5).long(), minlength=3)
    assert counts.tolist() == [51, 30, 20]  # n w_k rounded by largest remainders, summing to n
    floor, spread = w2_floor_spread(eight_gaussians_mixture(), n=200, pairs=3)
    assert 0.1 < floor < 0.8 and 0 < spread < floor
    vp = VPSDE()
    floor_s, _ = w2_floor_spread(eight_gaussians_mixture(), n=200, pairs=3, s=0.5, sde=vp)
    assert 0.1 < floor_s < 0.8


def test_fewest_nfe_needs_the_run_to_stay_below_and_breaks_ties_by_name():
    from utils.sampler_quality import fewest_nfe

    rows = [dict(sampler="ODE", method=m, nfe=n, w2=q) for m, n, q in [
        ("rk4", 4, 0.2), ("rk4", 8, 0.5), ("rk4", 16, 0.2),    # dips below at 4, leaves, returns at 16
        ("euler", 16, 0.2), ("euler", 32, 0.2), ("midpoint", 2, 0.9)]]
    assert fewest_nfe(rows, "ODE", 0.3) == (16, "euler")
    assert fewest_nfe(rows, "ODE", 0.1) is None
    assert fewest_nfe(rows, "SDE", 0.3) is None


def test_flow_time_drifts_are_the_samplers_fields():
    """Exercise 4.4's reference: the reverse SDE's drift and the probability flow at s = 1 - t, both negated."""
    from utils.samplers import flow_time_drifts, reverse_sde_drift

    target = _target()
    t = torch.tensor([0.1, 0.3, 0.6, 0.8, 0.95], dtype=torch.float64)
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for sde in SDES:
        score = target.score_fn(sde)
        sde_drift, ode_field = flow_time_drifts(x, t, sde.drift, sde.diffusion, score)
        assert torch.allclose(sde_drift, -reverse_sde_drift(sde, score, x, diffusion_time(t)), atol=1e-12)
        assert torch.allclose(ode_field, probability_flow_field(sde, score)(x, t), atol=1e-12)
        # the two differ by exactly the extra half of the score term, g^2 score / 2, at s = 1 - t
        s = diffusion_time(t)
        assert torch.allclose(sde_drift - ode_field, 0.5 * sde.diffusion(s)[:, None] ** 2 * score(x, s), atol=1e-12)


def test_noise_baseline_is_the_untouched_noise_of_the_quality_table():
    from utils.sampler_quality import quality_against_nfe, w2_noise_baseline

    target, sde = eight_gaussians_mixture(), VPSDE()
    baseline = w2_noise_baseline(sde, target, n=100, repeats=2, seed=3)
    # by hand: the same x0 and the same stratified references as quality_against_nfe(seed=3)
    x0 = sde.prior_sample(200, torch.Generator().manual_seed(3))
    refs = [target.sample(100, 3 + 101 + r, stratified=True) for r in range(2)]
    assert baseline == pytest.approx((w2(x0[:100], refs[0]) + w2(x0[100:], refs[1])) / 2, abs=1e-12)
    frozen = VPSDE(beta_min=1e-9, beta_max=1e-9)  # f and g vanish: the samplers leave x0 where it is
    rows = quality_against_nfe(frozen, lambda x, s: torch.zeros_like(x), target, sde_steps=[3], n=100, repeats=2,
                               seed=3, ode=[("euler", 2)])
    assert all(r["w2"] == pytest.approx(baseline, abs=1e-3) for r in rows)  # g ~ 3e-5 still adds a little noise
    assert baseline > 1.5 * w2_floor_spread(target, n=100, pairs=3)[0]  # noise is far from the 8 Gaussians


def test_double_precision_runs_keep_their_dtype_and_float32_is_unchanged():
    from utils.sampler_quality import quality_against_nfe

    target, sde = eight_gaussians_mixture(), VPSDE()
    data = target.sample(2000, 5)
    m32, l32 = train_score_model(sde, data, num_steps=20, batch_size=64, seed=1)
    m32b, l32b = train_score_model(sde, data, num_steps=20, batch_size=64, seed=1, dtype=torch.float32)
    assert l32 == l32b  # the default is float32, bit for bit as before the dtype keyword
    m64, l64 = train_score_model(sde, data.double(), num_steps=20, batch_size=64, seed=1, dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in m64.parameters())
    assert all(math.isfinite(v) for v in l64) and abs(sum(l64) / 20 - sum(l32) / 20) < 0.2
    rows = quality_against_nfe(sde, target.score_fn(sde), target, sde_steps=[10], ode=[("rk4", 5)], n=100,
                               repeats=1, dtype=torch.float64)
    rows32 = quality_against_nfe(sde, target.score_fn(sde), target, sde_steps=[10], ode=[("rk4", 5)], n=100,
                                 repeats=1)
    # the ODE starts from the same noise in both precisions, so it lands on the same samples (to float32 accuracy)
    assert rows[1]["w2"] == pytest.approx(rows32[1]["w2"], abs=1e-4) and rows[1]["nfe"] == 20
