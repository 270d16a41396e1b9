"""Checks of notebook 03 accept correct answers written differently and reject plausible mistakes."""
from __future__ import annotations

import math

import torch

from tests import checkcases
from utils import divergence as dv
from utils import solvers
from utils.checks.nb03 import _rk4_wrong


# ---- 3.1
def euler_tensor_time(u, x, t, dt):
    return torch.addcmul(x, torch.full_like(x, dt), u(x, x.new_full((x.shape[0],), t)))


def euler_end_time(u, x, t, dt):
    return x + dt * u(x, t + dt)


def euler_increment(u, x, t, dt):
    return dt * u(x, t)


def euler_no_dt(u, x, t, dt):
    return x + u(x, t)


# ---- 3.2
def rk4_loop(u, x, t, dt):
    ks, y = [], x
    for c, w in ((0.0, 0.0), (0.5, 0.5), (0.5, 0.5), (1.0, 1.0)):
        y = x + w * dt * ks[-1] if ks else x
        ks.append(u(y, torch.full((x.shape[0], 1), t + c * dt, dtype=x.dtype)))
    return x + dt * (ks[0] + 2 * ks[1] + 2 * ks[2] + ks[3]) / 6


def rk4_euler(u, x, t, dt):
    return x + dt * u(x, t)


def rk4_quarter(u, x, t, dt):
    return _rk4_wrong(u, x, t, dt, "quarter")


def rk4_stale_time(u, x, t, dt):
    return _rk4_wrong(u, x, t, dt, "stale_time")


def rk4_k1_everywhere(u, x, t, dt):
    return _rk4_wrong(u, x, t, dt, "k1_everywhere")


def rk4_full_steps(u, x, t, dt):
    return _rk4_wrong(u, x, t, dt, "full_steps")


# ---- 3.3
def div_jacrev(u, x, t):
    def single(xi, ti):
        return u(xi[None], ti[None])[0]
    J = torch.func.vmap(torch.func.jacrev(single))(x, t)
    return J.diagonal(dim1=1, dim2=2).sum(-1)


def div_loop_leaf(u, x, t):
    x = x.detach().requires_grad_(True)
    v = u(x, t)
    total = 0
    for i in range(x.shape[1]):
        e = torch.zeros_like(v)
        e[:, i] = 1
        total = total + (torch.autograd.grad(v, x, e, create_graph=True)[0] * e).sum(1)
    return total


def div_all_entries(u, x, t):
    x = x.detach().requires_grad_(True)
    return torch.autograd.grad(u(x, t).sum(), x, create_graph=True)[0].sum(-1)


def div_no_graph(u, x, t):
    x = x.detach().requires_grad_(True)
    v = u(x, t)
    return sum(torch.autograd.grad(v[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(x.shape[1]))


def div_not_summed(u, x, t):
    x = x.detach().requires_grad_(True)
    v = u(x, t)
    return torch.stack([torch.autograd.grad(v[:, i].sum(), x, create_graph=True)[0][:, i]
                        for i in range(x.shape[1])], 1)


# ---- 3.4
def hutch_gaussian_batched(u, x, t, num_probes, generator):
    x = x.detach().requires_grad_(True)
    v = u(x, t)
    eps = torch.randn((num_probes,) + x.shape, generator=generator, dtype=x.dtype)
    est = [(torch.autograd.grad(v, x, e, retain_graph=True)[0] * e).sum(-1) for e in eps]
    return torch.stack(est).mean(0)


def hutch_jvp(u, x, t, num_probes, generator):
    total = 0
    for _ in range(num_probes):
        eps = torch.randint(0, 2, x.shape, generator=generator).to(x.dtype) * 2 - 1
        _, Je = torch.func.jvp(lambda y: u(y, t), (x,), (eps,))
        total = total + (eps * Je).sum(-1)
    return total / num_probes


def hutch_global_rng(u, x, t, num_probes, generator):
    return dv.divergence_hutchinson(u, x, t, num_probes, generator=None)


def hutch_sum(u, x, t, num_probes, generator):
    return num_probes * dv.divergence_hutchinson(u, x, t, num_probes, generator)


def hutch_no_second_eps(u, x, t, num_probes, generator):
    x = x.detach().requires_grad_(True)
    v = u(x, t)
    total = 0
    for _ in range(num_probes):
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        total = total + torch.autograd.grad(v, x, eps, retain_graph=True)[0].sum(-1)
    return total / num_probes


def hutch_uniform(u, x, t, num_probes, generator):
    x = x.detach().requires_grad_(True)
    v = u(x, t)
    total = 0
    for _ in range(num_probes):
        eps = torch.rand(x.shape, generator=generator, dtype=x.dtype)
        total = total + (torch.autograd.grad(v, x, eps, retain_graph=True)[0] * eps).sum(-1)
    return total / num_probes


def hutch_exact(u, x, t, num_probes, generator):
    return dv.divergence_exact(u, x, t)


# ---- 3.5
def loglik_by_hand(u, x1, num_steps):
    """RK4 backwards with the student's own loop, log p0 from torch.distributions."""
    d = x1.shape[1]

    def aug(state, t):
        x = state[:, :d].detach().requires_grad_(True)
        with torch.enable_grad():
            v = u(x, t)
            div = sum(torch.autograd.grad(v[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(d))
        return torch.cat([v.detach(), div.detach()[:, None]], 1)

    state = torch.cat([x1, torch.zeros(len(x1), 1, dtype=x1.dtype)], 1)
    for k in range(num_steps):
        state = solvers.rk4_step(aug, state, 1.0 - k / num_steps, -1.0 / num_steps)
    base = torch.distributions.Normal(torch.zeros(d, dtype=x1.dtype), 1.0).log_prob(state[:, :d]).sum(-1)
    return base + state[:, d]


def loglik_dopri5(u, x1, num_steps):
    return dv.ode_log_likelihood(u, x1, method="dopri5", rtol=1e-8, atol=1e-8)


def _base(z):
    return -0.5 * (z**2).sum(-1) - math.log(2 * math.pi)


def loglik_wrong_sign(u, x1, num_steps):
    logp, x0 = dv.ode_log_likelihood(u, x1, num_steps, return_x0=True)
    return 2 * _base(x0) - logp


def loglik_no_div(u, x1, num_steps):
    return _base(solvers.solve_ode(u, x1, 1.0, 0.0, num_steps=num_steps, method="rk4").x)


def loglik_forward(u, x1, num_steps):
    state = torch.cat([x1, torch.zeros(len(x1), 1, dtype=x1.dtype)], 1)
    out = solvers.solve_ode(dv.augmented_field(u), state, 0.0, 1.0, num_steps=num_steps, method="rk4").x
    return _base(out[:, :2]) - out[:, 2]


def loglik_euler(u, x1, num_steps):
    return dv.ode_log_likelihood(u, x1, num_steps, method="euler")


CORRECT = {
    "3.1": [solvers.euler_step, euler_tensor_time],
    "3.2": [solvers.rk4_step, rk4_loop],
    "3.3": [dv.divergence_exact, div_jacrev, div_loop_leaf],
    "3.4": [dv.divergence_hutchinson, hutch_gaussian_batched, hutch_jvp],
    "3.5": [dv.ode_log_likelihood, loglik_by_hand, loglik_dopri5],
}
WRONG = {
    "3.1": [(euler_end_time, "end of the step"), (euler_increment, "increment"), (euler_no_dt, "forgot dt")],
    "3.2": [(rk4_euler, "Euler step"), (rk4_quarter, "(1, 2, 2, 1) / 6"), (rk4_stale_time, "t + dt/2"),
            (rk4_k1_everywhere, "previous one"), (rk4_full_steps, "half a step")],
    "3.3": [(div_all_entries, "every entry"), (div_no_graph, "create_graph"),
            (div_not_summed, "sum over the last dimension")],
    "3.4": [(hutch_global_rng, "generator"), (hutch_sum, "divide by num_probes"),
            (hutch_no_second_eps, "multiplying by eps"), (hutch_uniform, "zero mean"),
            (hutch_exact, "exact computation")],
    "3.5": [(loglik_wrong_sign, "wrong sign of the divergence"), (loglik_no_div, "missing"),
            (loglik_forward, "backwards"), (loglik_euler, "wrong value")],
}

test_accepts, test_rejects = checkcases.parametrize_cases(CORRECT, WRONG)
