"""Checks of notebook 04 accept correct answers written differently and reject plausible mistakes."""
from __future__ import annotations

import math

import torch

from tests import checkcases
from utils import mixtures, samplers, score_matching


# ---- 4.1 probability flow drift
def pf_alt(x, s, drift, diffusion, score):
    half_g2 = diffusion(s).pow(2).div(2).unsqueeze(1)
    return drift(x, s) - half_g2 * score(x, s)


def pf_reverse_sde(x, s, drift, diffusion, score):
    return drift(x, s) - diffusion(s)[:, None] ** 2 * score(x, s)


def pf_plus(x, s, drift, diffusion, score):
    return drift(x, s) + 0.5 * diffusion(s)[:, None] ** 2 * score(x, s)


def pf_g_not_squared(x, s, drift, diffusion, score):
    return drift(x, s) - 0.5 * diffusion(s)[:, None] * score(x, s)


def pf_no_f(x, s, drift, diffusion, score):
    return -0.5 * diffusion(s)[:, None] ** 2 * score(x, s)


def pf_half_f(x, s, drift, diffusion, score):
    return 0.5 * (drift(x, s) - diffusion(s)[:, None] ** 2 * score(x, s))


def pf_flow_time(x, s, drift, diffusion, score):
    r = 1 - s  # converts to flow time, which 4.1 does not ask for
    return drift(x, r) - 0.5 * diffusion(r)[:, None] ** 2 * score(x, r)


# ---- 4.2 Euler-Maruyama step
def em_alt(x, t, dt, drift, diffusion, noise):
    increment = noise * dt**0.5  # a Brownian increment dW
    return x + dt * drift(x, t) + diffusion(t).unsqueeze(-1) * increment


def em_float_t(x, t, dt, drift, diffusion, noise):
    g = diffusion(t).reshape(-1, 1)
    return torch.addcmul(x + drift(x, t) * dt, g, noise, value=math.sqrt(dt))


def em_noise_twice(x, t, dt, drift, diffusion, noise):
    sigma = diffusion(t)[:, None] * noise  # "sigma * randn" inside the diffusion coefficient ...
    return x + drift(x, t) * dt + sigma * math.sqrt(dt) * noise  # ... and again in the step


def em_fresh_randn(x, t, dt, drift, diffusion, noise):
    sigma = diffusion(t)[:, None] * torch.randn_like(x)
    return x + drift(x, t) * dt + sigma * math.sqrt(dt) * noise


def em_dt_not_sqrt(x, t, dt, drift, diffusion, noise):
    return x + drift(x, t) * dt + diffusion(t)[:, None] * dt * noise


def em_no_sqrt_dt(x, t, dt, drift, diffusion, noise):
    return x + drift(x, t) * dt + diffusion(t)[:, None] * noise


def em_g_squared(x, t, dt, drift, diffusion, noise):
    return x + drift(x, t) * dt + diffusion(t)[:, None] ** 2 * math.sqrt(dt) * noise


def em_no_dt_on_drift(x, t, dt, drift, diffusion, noise):
    return x + drift(x, t) + diffusion(t)[:, None] * math.sqrt(dt) * noise


# ---- 4.3 exact score of a noised mixture
def score_autograd(x, means, stds, weights, a, b):
    x = x.detach().clone().requires_grad_(True)
    var = a**2 * stds**2 + b**2
    sq = ((x[:, None, :] - a * means[None]) ** 2).sum(-1)
    logp = torch.logsumexp(torch.log(weights / weights.sum()) - sq / (2 * var) - torch.log(2 * math.pi * var), 1)
    return torch.autograd.grad(logp.sum(), x)[0]


def score_loop(x, means, stds, weights, a, b):
    logs, comps = [], []
    for m, sd, w in zip(means, stds, weights):
        v = a**2 * sd**2 + b**2
        logs.append(torch.log(w) - ((x - a * m) ** 2).sum(1) / (2 * v) - torch.log(v))
        comps.append((a * m - x) / v)
    r = torch.softmax(torch.stack(logs, 1), 1)
    return sum(r[:, k, None] * comps[k] for k in range(len(comps)))


def score_exp(x, means, stds, weights, a, b):  # densities before normalising: 0/0 far away (issue 20)
    v = a**2 * stds**2 + b**2
    diff = a * means[None] - x[:, None, :]
    dens = weights * torch.exp(-(diff**2).sum(-1) / (2 * v)) / v
    r = dens / dens.sum(1, keepdim=True)
    return (r[:, :, None] * diff / v[None, :, None]).sum(1)


def score_unscaled_means(x, means, stds, weights, a, b):
    return mixtures.mixture_score(x, means, stds, weights, 1.0, b)


def score_prior_weights(x, means, stds, weights, a, b):
    v = a**2 * stds**2 + b**2
    return (weights[None, :, None] * (a * means[None] - x[:, None, :]) / v[None, :, None]).sum(1)


def score_no_weights(x, means, stds, weights, a, b):
    return mixtures.mixture_score(x, means, stds, torch.ones_like(weights), a, b)


def score_negated(x, means, stds, weights, a, b):
    return -mixtures.mixture_score(x, means, stds, weights, a, b)


def score_no_log_var(x, means, stds, weights, a, b):
    v = a**2 * stds**2 + b**2
    diff = a * means[None] - x[:, None, :]
    r = torch.softmax(torch.log(weights) - (diff**2).sum(-1) / (2 * v), dim=1)  # forgot -(d/2) log v_k
    return (r[:, :, None] * diff / v[None, :, None]).sum(1)


def score_softmax_over_points(x, means, stds, weights, a, b):
    v = a**2 * stds**2 + b**2
    diff = a * means[None] - x[:, None, :]
    r = torch.softmax(torch.log(weights) - (diff**2).sum(-1) / (2 * v) - torch.log(v), dim=0)
    return (r[:, :, None] * diff / v[None, :, None]).sum(1)


# ---- 4.4 the time flip
def flip_alt(x, t, drift, diffusion, score):
    from utils.sde import diffusion_time
    from utils.samplers import probability_flow_drift
    s = diffusion_time(t)
    g2 = diffusion(s).pow(2).unsqueeze(-1)
    ode = -probability_flow_drift(x, s, drift, diffusion, score)
    return ode + 0.5 * g2 * score(x, s), ode  # the SDE drift is the ODE field plus another g^2 score / 2


def flip_expanded(x, t, drift, diffusion, score):
    s = 1.0 - t
    f, g, sc = drift(x, s), diffusion(s).reshape(-1, 1), score(x, s)
    return [-f + g * g * sc, -f + g * g * sc / 2]  # a list is fine too


def flip_swapped_convention(x, t, drift, diffusion, score):
    g2 = diffusion(t)[:, None] ** 2
    return -(drift(x, t) - g2 * score(x, t)), -(drift(x, t) - 0.5 * g2 * score(x, t))


def flip_no_sign_change(x, t, drift, diffusion, score):
    s = 1 - t
    g2 = diffusion(s)[:, None] ** 2
    return drift(x, s) - g2 * score(x, s), drift(x, s) - 0.5 * g2 * score(x, s)


def flip_no_half(x, t, drift, diffusion, score):
    s = 1 - t
    g2 = diffusion(s)[:, None] ** 2
    sde = -(drift(x, s) - g2 * score(x, s))
    return sde, sde


def flip_only_f(x, t, drift, diffusion, score):
    s = 1 - t
    g2 = diffusion(s)[:, None] ** 2
    return -drift(x, s) - g2 * score(x, s), -drift(x, s) - 0.5 * g2 * score(x, s)


def flip_wrong_order(x, t, drift, diffusion, score):
    sde, ode = samplers.flow_time_drifts(x, t, drift, diffusion, score)
    return ode, sde


def flip_half_for_sde(x, t, drift, diffusion, score):
    _, ode = samplers.flow_time_drifts(x, t, drift, diffusion, score)
    return ode, ode


def flip_g_not_squared_in_ode(x, t, drift, diffusion, score):
    s = 1 - t
    g = diffusion(s)[:, None]
    return -(drift(x, s) - g**2 * score(x, s)), -(drift(x, s) - 0.5 * g * score(x, s))


def flip_g_not_squared_in_sde(x, t, drift, diffusion, score):  # issue 20: g where g^2 belongs
    s = 1 - t
    g = diffusion(s)[:, None]
    return -(drift(x, s) - g * score(x, s)), -(drift(x, s) - 0.5 * g**2 * score(x, s))


def flip_g_at_flow_time(x, t, drift, diffusion, score):  # issue 20: g at the flow time
    s = 1 - t
    g2 = diffusion(t)[:, None] ** 2
    return -(drift(x, s) - g2 * score(x, s)), -(drift(x, s) - 0.5 * g2 * score(x, s))


def flip_g_at_flow_time_ode_only(x, t, drift, diffusion, score):
    sde, _ = samplers.flow_time_drifts(x, t, drift, diffusion, score)
    s = 1 - t
    return sde, -(drift(x, s) - 0.5 * diffusion(t)[:, None] ** 2 * score(x, s))


def flip_one_tensor(x, t, drift, diffusion, score):
    return samplers.flow_time_drifts(x, t, drift, diffusion, score)[1]


def dsm_target_b_squared(score, x_data, s, noise, sde):
    a, b = (v[:, None] for v in sde.kernel(s))
    return ((b * score(a * x_data + b * noise, s) + noise / b) ** 2).sum(1).mean()


def dsm_weight_a(score, x_data, s, noise, sde):
    a, b = (v[:, None] for v in sde.kernel(s))
    return ((a * score(a * x_data + b * noise, s) + noise) ** 2).sum(1).mean()


# ---- 4.5 DSM loss
def dsm_alt(score, x_data, s, noise, sde):
    a, b = sde.kernel(s)
    xs = a.unsqueeze(1) * x_data + b.unsqueeze(1) * noise
    target = -noise / b[:, None]
    return (b[:, None] ** 2 * (score(xs, s) - target) ** 2).sum(dim=1).mean()


def dsm_mean_everything(score, x_data, s, noise, sde):
    a, b = sde.kernel(s)
    xs = a[:, None] * x_data + b[:, None] * noise
    return ((b[:, None] * score(xs, s) + noise) ** 2).mean()


def dsm_unweighted(score, x_data, s, noise, sde):
    a, b = sde.kernel(s)
    xs = a[:, None] * x_data + b[:, None] * noise
    return ((score(xs, s) + noise / b[:, None]) ** 2).sum(1).mean()


def dsm_wrong_sign(score, x_data, s, noise, sde):
    a, b = sde.kernel(s)
    xs = a[:, None] * x_data + b[:, None] * noise
    return ((b[:, None] * score(xs, s) - noise) ** 2).sum(1).mean()


def dsm_clean_input(score, x_data, s, noise, sde):
    _, b = sde.kernel(s)
    return ((b[:, None] * score(x_data, s) + noise) ** 2).sum(1).mean()


def dsm_detached(score, x_data, s, noise, sde):
    a, b = sde.kernel(s)
    xs = a[:, None] * x_data + b[:, None] * noise
    return ((b[:, None] * score(xs, s).detach() + noise) ** 2).sum(1).mean()


CORRECT = {
    "4.1": [samplers.probability_flow_drift, pf_alt],
    "4.2": [samplers.em_step, em_alt, em_float_t],
    "4.3": [mixtures.mixture_score, score_autograd, score_loop],
    "4.4": [samplers.flow_time_drifts, flip_alt, flip_expanded],
    "4.5": [score_matching.dsm_loss, dsm_alt],
}
WRONG = {
    "4.1": [(pf_reverse_sde, "reverse-time SDE"), (pf_plus, "wrong sign"), (pf_g_not_squared, "square"),
            (pf_no_f, "f(x, s) is missing"), (pf_flow_time, "stays in diffusion time"),
            (pf_half_f, "halved f too")],
    "4.2": [(em_noise_twice, "inject the noise twice"), (em_fresh_randn, "noise twice"),
            (em_dt_not_sqrt, "sqrt(dt)"), (em_no_sqrt_dt, "sqrt(dt)"), (em_g_squared, "not g^2"),
            (em_no_dt_on_drift, "multiply the drift by dt")],
    "4.3": [(score_unscaled_means, "scaled"), (score_prior_weights, "responsibilities"),
            (score_no_weights, "weights w_k are missing"), (score_negated, "sign"),
            (score_no_log_var, "normalising constant"), (score_softmax_over_points, "over the points"),
            (score_exp, "work in log space")],
    "4.4": [(flip_swapped_convention, "swapped the time convention"), (flip_no_sign_change, "wrong sign"),
            (flip_no_half, "factor 1/2 is missing"), (flip_only_f, "only f changed sign"),
            (flip_wrong_order, "wrong order"), (flip_half_for_sde, "full g^2 score"),
            (flip_g_not_squared_in_ode, "square the diffusion"), (flip_one_tensor, "return two tensors"),
            (flip_g_not_squared_in_sde, "multiplied by g where g^2 belongs"),
            (flip_g_at_flow_time, "g is evaluated at the flow time"),
            (flip_g_at_flow_time_ode_only, "g is evaluated at the flow time")],
    "4.5": [(dsm_mean_everything, "sum the squared error over coordinates"), (dsm_unweighted, "weighted by sigma_s^2"),
            (dsm_wrong_sign, "sign"), (dsm_clean_input, "clean data"), (dsm_detached, "detach"),
            (dsm_target_b_squared, "-noise / sigma_s^2"), (dsm_weight_a, "weighted with alpha_s")],
}

test_accepts, test_rejects = checkcases.parametrize_cases(CORRECT, WRONG)
