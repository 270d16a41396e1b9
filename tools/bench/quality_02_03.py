"""Notebooks 02 and 03 at full length: test NLL on the moons beside the exact floor.

The notebooks train briefly (02: RealNVP, 700 steps; 03: a CNF, 300 steps with two RK4 steps a
training step). Here the same models train longer, and each test NLL (5000 held-out points, nats per
point) is reported beside the floor, the NLL of the true moons distribution by quadrature
(``utils.flows.moons_log_prob``), and two ceilings: the base density N(0, I) (doing nothing) and a
Gaussian fit (the best affine flow). The CNF is scored with a finer solver (16 RK4 steps) than it
trained with, so that solver error cannot flatter it, and the cost of a CNF training step is given in
evaluations of the network. A third row trains the CNF for exactly RealNVP's wall-clock time, the only
fair way to rank the two (in 2D their steps cost about the same; notebook 03 does not rank them).
"""
from __future__ import annotations

import math
import time

import torch

from utils.datasets import moons
from utils.divergence import ode_log_likelihood
from utils.flows import flow_nll, moons_log_prob, realnvp
from utils.models import TimeMLP
from utils.runtime import seed_everything

FLOW_STEPS, CNF_STEPS = 4000, 1500


def _train(params, loss_fn, num_steps: int, lr: float, x_train: torch.Tensor, g: torch.Generator,
           batch_size: int = 256, seconds: float | None = None) -> tuple[float, int]:
    """Adam with cosine decay over ``num_steps``; with ``seconds``, stop once that wall time is spent.
    Returns (seconds spent, steps taken)."""
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, num_steps)
    start, steps = time.perf_counter(), 0
    for _ in range(num_steps):
        if seconds is not None and time.perf_counter() - start >= seconds:
            break
        loss = loss_fn(x_train[torch.randint(0, len(x_train), (batch_size,), generator=g)])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        steps += 1
    return time.perf_counter() - start, steps


def run(flow_steps: int = FLOW_STEPS, cnf_steps: int = CNF_STEPS) -> list[dict]:
    """In float64, as notebooks 02 and 03 train (the same numbers on every CPU)."""
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return _run(flow_steps, cnf_steps)
    finally:
        torch.set_default_dtype(dtype)


def _run(flow_steps: int, cnf_steps: int) -> list[dict]:
    torch.set_num_threads(1)
    x_train, x_test = moons(4000, seed=1), moons(5000, seed=2)
    floor = -moons_log_prob(x_test).mean().item()
    gauss = torch.distributions.MultivariateNormal(x_train.mean(0), torch.cov(x_train.T))
    rows = [dict(name="moons: base N(0, I), doing nothing, test NLL", value=-(-0.5 * (x_test ** 2).sum(1)
                 - math.log(2 * math.pi)).mean().item(), target=None, floor=floor, note="the ceiling"),
            dict(name="moons: Gaussian fit (the best affine flow), test NLL", value=-gauss.log_prob(x_test).mean().item(),
                 target=None, floor=floor, note="the affine baseline to beat")]

    g = seed_everything(0)
    flow = realnvp(2, num_layers=8, hidden=64)
    seconds, _ = _train(flow.parameters(), lambda x: flow_nll(flow, x), flow_steps, 5e-3, x_train, g)
    with torch.no_grad():
        nll = flow_nll(flow, x_test).item()
    rows.append(dict(name=f"02 RealNVP (8 couplings, 64 hidden), {flow_steps} steps, test NLL", value=nll,
                     target="close to the floor", floor=floor, note=f"{seconds:.0f} s of training"))

    flow_seconds = seconds
    for budget in (None, flow_seconds):
        g = seed_everything(0)
        v_theta = TimeMLP(dim=2, hidden=64, depth=3, num_freqs=0)
        loss = lambda x: -ode_log_likelihood(v_theta, x, num_steps=4, method="rk4").mean()  # noqa: E731
        seconds, steps = _train(v_theta.parameters(), loss, cnf_steps, 2e-3, x_train, g, seconds=budget)
        with torch.no_grad():
            nll = -ode_log_likelihood(v_theta, x_test, num_steps=16).mean().item()
        label = f"{cnf_steps} steps" if budget is None else f"RealNVP's wall time ({steps} steps)"
        rows.append(dict(name=f"03 CNF (3x64 MLP), {label} of max likelihood, test NLL (16 RK4 steps)",
                         value=nll, target="below the Gaussian; far from the floor in this budget", floor=floor,
                         note=f"{seconds:.0f} s of training; 16 evaluations and 32 backward passes a step"))
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
