"""Samplers of a diffusion model (taught in notebook 04, used in 06).

x0 is noise, as everywhere in the course; every sampler goes from flow time t=0 (noise, diffusion
time s=1) to t=1 (data, s=0) (see ``utils.sde`` for the two time conventions), counts its score
evaluations (``nfe``) and returns a :class:`~utils.solvers.ODESolution` (x, nfe, times in flow time,
path if ``return_path``):

    score = target.score_fn(sde)                         # exact score(x, s) (utils.mixtures), or a ScoreModel
    sample_reverse_sde(sde, score, x0, num_steps=100, generator=g)          # Euler-Maruyama, reverse SDE
    sample_probability_flow(sde, score, x0, num_steps=10, method="rk4", time_grid=None)   # PF-ODE
    sample_ddpm(sde, score, x0, num_steps, generator=g, time_grid="uniform")  # ancestral, re-spaced
    sample_ddim(sde, score, x0, num_steps, time_grid="uniform", eta=0.0)      # DDIM (eta=0: deterministic)
    sample_noise_family(sde, score, x0, num_steps, noise_level=eps, generator=g, time_grid="uniform")
        # Euler-Maruyama on dx = [f - (1 + eps^2)/2 g^2 score] ds + eps g dW (run from s=1 to 0):
        # eps = 0 is the probability flow, eps = 1 the reverse SDE; every eps has the same marginals.
    make_time_grid(sde, num_steps, kind="uniform" | "logsnr" | "karras", s_min=1e-3)   # flow times 0..1
    gaussian_posterior(sde, x_s, x_data, s, s_next)      # mean, std of q(x_{s_next} | x_s, x_data)

``time_grid`` is a kind for :func:`make_time_grid` or a tensor of num_steps + 1 increasing flow times
from 0 to 1. The non-uniform grids put their steps where the field changes fastest, near the data
(s -> 0): "logsnr" is uniform in log(alpha_s / sigma_s) down to s_min, "karras" uniform in
(sigma_s / alpha_s)^(1/7) (Karras et al. 2022); both take their last step from s_min to s = 0.

DDPM (Ho et al. 2020) on a grid s_0 = 1 > s_1 > ... > s_N = 0 draws x_{s'} from the Gaussian posterior
q(x_{s'} | x_s, x_data) with x_data replaced by Tweedie's denoiser x_hat = (x_s + sigma_s^2 score) / alpha_s;
DDIM (Song, Meng and Ermon 2021) moves to x_{s'} = alpha_{s'} x_hat + sigma_{s'} eps_hat with
eps_hat = -sigma_s score, and with eta in (0, 1] adds eta times the posterior's noise (eta = 1 is DDPM).
One score evaluation per step for all of them, except the PF-ODE's multi-stage methods (RK4: 4).
The VP and the VE SDE both work (alpha_s = 1 for VE).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .errors import InputError, check_points
from .sde import Score, _SDE, _as_times, diffusion_time
from .solvers import STEPPERS, NFECounter, ODESolution, solve_ode

__all__ = ["reverse_sde_drift", "probability_flow_drift", "probability_flow_field", "flow_time_drifts",
           "em_step", "sample_reverse_sde", "sample_probability_flow", "make_time_grid", "gaussian_posterior",
           "sample_ddpm", "sample_ddim", "sample_noise_family", "TIME_GRIDS"]


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
                            atol: float = 1e-5, time_grid=None) -> ODESolution:
    """Sample by solving the probability flow ODE from noise x0 (flow t=0) to data (flow t=1).

    Any method of ``utils.solvers.solve_ode`` ("euler", "midpoint", "rk4", "dopri5"); nfe counts
    score evaluations. ``time_grid`` (fixed-step methods only): a kind for :func:`make_time_grid`
    or a tensor of flow times; None is the uniform grid of ``solve_ode``.
    """
    if time_grid is None or (isinstance(time_grid, str) and time_grid == "uniform"):
        return solve_ode(probability_flow_field(sde, score), x0, 0.0, 1.0, num_steps=num_steps, method=method,
                         return_path=return_path, rtol=rtol, atol=atol)
    if method not in STEPPERS:
        raise InputError(f"a `time_grid` needs a fixed-step method {sorted(STEPPERS)}, got {method!r}.")
    check_points(x0, "x0")
    times = _grid(sde, num_steps, time_grid, x0)
    field = NFECounter(probability_flow_field(sde, score))
    x, path = x0, [x0] if return_path else None
    for k in range(num_steps):
        t, t_next = times[k].item(), times[k + 1].item()
        x = STEPPERS[method](field, x, t, t_next - t)
        if path is not None:
            path.append(x)
    return ODESolution(x, field.nfe, times, torch.stack(path) if path is not None else None)


# ---------------------------------------------------------------- time grids

TIME_GRIDS = ("uniform", "logsnr", "karras")


def _ratio(sde: _SDE, s: torch.Tensor) -> torch.Tensor:
    """The noise-to-signal ratio sigma_s / alpha_s, increasing in s."""
    alpha, sigma = sde.kernel(s)
    return sigma / alpha


def _s_of_ratio(sde: _SDE, r: torch.Tensor) -> torch.Tensor:
    """Diffusion times with sigma_s / alpha_s = r, by bisection on [0, 1] (any SDE)."""
    lo, hi = torch.zeros_like(r), torch.ones_like(r)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = _ratio(sde, mid) < r
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


def make_time_grid(sde: _SDE, num_steps: int, kind: str = "uniform", s_min: float = 1e-3,
                   rho: float = 7.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """num_steps + 1 increasing flow times from 0 (noise) to 1 (data).

    "uniform": equal steps in t. "logsnr": equal steps in log(sigma_s / alpha_s) from s = 1 down to
    s_min, then one step to s = 0. "karras": equal steps in (sigma_s / alpha_s)^(1 / rho) from s = 1
    down to s_min, then one step to s = 0 (Karras et al. 2022, rho = 7). The non-uniform grids take
    small steps near the data, where the score of a concentrated distribution changes fastest.
    """
    if not isinstance(num_steps, int) or num_steps < 1:
        raise InputError(f"`num_steps` must be a positive integer, got {num_steps!r}.")
    if kind not in TIME_GRIDS:
        raise InputError(f"`kind` must be one of {TIME_GRIDS}, got {kind!r}.")
    if not 0 < s_min < 1:
        raise InputError(f"`s_min` must lie in (0, 1), got {s_min!r}.")
    if kind == "uniform" or num_steps == 1:
        return torch.linspace(0.0, 1.0, num_steps + 1, dtype=dtype)
    r_max = _ratio(sde, torch.tensor(1.0, dtype=torch.float64))
    r_min = _ratio(sde, torch.tensor(s_min, dtype=torch.float64))
    u = torch.linspace(0.0, 1.0, num_steps, dtype=torch.float64)
    if kind == "logsnr":
        r = torch.exp(torch.log(r_max) + u * (torch.log(r_min) - torch.log(r_max)))
    else:
        r = (r_max ** (1 / rho) + u * (r_min ** (1 / rho) - r_max ** (1 / rho))) ** rho
    s = _s_of_ratio(sde, r)
    s[0], s[-1] = 1.0, s_min
    s = torch.cat([s, torch.zeros(1, dtype=torch.float64)])
    return (1.0 - s).to(dtype)


def _grid(sde: _SDE, num_steps: int, time_grid, x0: torch.Tensor) -> torch.Tensor:
    """The flow times of a sampler: a kind of make_time_grid or a tensor, checked."""
    if not isinstance(num_steps, int) or num_steps < 1:
        raise InputError(f"`num_steps` must be a positive integer, got {num_steps!r}.")
    if time_grid is None:
        time_grid = "uniform"
    if isinstance(time_grid, str):
        return make_time_grid(sde, num_steps, time_grid, dtype=x0.dtype)
    if not isinstance(time_grid, torch.Tensor):
        raise InputError(f"`time_grid` must be one of {TIME_GRIDS} or a tensor of flow times, "
                         f"got {type(time_grid).__name__}.")
    times = time_grid.to(dtype=x0.dtype).cpu()
    if times.shape != (num_steps + 1,) or not bool((times[1:] > times[:-1]).all()) \
            or abs(times[0].item()) > 1e-12 or abs(times[-1].item() - 1) > 1e-12:
        raise InputError(f"`time_grid` must hold num_steps + 1 = {num_steps + 1} increasing flow times from 0 "
                         f"to 1, got shape {tuple(times.shape)} from {times[0].item():.3g} to {times[-1].item():.3g}.")
    return times


# ---------------------------------------------------------------- DDPM, DDIM

def gaussian_posterior(sde: _SDE, x_s: torch.Tensor, x_data: torch.Tensor, s, s_next) -> tuple[torch.Tensor,
                                                                                              torch.Tensor]:
    """Mean (n, d) and std (n,) of q(x_{s_next} | x_s, x_data) for diffusion times s_next < s.

    With alpha_{s|s'} = alpha_s / alpha_{s'} and sigma_{s|s'}^2 = sigma_s^2 - alpha_{s|s'}^2 sigma_{s'}^2:
    mean = alpha_{s|s'} sigma_{s'}^2 / sigma_s^2 x_s + alpha_{s'} sigma_{s|s'}^2 / sigma_s^2 x_data,
    variance = sigma_{s|s'}^2 sigma_{s'}^2 / sigma_s^2 (Kingma et al. 2021, eq. 27-28).
    """
    s, s_next = _as_times(s, x_s), _as_times(s_next, x_s)
    if bool((s_next >= s).any()):
        raise InputError("the posterior q(x_{s_next} | x_s, x_data) needs s_next < s (diffusion time).")
    a, sig = sde.kernel(s)
    a_n, sig_n = sde.kernel(s_next)
    a_ts = a / a_n
    var_ts = sig**2 - a_ts**2 * sig_n**2
    mean = (a_ts * sig_n**2 / sig**2)[:, None] * x_s + (a_n * var_ts / sig**2)[:, None] * x_data
    return mean, torch.sqrt((var_ts * sig_n**2 / sig**2).clamp_min(0.0))


def _ddim(sde: _SDE, score: Score, x0: torch.Tensor, num_steps: int, eta: float, generator, time_grid,
          return_path: bool) -> ODESolution:
    check_points(x0, "x0")
    if not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
        raise InputError(f"`eta` must lie in [0, 1] (0: DDIM, 1: DDPM), got {eta!r}.")
    times = _grid(sde, num_steps, time_grid, x0)
    calls = [0]
    x, path = x0, [x0] if return_path else None
    for k in range(num_steps):
        s = _as_times(diffusion_time(times[k]).item(), x)
        s_next = _as_times(diffusion_time(times[k + 1]).item(), x)
        a, sig = sde.kernel(s)
        a_n, sig_n = sde.kernel(s_next)
        sc = score(x, s)
        calls[0] += 1
        eps_hat = -sig[:, None] * sc
        x_hat = (x - sig[:, None] * eps_hat) / a[:, None]
        std = eta * gaussian_posterior(sde, x, x_hat, s, s_next)[1] if eta > 0 else torch.zeros_like(sig)
        x = a_n[:, None] * x_hat + torch.sqrt((sig_n**2 - std**2).clamp_min(0.0))[:, None] * eps_hat
        if eta > 0 and k < num_steps - 1:
            x = x + std[:, None] * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        if path is not None:
            path.append(x)
    return ODESolution(x, calls[0], times, torch.stack(path) if path is not None else None)


def sample_ddpm(sde: _SDE, score: Score, x0: torch.Tensor, num_steps: int = 100,
                generator: torch.Generator | None = None, time_grid="uniform",
                return_path: bool = False) -> ODESolution:
    """Ancestral sampling (DDPM) re-spaced on ``num_steps`` steps of ``time_grid``: nfe = num_steps.

    Each step draws x_{s'} ~ q(x_{s'} | x_s, x_hat), the exact Gaussian posterior (:func:`gaussian_posterior`)
    with the data replaced by Tweedie's denoiser x_hat = (x_s + sigma_s^2 score(x_s, s)) / alpha_s.
    The last step (to s = 0) returns x_hat, noise-free. ``generator`` seeds the noise.
    """
    return _ddim(sde, score, x0, num_steps, 1.0, generator, time_grid, return_path)


def sample_ddim(sde: _SDE, score: Score, x0: torch.Tensor, num_steps: int = 100, time_grid="uniform",
                eta: float = 0.0, generator: torch.Generator | None = None,
                return_path: bool = False) -> ODESolution:
    """DDIM on ``num_steps`` steps of ``time_grid``: nfe = num_steps; deterministic for eta = 0.

    x_{s'} = alpha_{s'} x_hat + sigma_{s'} eps_hat, eps_hat = -sigma_s score(x_s, s): the exact solution of the
    probability flow when x_hat stays put (data a single point), a first-order solver of it otherwise
    (Euler in the variables x / alpha against sigma / alpha). eta in (0, 1] adds eta times the posterior's
    noise std (eta = 1 is :func:`sample_ddpm`).
    """
    return _ddim(sde, score, x0, num_steps, float(eta), generator, time_grid, return_path)


# ---------------------------------------------------------------- from the probability flow to the reverse SDE

def sample_noise_family(sde: _SDE, score: Score, x0: torch.Tensor, num_steps: int = 100, noise_level: float = 1.0,
                        generator: torch.Generator | None = None, time_grid="uniform",
                        return_path: bool = False) -> ODESolution:
    """Euler-Maruyama on the family of reverse processes with the diffusion's marginals, nfe = num_steps.

    In diffusion time, run from s = 1 to 0: dx = [f(x, s) - (1 + eps^2) / 2 g(s)^2 score(x, s)] ds + eps g(s) dW,
    eps = ``noise_level`` >= 0. eps = 0 is the probability flow (Euler), eps = 1 the reverse SDE
    (:func:`sample_reverse_sde` on the uniform grid, the same draws); every eps keeps the marginals p_s
    when the score is exact, so only the discretisation and the score's errors tell them apart.
    The last step adds no noise.
    """
    check_points(x0, "x0")
    if not isinstance(noise_level, (int, float)) or not 0.0 <= noise_level or math.isnan(noise_level):
        raise InputError(f"`noise_level` must be a number >= 0 (0: probability flow, 1: reverse SDE), "
                         f"got {noise_level!r}.")
    eps = float(noise_level)
    times = _grid(sde, num_steps, time_grid, x0)
    calls = [0]
    x, path = x0, [x0] if return_path else None
    for k in range(num_steps):
        dt = (times[k + 1] - times[k]).item()
        s = _as_times(diffusion_time(times[k]).item(), x)
        g = sde.diffusion(s).to(x.dtype)
        sc = score(x, s)
        calls[0] += 1
        drift = -(sde.drift(x, s) - 0.5 * (1 + eps**2) * (g**2)[:, None] * sc)
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        if k == num_steps - 1:
            noise = torch.zeros_like(noise)
        x = x + drift * dt + eps * g[:, None] * math.sqrt(dt) * noise
        if path is not None:
            path.append(x)
    return ODESolution(x, calls[0], times, torch.stack(path) if path is not None else None)
