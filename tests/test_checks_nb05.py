"""Checks of notebook 05 accept correct answers written differently and reject plausible mistakes."""
from __future__ import annotations

import math

import torch

from tests import checkcases
from utils import cfm, fields, paths
from utils.checks import run_check
from utils.checks.nb05 import cosine_schedule, marginal_velocity, ot_mean_std


# ---- 5.1
def ms_alt(x1, t, sigma_min):
    t = t.reshape(-1, 1)
    return x1 * t, torch.lerp(torch.ones_like(t), torch.full_like(t, sigma_min), t)


def ms_row_sigma(x1, t, sigma_min):  # walkthrough-3 m4: sigma of shape (n,) where (n, 1) is asked
    return x1 * t[:, None], 1 - t * (1 - sigma_min)


def ms_swapped(x1, t, sigma_min):
    t = t[:, None]
    return (1 - t) * x1, 1 - (1 - sigma_min) * (1 - t)


def ms_no_sigma_min(x1, t, sigma_min):
    return t[:, None] * x1, 1 - t[:, None]


def ms_variance(x1, t, sigma_min):
    return t[:, None] * x1, (1 - (1 - sigma_min) * t[:, None]) ** 2


def ms_mean_fixed(x1, t, sigma_min):
    return x1.clone(), 1 - (1 - sigma_min) * t[:, None]


def ms_plus_sigma_min(x1, t, sigma_min):
    return t[:, None] * x1, 1 - t[:, None] + sigma_min


def ms_list_comprehension(x1, t, sigma_min):
    mu = torch.stack([ti * xi for ti, xi in zip(t, x1)])
    sigma = torch.stack([torch.lerp(torch.ones_like(ti), torch.full_like(ti, sigma_min), ti) for ti in t])[:, None]
    return mu, sigma


# ---- 5.2
def cv_alt(xt, mu, sigma, dmu, dsigma):
    x0 = (xt - mu) / sigma  # invert the flow, then differentiate psi_t(x0) = mu + sigma x0 in t
    return dmu + dsigma * x0


def cv_xt_for_x0(xt, mu, sigma, dmu, dsigma):
    return dsigma * xt + dmu


def cv_dmu_sign(xt, mu, sigma, dmu, dsigma):
    return dsigma / sigma * (xt - mu) - dmu


def cv_no_divide(xt, mu, sigma, dmu, dsigma):
    return dsigma * (xt - mu) + dmu


def cv_no_dmu(xt, mu, sigma, dmu, dsigma):
    return dsigma / sigma * (xt - mu)


def cv_upside_down(xt, mu, sigma, dmu, dsigma):
    return sigma / dsigma * (xt - mu) + dmu


def cv_not_centred(xt, mu, sigma, dmu, dsigma):
    return dsigma / sigma * xt + dmu


def cv_sign(xt, mu, sigma, dmu, dsigma):
    return dsigma / sigma * (mu - xt) + dmu


def cv_log_derivative(xt, mu, sigma, dmu, dsigma):
    return torch.addcmul(dmu, xt - mu, dsigma * sigma.reciprocal())  # d log sigma / dt times (xt - mu)


# ---- 5.5
def loss_alt(v_theta, path, x0, x1, t):
    mu, sigma = path.mean_std(x1, t)
    xt = mu + sigma * x0
    dmu, dsigma = path.mean_std_derivatives(x1, t)
    target = dmu + dsigma * x0
    return torch.nn.functional.mse_loss(v_theta(xt, t), target)  # mean over coordinates too: accepted


def loss_fed_x1(v_theta, path, x0, x1, t):
    xt = path.sample(x0, x1, t)
    return ((v_theta(x1, t) - path.velocity(xt, x1, t)) ** 2).sum(1).mean()


def loss_swapped_time(v_theta, path, x0, x1, t):
    xt = path.sample(x0, x1, t)
    return ((v_theta(xt, 1 - t) - path.velocity(xt, x1, t)) ** 2).sum(1).mean()


def loss_straight_target(v_theta, path, x0, x1, t):
    xt = path.sample(x0, x1, t)
    return ((v_theta(xt, t) - (x1 - x0)) ** 2).sum(1).mean()


def loss_item(v_theta, path, x0, x1, t):
    return cfm.cfm_loss(v_theta, path, x0, x1, t).item()


def loss_summed(v_theta, path, x0, x1, t):
    xt = path.sample(x0, x1, t)
    return ((v_theta(xt, t) - path.velocity(xt, x1, t)) ** 2).sum()


def loss_mean_all(v_theta, path, x0, x1, t):
    xt = path.sample(x0, x1, t)
    return ((v_theta(xt, t) - path.velocity(xt, x1, t)) ** 2).mean()  # half the asked loss: accepted, said


def loss_fed_x0(v_theta, path, x0, x1, t):
    xt = path.sample(x0, x1, t)
    return ((v_theta(x0, t) - path.velocity(xt, x1, t)) ** 2).sum(1).mean()


def loss_target_x1(v_theta, path, x0, x1, t):
    xt = path.sample(x0, x1, t)
    return ((v_theta(xt, t) - x1) ** 2).sum(1).mean()


def loss_detached(v_theta, path, x0, x1, t):
    with torch.no_grad():
        return cfm.cfm_loss(v_theta, path, x0, x1, t)


# ---- 5.6
def step_alt(v_theta, optimizer, path, x1, generator):
    n = x1.shape[0]
    t = torch.rand(n, 1, generator=generator)
    x0 = torch.randn(n, 2, generator=generator)
    xt = path.sample(x0, x1, t)
    loss = ((v_theta(xt, t[:, 0]) - path.velocity(xt, x1, t)) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def step_fed_x1(v_theta, optimizer, path, x1, generator):
    x0 = torch.randn(x1.shape, generator=generator)
    t = torch.rand(x1.shape[0], generator=generator)
    xt = path.sample(x0, x1, t)
    loss = ((v_theta(x1, t) - path.velocity(xt, x1, t)) ** 2).sum(1).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def step_swapped(v_theta, optimizer, path, x1, generator):
    x0 = torch.randn(x1.shape, generator=generator)
    t = torch.rand(x1.shape[0], generator=generator)
    xt = path.sample(x0, x1, 1 - t)
    loss = ((v_theta(xt, t) - path.velocity(xt, x1, 1 - t)) ** 2).sum(1).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def step_no_zero_grad(v_theta, optimizer, path, x1, generator):
    x0 = torch.randn(x1.shape, generator=generator)
    t = torch.rand(x1.shape[0], generator=generator)
    loss = cfm.cfm_loss(v_theta, path, x0, x1, t)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_no_step(v_theta, optimizer, path, x1, generator):
    x0 = torch.randn(x1.shape, generator=generator)
    t = torch.rand(x1.shape[0], generator=generator)
    loss = cfm.cfm_loss(v_theta, path, x0, x1, t)
    optimizer.zero_grad()
    loss.backward()
    return loss.item()


def step_one_time(v_theta, optimizer, path, x1, generator):
    x0 = torch.randn(x1.shape, generator=generator)
    t = torch.rand(1, generator=generator).expand(x1.shape[0])
    return _finish(v_theta, optimizer, path, x0, x1, t)


def step_straight_target(v_theta, optimizer, path, x1, generator):
    x0 = torch.randn(x1.shape, generator=generator)
    t = torch.rand(x1.shape[0], generator=generator)
    xt = path.sample(x0, x1, t)
    loss = ((v_theta(xt, t) - (x1 - x0)) ** 2).sum(1).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def step_global_rng(v_theta, optimizer, path, x1, generator):
    x0 = torch.randn(x1.shape)  # the global generator: not reproducible from `generator`
    t = torch.rand(x1.shape[0])
    return _finish(v_theta, optimizer, path, x0, x1, t)


def step_global_rng_time(v_theta, optimizer, path, x1, generator):
    x0 = torch.randn(x1.shape, generator=generator)
    t = torch.rand(x1.shape[0])
    return _finish(v_theta, optimizer, path, x0, x1, t)


def step_reseeded(v_theta, optimizer, path, x1, generator):
    g = torch.Generator().manual_seed(0)  # ignores the generator it is given
    x0 = torch.randn(x1.shape, generator=g)
    t = torch.rand(x1.shape[0], generator=g)
    return _finish(v_theta, optimizer, path, x0, x1, t)


def step_mean_all(v_theta, optimizer, path, x1, generator):
    x0 = torch.randn(x1.shape, generator=generator)
    t = torch.rand(x1.shape[0], generator=generator)
    xt = path.sample(x0, x1, t)
    loss = torch.nn.functional.mse_loss(v_theta(xt, t), path.velocity(xt, x1, t))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def step_times_first(v_theta, optimizer, path, x1, generator):
    t = torch.rand(len(x1), generator=generator) * 0.999
    x0 = torch.empty_like(x1).normal_(generator=generator)
    return _finish(v_theta, optimizer, path, x0, x1, t)


def loss_batch_marginal(v_theta, path, x0, x1, t):  # the batch taken as the data set: the tempting wrong target
    xt = path.sample(x0, x1, t)
    return ((v_theta(xt, t) - path.marginal_velocity(xt, x1, t)) ** 2).sum(1).mean()


# ---- 5.3
def mv_logsoftmax(x, data, t, path):
    mu, sigma = path.mean_std(data, t)
    dmu, dsigma = path.mean_std_derivatives(data, t)
    normal = torch.distributions.Normal(mu[None], sigma[None])  # full log-density, constants included
    logp = normal.log_prob(x[:, None, :]).sum(-1)  # (n, m)
    w = (logp - torch.logsumexp(logp, dim=1, keepdim=True)).exp()
    u = dsigma / sigma * (x[:, None, :] - mu) + dmu  # (n, m, d)
    return torch.einsum("nm,nmd->nd", w, u)


def mv_loop(x, data, t, path):
    logits, fields = [], []
    for x1 in data:
        x1 = x1.expand_as(x)
        mu, sigma = path.mean_std(x1, t)
        logits.append(-((x - mu) ** 2).sum(1) / (2 * sigma[:, 0] ** 2))
        fields.append(path.velocity(x, x1, t))
    w = torch.softmax(torch.stack(logits, 1), dim=1)  # (n, m), in log space
    return (w[:, :, None] * torch.stack(fields, 1)).sum(1)


def mv_exp_loop(x, data, t, path):  # right near the data; 0/0 far from it (issue 20)
    total, weights = 0, 0
    for x1 in data:
        x1 = x1.expand_as(x)
        mu, sigma = path.mean_std(x1, t)
        dens = torch.exp(-((x - mu) ** 2).sum(1, keepdim=True) / (2 * sigma**2)) / sigma**2
        total = total + dens * path.velocity(x, x1, t)
        weights = weights + dens
    return total / weights


def mv_exp_normalised(x, data, t, path):
    mu, sigma = path.mean_std(data, t)
    dmu, dsigma = path.mean_std_derivatives(data, t)
    dens = torch.exp(-torch.cdist(x, mu) ** 2 / (2 * sigma.T**2))
    w = dens / dens.sum(1, keepdim=True)
    return (w[:, :, None] * (dsigma / sigma * (x[:, None, :] - mu) + dmu)).sum(1)


def mv_weights_no_grad(x, data, t, path):  # issue 20: values right, the continuity check then fails
    mu, sigma = path.mean_std(data, t)
    dmu, dsigma = path.mean_std_derivatives(data, t)
    with torch.no_grad():
        w = torch.softmax(-torch.cdist(x, mu) ** 2 / (2 * sigma.T**2), dim=1)
    return (w[:, :, None] * (dsigma / sigma * (x[:, None, :] - mu) + dmu)).sum(1)


def mv_alias_in_place(x, data, t, path):  # issue 20: an alias of x updated in place
    y = x
    y -= 0.0
    return marginal_velocity(y, data, t, path)


def mv_uniform(x, data, t, path):
    return torch.stack([path.velocity(x, x1.expand_as(x), t) for x1 in data]).mean(0)


def _mv(x, data, t, path, logits, normalise=True, dmu_term=True):
    mu, sigma = path.mean_std(data, t)
    dmu, dsigma = path.mean_std_derivatives(data, t)
    sq = torch.cdist(x, mu) ** 2
    w = logits(sq, sigma.T)
    w = torch.softmax(w, dim=1) if normalise else w
    u = dsigma / sigma * (x[:, None, :] - mu) + (dmu if dmu_term else 0)
    return (w[:, :, None] * u).sum(1)


def mv_unnormalised(x, data, t, path):
    return _mv(x, data, t, path, lambda sq, s: torch.exp(-sq / (2 * s**2)), normalise=False)


def mv_softmax_of_density(x, data, t, path):
    return _mv(x, data, t, path, lambda sq, s: torch.exp(-sq / (2 * s**2)))


def mv_wrong_sign(x, data, t, path):
    return _mv(x, data, t, path, lambda sq, s: sq / (2 * s**2))


def mv_no_variance(x, data, t, path):
    return _mv(x, data, t, path, lambda sq, s: -sq)


def mv_no_dmu(x, data, t, path):
    return _mv(x, data, t, path, lambda sq, s: -sq / (2 * s**2), dmu_term=False)


def mv_distance_to_x1(x, data, t, path):
    mu, sigma = path.mean_std(data, t)
    dmu, dsigma = path.mean_std_derivatives(data, t)
    w = torch.softmax(-torch.cdist(x, data) ** 2 / (2 * sigma.T**2), dim=1)
    return (w[:, :, None] * (dsigma / sigma * (x[:, None, :] - mu) + dmu)).sum(1)


def mv_wrong_axis(x, data, t, path):
    mu, sigma = path.mean_std(data, t)
    dmu, dsigma = path.mean_std_derivatives(data, t)
    w = torch.softmax(-torch.cdist(x, mu) ** 2 / (2 * sigma.T**2), dim=0)
    return (w[:, :, None] * (dsigma / sigma * (x[:, None, :] - mu) + dmu)).sum(1)


def mv_detached(x, data, t, path):
    return marginal_velocity(x.detach(), data, t, path)


def mv_swapped(x, data, t, path):
    return marginal_velocity(x, data, 1 - t, path)


# ---- 5.4
def vs_tweedie(x, score, t, path):
    a, sigma, da, dsigma = path.schedule(t)
    mean_x1 = (x + sigma**2 * score) / a  # Tweedie: E[x1 | x]
    return dsigma / sigma * (x - a * mean_x1) + da * mean_x1


def vs_log_derivatives(x, score, t, path):
    a, sigma, da, dsigma = path.schedule(t)
    dlog_a, dlog_sigma = da / a, dsigma / sigma
    return dlog_a * x + sigma**2 * (dlog_a - dlog_sigma) * score


def vs_score_sign(x, score, t, path):
    a, s, da, ds = path.schedule(t)
    return da / a * x - (s**2 * da / a - ds * s) * score


def vs_sigma_not_squared(x, score, t, path):
    a, s, da, ds = path.schedule(t)
    return da / a * x + (s * da / a - ds * s) * score


def vs_no_divide_a(x, score, t, path):
    a, s, da, ds = path.schedule(t)
    return da * x + (s**2 * da - ds * s) * score


def vs_half_score(x, score, t, path):
    a, s, da, ds = path.schedule(t)
    return da / a * x + 0.5 * (s**2 * da / a - ds * s) * score


def vs_half(x, score, t, path):
    return 0.5 * marginal_velocity_from_score(x, score, t, path)


def marginal_velocity_from_score(x, score, t, path):
    a, s, da, ds = path.schedule(t)
    return da / a * x + (s**2 * da / a - ds * s) * score


def vs_no_sigma_sq(x, score, t, path):
    a, s, da, ds = path.schedule(t)
    return da / a * x + (da / a - ds * s) * score


def vs_no_x_term(x, score, t, path):
    a, s, da, ds = path.schedule(t)
    return (s**2 * da / a - ds * s) * score


def vs_dsigma_sign(x, score, t, path):
    a, s, da, ds = path.schedule(t)
    return da / a * x + (s**2 * da / a + ds * s) * score


def vs_diffusion_time(x, score, t, path):
    return fields.velocity_from_score(x, score, 1 - t, path)


def vs_vp_only(x, score, t, path):  # the PF-ODE formula of notebook 04, right for VP only
    s = 1 - t
    beta = 0.1 + s * (20.0 - 0.1)
    return beta / 2 * (x + score)


# ---- 5.7
def sched_smoothstep(t, sigma_min):
    a = 3 * t**2 - 2 * t**3
    da = 6 * t - 6 * t**2
    return a, 1 - (1 - sigma_min) * a, da, -(1 - sigma_min) * da


def sched_circle(t, sigma_min):  # issue 20: sigma'(1) = -inf when sigma_min = 0, accepted
    sigma = torch.sqrt(1 - (1 - sigma_min**2) * t**2)
    return t, sigma, torch.ones_like(t), -(1 - sigma_min**2) * t / sigma


def sched_ot(t, sigma_min):
    return t, 1 - (1 - sigma_min) * t, torch.ones_like(t), torch.full_like(t, -(1 - sigma_min))


def sched_swapped(t, sigma_min):
    a, s, da, ds = cosine_schedule(1 - t, sigma_min)
    return a, s, -da, -ds


def sched_no_sigma_min(t, sigma_min):
    return cosine_schedule(t, 0.0)


def sched_missing_chain_factor(t, sigma_min):
    a, s, _, _ = cosine_schedule(t, sigma_min)
    return a, s, torch.cos(math.pi * t / 2), -(1 - sigma_min) * torch.sin(math.pi * t / 2)


def sched_dsigma_sign(t, sigma_min):
    a, s, da, ds = cosine_schedule(t, sigma_min)
    return a, s, da, -ds


def sched_negative_sigma(t, sigma_min):
    a, s, da, ds = sched_ot(t, sigma_min)
    return a, s - 1.5 * torch.sin(math.pi * t), da, ds - 1.5 * math.pi * torch.cos(math.pi * t)


def sched_variance(t, sigma_min):
    a, s, da, ds = cosine_schedule(t, sigma_min)
    return a, s**2, da, 2 * s * ds


def sched_vp(t, sigma_min):  # the VP path: mu_0 is not exactly 0
    a, s, da, ds = paths.VPPath()._schedule(t)
    return a, s, da, ds


def _finish(v_theta, optimizer, path, x0, x1, t):
    loss = cfm.cfm_loss(v_theta, path, x0, x1, t)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


CORRECT = {
    "5.1": [ot_mean_std, ms_alt, ms_list_comprehension],
    "5.2": [paths.gaussian_conditional_velocity, cv_alt, cv_log_derivative],
    "5.5": [cfm.cfm_loss, loss_alt, loss_mean_all],
    "5.6": [cfm.training_step, step_alt, step_mean_all, step_times_first],
    "5.3": [marginal_velocity, mv_logsoftmax, mv_loop],
    "5.4": [fields.velocity_from_score, vs_tweedie, vs_log_derivatives],
    "5.7": [cosine_schedule, sched_smoothstep, sched_ot, sched_circle],
}
WRONG = {
    "5.1": [(ms_swapped, "time convention is swapped"), (ms_no_sigma_min, "ignores sigma_min"),
            (ms_variance, "variance"), (ms_mean_fixed, "mu_t = t x1, not x1 at every t"),
            (ms_plus_sigma_min, "breaks sigma_0 = 1"), (ms_row_sigma, "sigma has shape (40,)")],
    "5.2": [(cv_no_divide, "did not divide by sigma_t"), (cv_no_dmu, "mu_t' is missing"),
            (cv_upside_down, "upside down"), (cv_not_centred, "subtract the mean first"),
            (cv_sign, "sign of (xt - mu_t) is flipped"), (cv_xt_for_x0, "used xt where x0 belongs"),
            (cv_dmu_sign, "sign of mu_t' is flipped")],
    "5.5": [(loss_fed_x1, "fed x1 instead of xt"), (loss_swapped_time, "time convention is swapped"),
            (loss_straight_target, "sigma_min = 0.1"), (loss_item, "as a tensor"), (loss_summed, "do not sum"),
            (loss_fed_x0, "fed x0 instead of xt"), (loss_target_x1, "not the data point x1"),
            (loss_detached, "does not depend on the network's parameters"),
            (loss_batch_marginal, "marginal field of the batch")],
    "5.6": [(step_fed_x1, "fed x1 instead of xt"), (step_swapped, "time convention is swapped"),
            (step_no_zero_grad, "zero_grad"), (step_no_step, "optimizer.step()"), (step_one_time, "same time"),
            (step_straight_target, "conditional field"), (step_global_rng, "x0 and t were drawn from the global"),
            (step_global_rng_time, "times t were drawn from the global"),
            (step_reseeded, "whatever `generator` it is given")],
    "5.3": [(mv_uniform, "prior weights"), (mv_unnormalised, "do not sum to 1"),
            (mv_softmax_of_density, "softmax of the densities"), (mv_wrong_sign, "farthest"),
            (mv_no_variance, "not divided by 2 sigma_t^2"), (mv_no_dmu, "misses its mu_t' term"),
            (mv_distance_to_x1, "centred at mu_t(x1_j)"), (mv_wrong_axis, "over the query points"),
            (mv_detached, "carries no gradient"), (mv_swapped, "time convention is swapped"),
            (mv_exp_loop, "work in log space"), (mv_exp_normalised, "work in log space"),
            (mv_weights_no_grad, "gradient of the field with respect to `x` is not"),
            (mv_alias_in_place, "changed its argument `x` in place")],
    "5.4": [(vs_score_sign, "score term has the wrong sign"), (vs_no_sigma_sq, "lacks its sigma_t^2"),
            (vs_no_x_term, "a_t'/a_t x is missing"), (vs_dsigma_sign, "sigma_t' sigma_t term is flipped"),
            (vs_diffusion_time, "time convention is swapped"), (vs_vp_only, "used for every path"),
            (vs_sigma_not_squared, "used sigma_t where sigma_t^2 belongs"), (vs_no_divide_a, "did not divide by a_t"),
            (vs_half_score, "extra factor 1/2"), (vs_half, "half the right one")],
    "5.7": [(sched_swapped, "time convention is swapped"), (sched_no_sigma_min, "ignores sigma_min"),
            (sched_missing_chain_factor, "chain-rule factor"), (sched_dsigma_sign, "`dsigma` has the wrong sign"),
            (sched_negative_sigma, "must stay positive"), (sched_variance, "that is a variance"),
            (sched_vp, "mu_0 = a_0 x1 must be 0")],
}

test_accepts, test_rejects = checkcases.parametrize_cases(CORRECT, WRONG)


def test_mean_over_coordinates_is_accepted_and_the_factor_said():
    for ex, answer in (("5.5", loss_mean_all), ("5.6", step_mean_all)):
        res = run_check(ex, answer)
        assert res.passed and "1/2 of the asked loss" in res.message, res.message
    assert "1/2" not in run_check("5.5", cfm.cfm_loss).message


def test_training_step_check_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    assert run_check("5.6", cfm.training_step).passed
    assert torch.equal(torch.rand(3), expected)


def test_standard_normal_tolerances_are_sized_for_one_in_a_million():
    """The 5.6 test on z = (xt - mu_t) / sigma_t: 8 statistics, each at >= 5.3 sds of its null distribution."""
    from scipy.stats import norm

    from utils.checks.nb05 import MEAN_TOL, STD_TOL
    n = 512
    p_mean = 2 * norm.sf(MEAN_TOL * math.sqrt(n))
    p_std = 2 * norm.sf(STD_TOL * math.sqrt(2 * n))
    assert 4 * p_mean + 4 * p_std < 1e-6
    # and empirically: 2000 genuine batches all pass
    from utils.checks.nb05 import _standard
    g = torch.Generator().manual_seed(0)
    assert all(_standard(torch.randn(n, 2, generator=g)) for _ in range(2000))
