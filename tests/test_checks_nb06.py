"""Checks of notebook 06 accept correct answers written differently and reject plausible mistakes by name."""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from tests import checkcases
from utils import couplings, showdown
from utils.checks.nb06 import heun_step, straight_interpolant
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


def si_no_noise(x0, x1, t, sigma, eps):
    t = t[:, None]
    return (1 - t) * x0 + t * x1, x1 - x0


def si_noisy_target(x0, x1, t, sigma, eps):
    t = t[:, None]
    return (1 - t) * x0 + t * x1 + sigma * eps, x1 - x0 + sigma * eps


# ---- 6.2
def ot_alt(x0, x1):
    cost = ((x0[:, None, :] - x1[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost.numpy())
    return x0[rows], x1[cols]  # reorders both: the same pairs


def ot_reorder_x0(x0, x1):
    _, cols = linear_sum_assignment(torch.cdist(x0, x1).pow(2).numpy())
    return x0[torch.as_tensor(np.argsort(cols))], x1  # the inverse permutation: x1 keeps its order


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


def ot_sort_first_coordinate(x0, x1):
    return x0[x0[:, 0].argsort()], x1[x1[:, 0].argsort()]


def ot_sort_second_coordinate(x0, x1):  # sorting x1 too, then undoing: the same 1D pairing
    i0, i1 = x0[:, 1].argsort(), x1[:, 1].argsort()
    out = torch.empty_like(x0)
    out[i1] = x0[i0]
    return out, x1


def ot_cols_on_x0(x0, x1):
    _, cols = linear_sum_assignment(torch.cdist(x0, x1).pow(2).numpy())
    return x0[cols], x1


def ot_transposed_cost(x0, x1):
    rows, cols = linear_sum_assignment(torch.cdist(x1, x0).pow(2).numpy())
    return x0[rows], x1[cols]


def ot_maximised(x0, x1):
    rows, cols = linear_sum_assignment(-torch.cdist(x0, x1).pow(2).numpy())
    return x0[rows], x1[cols]


def ot_random_permutation(x0, x1):
    return x0[torch.as_tensor(np.random.default_rng(3).permutation(len(x0)))], x1


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


def _npe_variant(v_theta, x0, x1_data, num_steps, times=lambda k, dt: k * dt, coord=lambda v: (v**2).sum(1)):
    x, dt, energy = x0.clone(), 1.0 / num_steps, torch.zeros(len(x0), dtype=x0.dtype)
    for k in range(num_steps):
        v = v_theta(x, torch.full((len(x),), times(k, dt), dtype=x.dtype))
        energy = energy + coord(v) * dt
        x = x + dt * v
    w2sq = w2(x0, x1_data) ** 2
    return float(abs(energy.mean() - w2sq) / w2sq)


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


def npe_time_backwards(v_theta, x0, x1_data, num_steps):
    return _npe_variant(v_theta, x0, x1_data, num_steps, times=lambda k, dt: 1 - k * dt)


def npe_time_at_step_end(v_theta, x0, x1_data, num_steps):
    return _npe_variant(v_theta, x0, x1_data, num_steps, times=lambda k, dt: (k + 1) * dt)


def npe_time_frozen(v_theta, x0, x1_data, num_steps):
    return _npe_variant(v_theta, x0, x1_data, num_steps, times=lambda k, dt: 0.0)


def npe_rows_as_given(v_theta, x0, x1_data, num_steps):  # E_min from the pairing as given, not the best one
    n, dt = x0.shape[0], 1.0 / num_steps
    x, energy = x0, torch.zeros(n, dtype=x0.dtype)
    for k in range(num_steps):
        v = v_theta(x, torch.full((n,), k * dt, dtype=x0.dtype))
        energy, x = energy + (v**2).sum(1) * dt, x + dt * v
    least = ((x1_data - x0) ** 2).sum(1).mean()
    return float(abs(energy.mean() - least) / least)


def npe_mean_over_coordinates(v_theta, x0, x1_data, num_steps):
    return _npe_variant(v_theta, x0, x1_data, num_steps, coord=lambda v: (v**2).mean(1))


# ---- 6.4
def reflow_rk4(v_theta, x0, num_steps):
    with torch.no_grad():
        return x0, solve_ode(v_theta, x0, num_steps=num_steps, method="rk4").x


def reflow_loop(v_theta, x0, num_steps):
    x, dt = x0, 1.0 / num_steps
    for k in range(num_steps):
        x = x + dt * v_theta(x, k * dt)
    return x0, x


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


def reflow_time_at_step_end(v_theta, x0, num_steps):
    x, dt = x0, 1.0 / num_steps
    for k in range(num_steps):
        x = x + dt * v_theta(x, (k + 1) * dt)
    return x0, x


def reflow_one_step_too_many(v_theta, x0, num_steps):
    x, dt = x0, 1.0 / num_steps
    for k in range(num_steps + 1):
        x = x + dt * v_theta(x, k * dt)
    return x0, x


def reflow_default_steps(v_theta, x0, num_steps):
    return x0, solve_ode(v_theta, x0).x


def reflow_one_step_short(v_theta, x0, num_steps):
    x, dt = x0, 1.0 / num_steps
    for k in range(num_steps - 1):
        x = x + dt * v_theta(x, k * dt)
    return x0, x



# ---- 6.5
def heun_alt(v_theta, x, t, dt):
    n = x.shape[0]
    k1 = v_theta(x, torch.full((n,), t, dtype=x.dtype))
    k2 = v_theta(x + dt * k1, torch.full((n,), t + dt, dtype=x.dtype))
    return x + dt * (k1 + k2) / 2


def heun_predictor_corrector(v_theta, x, t, dt):
    k1 = v_theta(x, t)
    predicted = x + dt * k1
    return predicted + dt / 2 * (v_theta(predicted, t + dt) - k1)  # the same trapezoid, written as a correction


def heun_euler(v_theta, x, t, dt):
    k1 = v_theta(x, t)
    _ = v_theta(x + dt * k1, t + dt)  # computed, then forgotten
    return x + dt * k1


def heun_end_slope_only(v_theta, x, t, dt):
    k1 = v_theta(x, t)
    return x + dt * v_theta(x + dt * k1, t + dt)


def heun_no_half(v_theta, x, t, dt):
    k1 = v_theta(x, t)
    return x + dt * (k1 + v_theta(x + dt * k1, t + dt))


def heun_time_not_advanced(v_theta, x, t, dt):
    k1 = v_theta(x, t)
    return x + dt / 2 * (k1 + v_theta(x + dt * k1, t))


def heun_midpoint(v_theta, x, t, dt):
    k1 = v_theta(x, t)
    return x + dt * v_theta(x + dt / 2 * k1, t + dt / 2)


def heun_half_predictor(v_theta, x, t, dt):
    k1 = v_theta(x, t)
    return x + dt / 2 * (k1 + v_theta(x + dt / 2 * k1, t + dt))


def heun_half_way(v_theta, x, t, dt):
    k1 = v_theta(x, t)
    return x + dt / 2 * (k1 + v_theta(x + dt / 2 * k1, t + dt / 2))


def heun_from_predicted(v_theta, x, t, dt):
    k1 = v_theta(x, t)
    predicted = x + dt * k1
    return predicted + dt / 2 * (k1 + v_theta(predicted, t + dt))


def heun_three_calls(v_theta, x, t, dt):
    k1 = v_theta(x, t)
    k1_again = v_theta(x, t)
    return x + dt / 2 * (k1_again + v_theta(x + dt * k1, t + dt))


def si_row_t(x0, x1, t, sigma, eps):  # t of shape (n,) against (n, d): a raw broadcasting error before
    return (1 - t) * x0 + t * x1 + sigma * eps, x1 - x0


CORRECT = {
    "6.1": [straight_interpolant, si_alt],
    "6.2": [couplings.ot_couple, ot_alt, ot_reorder_x0],
    "6.3": [showdown.normalized_path_energy, npe_alt],
    "6.4": [showdown.reflow_pairs, reflow_rk4, reflow_loop],
    "6.5": [heun_step, heun_alt, heun_predictor_corrector],
}
WRONG = {
    "6.1": [(si_swapped, "time convention is swapped"), (si_from_xt, "whatever sigma is"),
            (si_sigma_squared, "standard deviation"), (si_no_noise, "noise term sigma * eps is missing"),
            (si_noisy_target, "target has no noise"), (si_row_t, "make t a column")],
    "6.2": [(ot_identity, "independent pairing"), (ot_distance_not_squared, "squared"),
            (ot_nearest, "exactly once"), (ot_greedy, "greedy pass"),
            (ot_sort_first_coordinate, "order of their first coordinate"),
            (ot_sort_second_coordinate, "order of their second coordinate"),
            (ot_cols_on_x0, "applied inverted"), (ot_transposed_cost, "applied inverted"),
            (ot_maximised, "maximised"), (ot_random_permutation, "not the one of least total squared")],
    "6.3": [(npe_no_abs, "absolute value"), (npe_not_normalised, "divide by w2^2"), (npe_no_dt, "multiply by dt"),
            (npe_w2_not_squared, "w2 squared"), (npe_time_backwards, "time runs backwards"),
            (npe_time_at_step_end, "end of each step"), (npe_time_frozen, "never advances"),
            (npe_mean_over_coordinates, "sum |v|^2 over the coordinates"), (npe_rows_as_given, "best pairing")],
    "6.4": [(reflow_one_step, "single euler step"), (reflow_backwards, "backwards"), (reflow_swapped, "wrong way round"),
            (reflow_shuffled, "reordered"), (reflow_time_at_step_end, "off by one step in time"),
            (reflow_one_step_too_many, "num_steps + 1 steps"), (reflow_default_steps, "took 100 steps"),
            (reflow_one_step_short, "one step short")],
    "6.5": [(heun_euler, "that is an euler step"), (heun_end_slope_only, "end slope alone"),
            (heun_no_half, "weights are 1/2"), (heun_time_not_advanced, "not at t."),
            (heun_midpoint, "midpoint step of notebook 03"), (heun_half_predictor, "full euler step"),
            (heun_half_way, "not half way"), (heun_from_predicted, "starts from x"),
            (heun_three_calls, "exactly twice")],
}

test_accepts, test_rejects = checkcases.parametrize_cases(CORRECT, WRONG)

