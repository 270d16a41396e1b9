"""Checks of notebook 06 accept correct answers written differently and reject plausible mistakes."""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from tests import checkcases
from utils import couplings, showdown
from utils.checks.nb06 import straight_interpolant
from utils.metrics import w2
from utils.solvers import solve_ode


# ---- 6.1
def si_alt(x0, x1, t, sigma, eps):
    t = t.unsqueeze(-1)
    return x0 + t * (x1 - x0) + sigma * eps, -(x0 - x1)


def si_swapped(x0, x1, t, sigma, eps):
    t = t[:, None]
    return t * x0 + (1 - t) * x1 + sigma * eps, x0 - x1


def si_from_xt(x0, x1, t, sigma, eps):
    t = t[:, None]
    xt = (1 - t) * x0 + t * x1 + sigma * eps
    return xt, (x1 - xt) / (1 - t)


def si_sigma_squared(x0, x1, t, sigma, eps):
    t = t[:, None]
    return (1 - t) * x0 + t * x1 + sigma**2 * eps, x1 - x0


# ---- 6.2
def ot_alt(x0, x1):
    cost = ((x0[:, None, :] - x1[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost.numpy())
    return x0[rows], x1[cols]  # reorders both: the same pairs


def ot_identity(x0, x1):
    return x0, x1


def ot_distance_not_squared(x0, x1):
    rows, cols = linear_sum_assignment(torch.cdist(x0, x1).numpy())
    return x0[rows], x1[cols]


def ot_nearest(x0, x1):
    return x0[torch.cdist(x1, x0).argmin(1)], x1


def ot_greedy(x0, x1):
    free, order = list(range(len(x0))), []
    for j in range(len(x1)):
        d = ((x0[free] - x1[j]) ** 2).sum(1)
        order.append(free.pop(int(d.argmin())))
    return x0[order], x1


# ---- 6.3
def npe_alt(v_theta, x0, x1_data, num_steps):
    x, dt, energy = x0.clone(), 1.0 / num_steps, torch.zeros(len(x0), dtype=x0.dtype)
    for k in range(num_steps):
        v = v_theta(x, torch.full((len(x),), k * dt, dtype=x.dtype))
        energy += (v**2).sum(1) * dt
        x = x + dt * v
    cost = torch.cdist(x0, x1_data).pow(2).numpy()
    r, c = linear_sum_assignment(cost)
    w2sq = cost[r, c].mean()
    return float(abs(energy.mean().item() - w2sq) / w2sq)


def npe_no_abs(v_theta, x0, x1_data, num_steps):
    pe, _ = showdown.path_energy(v_theta, x0, num_steps)
    return (pe - w2(x0, x1_data) ** 2) / w2(x0, x1_data) ** 2


def npe_not_normalised(v_theta, x0, x1_data, num_steps):
    pe, _ = showdown.path_energy(v_theta, x0, num_steps)
    return abs(pe - w2(x0, x1_data) ** 2)


def npe_no_dt(v_theta, x0, x1_data, num_steps):
    pe, _ = showdown.path_energy(v_theta, x0, num_steps)
    return abs(pe * num_steps - w2(x0, x1_data) ** 2) / w2(x0, x1_data) ** 2


def npe_w2_not_squared(v_theta, x0, x1_data, num_steps):
    pe, _ = showdown.path_energy(v_theta, x0, num_steps)
    return abs(pe - w2(x0, x1_data)) / w2(x0, x1_data)


# ---- 6.4
def reflow_rk4(v_theta, x0, num_steps):
    with torch.no_grad():
        return x0, solve_ode(v_theta, x0, num_steps=num_steps, method="rk4").x


def reflow_one_step(v_theta, x0, num_steps):
    return x0, x0 + v_theta(x0, torch.zeros(len(x0), dtype=x0.dtype))


def reflow_backwards(v_theta, x0, num_steps):
    return x0, solve_ode(v_theta, x0, t0=1.0, t1=0.0, num_steps=num_steps).x


def reflow_swapped(v_theta, x0, num_steps):
    return showdown.reflow_pairs(v_theta, x0, num_steps)[::-1]


def reflow_shuffled(v_theta, x0, num_steps):
    x0_, x1 = showdown.reflow_pairs(v_theta, x0, num_steps)
    perm = torch.as_tensor(np.random.default_rng(0).permutation(len(x0)))
    return x0_[perm], x1


CORRECT = {
    "6.1": [straight_interpolant, si_alt],
    "6.2": [couplings.ot_couple, ot_alt],
    "6.3": [showdown.normalized_path_energy, npe_alt],
    "6.4": [showdown.reflow_pairs, reflow_rk4],
}
WRONG = {
    "6.1": [(si_swapped, "time convention is swapped"), (si_from_xt, "whatever sigma is"),
            (si_sigma_squared, "standard deviation")],
    "6.2": [(ot_identity, "independent pairing"), (ot_distance_not_squared, "squared"),
            (ot_nearest, "exactly once"), (ot_greedy, "not optimal")],
    "6.3": [(npe_no_abs, "absolute value"), (npe_not_normalised, "divide by w2^2"), (npe_no_dt, "dt"),
            (npe_w2_not_squared, "w2 squared")],
    "6.4": [(reflow_one_step, "single euler step"), (reflow_backwards, "backwards"), (reflow_swapped, "wrong way round"),
            (reflow_shuffled, "reordered")],
}

test_accepts, test_rejects = checkcases.parametrize_cases(CORRECT, WRONG)
