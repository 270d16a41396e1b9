"""Checks of notebook 05 accept correct answers written differently and reject plausible mistakes."""
from __future__ import annotations

import torch

from tests import checkcases
from utils import cfm, paths
from utils.checks.nb05 import ot_mean_std


# ---- 5.1
def ms_alt(x1, t, sigma_min):
    t = t.reshape(-1)
    return x1 * t.unsqueeze(1), 1 - t * (1 - sigma_min)  # sigma as (n,): accepted


def ms_swapped(x1, t, sigma_min):
    t = t[:, None]
    return (1 - t) * x1, 1 - (1 - sigma_min) * (1 - t)


def ms_no_sigma_min(x1, t, sigma_min):
    return t[:, None] * x1, 1 - t[:, None]


def ms_variance(x1, t, sigma_min):
    return t[:, None] * x1, (1 - (1 - sigma_min) * t[:, None]) ** 2


# ---- 5.2
def cv_alt(xt, mu, sigma, dmu, dsigma):
    x0 = (xt - mu) / sigma  # invert the flow, then differentiate psi_t(x0) = mu + sigma x0 in t
    return dmu + dsigma * x0


def cv_no_divide(xt, mu, sigma, dmu, dsigma):
    return dsigma * (xt - mu) + dmu


def cv_no_dmu(xt, mu, sigma, dmu, dsigma):
    return dsigma / sigma * (xt - mu)


def cv_upside_down(xt, mu, sigma, dmu, dsigma):
    return sigma / dsigma * (xt - mu) + dmu


# ---- 5.3
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


# ---- 5.4
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


def _finish(v_theta, optimizer, path, x0, x1, t):
    loss = cfm.cfm_loss(v_theta, path, x0, x1, t)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


CORRECT = {
    "5.1": [ot_mean_std, ms_alt],
    "5.2": [paths.gaussian_conditional_velocity, cv_alt],
    "5.3": [cfm.cfm_loss, loss_alt],
    "5.4": [cfm.training_step, step_alt],
}
WRONG = {
    "5.1": [(ms_swapped, "time convention is swapped"), (ms_no_sigma_min, "sigma_min"), (ms_variance, "variance")],
    "5.2": [(cv_no_divide, "divide by sigma_t"), (cv_no_dmu, "mu_t' is missing"), (cv_upside_down, "upside down")],
    "5.3": [(loss_fed_x1, "fed x1 instead of xt"), (loss_swapped_time, "time convention is swapped"),
            (loss_straight_target, "sigma_min = 0.1"), (loss_item, "as a tensor"), (loss_summed, "do not sum")],
    "5.4": [(step_fed_x1, "fed x1 instead of xt"), (step_swapped, "time convention is swapped"),
            (step_no_zero_grad, "zero_grad"), (step_no_step, "optimizer.step()"), (step_one_time, "same time"),
            (step_straight_target, "conditional field")],
}

test_accepts, test_rejects = checkcases.parametrize_cases(CORRECT, WRONG)
