"""Samplers of a diffusion model: the reverse SDE and the probability flow ODE (taught in notebook 04, used in 06).

x0 is noise, as everywhere in the course; the samplers return samples at flow time 1
(see ``utils.sde`` for the two time conventions):

    score = target.score_fn(sde)                               # exact score(x, s) (utils.mixtures)
    sde_out = sample_reverse_sde(sde, score, x0, num_steps=100, generator=g)   # Euler-Maruyama
    ode_out = sample_probability_flow(sde, score, x0, num_steps=10, method="rk4")
    u = probability_flow_field(sde, score)                     # u(x, t) for utils.solvers.solve_ode
    sde_drift, ode_field = flow_time_drifts(x, t, sde.drift, sde.diffusion, score)   # both, in flow time

Both return a :class:`~utils.solvers.ODESolution` (x, nfe, times in flow time, path).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .errors import InputError, check_points
from .sde import Score, _SDE, _as_times, diffusion_time
from .solvers import ODESolution, solve_ode

__all__ = ["reverse_sde_drift", "probability_flow_drift", "probability_flow_field", "flow_time_drifts",
           "em_step", "sample_reverse_sde", "sample_probability_flow"]


def reverse_sde_drift(sde: _SDE, score: Score, x: torch.Tensor, s) -> torch.Tensor:
    """Drift of the reverse-time SDE in diffusion time (Anderson 1982): f - g^2 score."""
    s = _as_times(s, x)
    return sde.drift(x, s) - (sde.diffusion(s) ** 2)[:, None] * score(x, s)


def probability_flow_drift(x: torch.Tensor, s, drift: Callable, diffusion: Callable, score: Score) -> torch.Tensor:
    """dx/ds of the probability flow ODE: f(x, s) - g(s)^2 score(x, s) / 2 (Song et al. 2021)."""
    s = _as_times(s, x)
    return drift(x, s) - 0.5 * (diffusion(s) ** 2)[:, None] * score(x, s)


def probability_flow_field(sde: _SDE, score: Score) -> Callable:
    """The probability flow as a field u(x, t) in FLOW time, for ``utils.solvers.solve_ode`` from t=0 to 1.

    u(x, t) = -[f(x, s) - g(s)^2 score(x, s) / 2] at s = diffusion_time(t): the minus because dt = -ds.
    Times just outside [0, 1], which adaptive solvers probe when choosing a first step, are clamped.
    """
    def u(x, t):
        s = diffusion_time(_as_times(t, x)).clamp(0.0, 1.0)
        return -probability_flow_drift(x, s, sde.drift, sde.diffusion, score)
    return u


def flow_time_drifts(x: torch.Tensor, t, drift: Callable, diffusion: Callable,
                     score: Score) -> tuple[torch.Tensor, torch.Tensor]:
    """The reverse SDE's drift and the probability flow's field in FLOW time t (exercise 4.4's reference).

    ``drift(x, s)``, ``diffusion(s)`` and ``score(x, s)`` are the forward SDE's, in diffusion time s.
    At s = diffusion_time(t), and with dt = -ds, both drifts change sign:

        reverse SDE:       dx = -[f(x, s) - g(s)^2 score(x, s)] dt + g(s) dW
        probability flow:  dx/dt = -[f(x, s) - g(s)^2 score(x, s) / 2]

    The Brownian term keeps its form (-dW is again a Brownian increment). Returns both drifts, (n, d) each.
    """
    s = diffusion_time(_as_times(t, x))
    g2 = (diffusion(s) ** 2)[:, None]
    f, sc = drift(x, s), score(x, s)
    return -(f - g2 * sc), -(f - 0.5 * g2 * sc)


def em_step(x: torch.Tensor, t, dt: float, drift: Callable, diffusion: Callable, noise: torch.Tensor) -> torch.Tensor:
    """One Euler-Maruyama step of dx = drift(x, t) dt + diffusion(t) dW: the noise is given, N(0, I).

    x + drift(x, t) dt + diffusion(t) sqrt(dt) noise. Works in any time variable (dt > 0).
    """
    t = _as_times(t, x)
    return x + drift(x, t) * dt + diffusion(t)[:, None] * math.sqrt(dt) * noise


def sample_reverse_sde(sde: _SDE, score: Score, x0: torch.Tensor, num_steps: int = 1000,
                       generator: torch.Generator | None = None, return_path: bool = False,
                       noise_last_step: bool = False) -> ODESolution:
    """Sample by Euler-Maruyama on the reverse-time SDE, from noise x0 (flow t=0) to data (flow t=1).

    In flow time the reverse SDE reads dx = [-f(x, s) + g(s)^2 score(x, s)] dt + g(s) dW with s = 1 - t.
    One score evaluation per step (nfe = num_steps). As in DDPM and Song et al., the last step adds
    no noise unless ``noise_last_step``. ``generator`` seeds the Brownian increments.
    """
    check_points(x0, "x0")
    if not isinstance(num_steps, int) or num_steps < 1:
        raise InputError(f"`num_steps` must be a positive integer, got {num_steps!r}.")
    dt = 1.0 / num_steps
    times = torch.linspace(0.0, 1.0, num_steps + 1, dtype=x0.dtype)
    calls = [0]

    def counted(x, s):
        calls[0] += 1
        return score(x, s)

    drift = lambda x, t: -reverse_sde_drift(sde, counted, x, diffusion_time(t))  # noqa: E731
    diffusion = lambda t: sde.diffusion(diffusion_time(t)).to(x0.dtype)  # noqa: E731
    x, path = x0, [x0] if return_path else None
    for k in range(num_steps):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        if k == num_steps - 1 and not noise_last_step:
            noise = torch.zeros_like(noise)
        x = em_step(x, k * dt, dt, drift, diffusion, noise)
        if path is not None:
            path.append(x)
    return ODESolution(x, calls[0], times, torch.stack(path) if path is not None else None)


def sample_probability_flow(sde: _SDE, score: Score, x0: torch.Tensor, num_steps: int = 100,
                            method: str = "euler", return_path: bool = False, rtol: float = 1e-5,
                            atol: float = 1e-5) -> ODESolution:
    """Sample by solving the probability flow ODE from noise x0 (flow t=0) to data (flow t=1).

    Any method of ``utils.solvers.solve_ode`` ("euler", "midpoint", "rk4", "dopri5"); nfe counts
    score evaluations.
    """
    return solve_ode(probability_flow_field(sde, score), x0, 0.0, 1.0, num_steps=num_steps, method=method,
                     return_path=return_path, rtol=rtol, atol=atol)
