"""Few-step generation: distillation, consistency, shortcut and MeanFlow models (taught in notebook 08).

The course's time runs from noise (t = 0) to data (t = 1) along xt = (1 - t) x0 + t x1, so every
map below ends at t = 1. A sampler is ``sampler(x0, nfe) -> samples`` (the interface of
``utils.showdown``), spending ``nfe`` network evaluations.

    f = lambda x, t: consistency_fn(net, x, t)       # f(x, t) = x + (1 - t) F(x, t): f(x, 1) = x
    model, losses = train_distilled(teacher)         # regress the teacher ODE's endpoint (Luhman 2021)
    model, losses = train_consistency(teacher)       # consistency distillation, stop-gradient target
    model, losses = train_shortcut(moons)            # s(x, t, d): two steps of d = one step of 2d
    model, losses = train_meanflow(moons)            # u(z, r, t) = v - (t - r) du/dt (by torch.func.jvp)
    consistency_sampler(model), shortcut_sampler(model), meanflow_sampler(model)

MeanFlow's average velocity u(z, r, t) = 1/(t - r) int_r^t v(z_s, s) ds is taken along the trajectory
through z at time t (where you stand); r is the other end (where you land): z_r = z - (t - r) u.
Sampling from noise to data stands at t and lands at a later r. The exact Gaussian case
(``gaussian_flow``) gives u in closed form, for tests of the identity.
"""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn

from .couplings import ot_couple
from .errors import InputError, batch_times, check_points
from .models import TimeMLP, time_features
from .runtime import progress
from .solvers import solve_ode

__all__ = ["TwoTimeMLP", "consistency_fn", "teacher_trajectories", "train_distilled", "consistency_target",
           "train_consistency", "shortcut_target", "train_shortcut", "meanflow_target", "train_meanflow",
           "consistency_sampler", "shortcut_sampler", "meanflow_sampler", "sample_mean_flow", "gaussian_flow",
           "LIVE_RECIPE"]

LIVE_RECIPE = dict(batch_size=256, lr=3e-3)


class TwoTimeMLP(nn.Module):
    """g(x, a, b): a TimeMLP with a second time input (shortcut: (t, d); MeanFlow: u(z, r, t) = g(z, r, t))."""

    def __init__(self, dim: int = 2, hidden: int = 64, depth: int = 3, num_freqs: int = 4):
        super().__init__()
        self.dim, self.num_freqs = dim, num_freqs
        layers, width = [], dim + 2 * (1 + 2 * num_freqs)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SELU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, a, b) -> torch.Tensor:
        check_points(x, "x", dim=self.dim)
        a, b = batch_times(a, x, "first time"), batch_times(b, x, "second time")
        return self.net(torch.cat([x, time_features(a, self.num_freqs), time_features(b, self.num_freqs)], 1))


def consistency_fn(net: Callable, x: torch.Tensor, t) -> torch.Tensor:
    """f(x, t) = x + (1 - t) F(x, t): the boundary condition f(x, 1) = x holds for every network F (8.1)."""
    t = batch_times(t, x)
    return x + (1 - t)[:, None] * net(x, t)


def _loop(model, loss_fn, num_steps, lr, seed, desc, callback):
    """Adam with a cosine-decayed rate; loss_fn(g) -> loss tensor. Sets ``model.cost`` (steps, seconds)."""
    if not isinstance(num_steps, int) or num_steps < 1:
        raise InputError(f"`num_steps` must be a positive integer, got {num_steps!r}.")
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, num_steps)
    losses, start = [], time.process_time()
    for step in progress(range(num_steps), desc=desc):
        loss = loss_fn(g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if callback is not None:
            callback(step + 1)
    model.cost = {"steps": num_steps, "seconds": time.process_time() - start}
    return model, losses


def _pairs(sample_x1, n, g, coupling):
    x1 = sample_x1(n, g)
    x0 = torch.randn(x1.shape, generator=g, dtype=x1.dtype)
    return ot_couple(x0, x1) if coupling == "ot" else (x0, x1)


# ------------------------------------------------------------------ distillation (a teacher's endpoints)

@torch.no_grad()
def teacher_trajectories(teacher: Callable, x0: torch.Tensor, num_steps: int = 100) -> torch.Tensor:
    """The teacher's Euler paths from x0: shape (num_steps + 1, n, d), times k / num_steps."""
    check_points(x0, "x0")
    return solve_ode(teacher, x0, num_steps=num_steps, method="euler", return_path=True).path


def _teacher_paths(teacher, paths, num_paths, teacher_steps, seed):
    """The teacher's Euler paths from ``num_paths`` noise points drawn with ``seed``, or ``paths`` if given."""
    if paths is None:
        x0 = torch.randn(num_paths, 2, generator=torch.Generator().manual_seed(seed))
        return teacher_trajectories(teacher, x0, teacher_steps)
    if not isinstance(paths, torch.Tensor) or paths.ndim != 3 or paths.shape[0] < 2:
        raise InputError("`paths` must be the output of teacher_trajectories: shape (teacher_steps + 1, n, d), "
                         f"got {tuple(paths.shape) if isinstance(paths, torch.Tensor) else type(paths).__name__}.")
    return paths


def train_distilled(teacher: Callable, num_steps: int = 500, num_paths: int = 5000, teacher_steps: int = 100,
                    batch_size: int = 256, lr: float = 3e-3, seed: int = 0, model: nn.Module | None = None,
                    desc: str = "distillation", callback: Callable | None = None,
                    paths: torch.Tensor | None = None):
    """Regress f(x_t, t) = x + (1 - t) F(x_t, t) on the teacher's endpoint, x_t on its paths (Luhman 2021).

    The teacher's ``num_paths`` paths are computed once (``teacher_steps`` Euler steps each, counted in
    ``model.cost['teacher_evals']``), or passed as ``paths`` (``teacher_trajectories``' output, e.g. shared
    with ``train_consistency``); every step draws a batch of (path, time) points of the grid.
    """
    paths = _teacher_paths(teacher, paths, num_paths, teacher_steps, seed)
    num_paths, teacher_steps = paths.shape[1], paths.shape[0] - 1
    model = TimeMLP() if model is None else model

    def loss_fn(gen):
        i = torch.randint(0, num_paths, (batch_size,), generator=gen)
        k = torch.randint(0, teacher_steps, (batch_size,), generator=gen)
        t = k.to(paths.dtype) / teacher_steps
        return ((consistency_fn(model, paths[k, i], t) - paths[-1, i]) ** 2).sum(1).mean()
    model, losses = _loop(model, loss_fn, num_steps, lr, seed, desc, callback)
    model.cost["teacher_evals"] = num_paths * teacher_steps
    return model, losses


# ------------------------------------------------------------------ consistency distillation

def consistency_target(net: Callable, teacher: Callable, xt: torch.Tensor, t: torch.Tensor,
                       dt: float) -> torch.Tensor:
    """sg[f(x_t + dt v(x_t, t), t + dt)]: one teacher Euler step, then the model's own map, no gradient."""
    with torch.no_grad():
        x_next = xt + dt * teacher(xt, t)
        return consistency_fn(net, x_next, t + dt)


def train_consistency(teacher: Callable, num_steps: int = 500, num_pairs: int = 5000, teacher_steps: int = 100,
                      grid: int = 16, batch_size: int = 256, lr: float = 3e-3, seed: int = 0,
                      model: nn.Module | None = None, desc: str = "consistency", callback: Callable | None = None,
                      paths: torch.Tensor | None = None):
    """Consistency distillation (Song et al. 2023) along the teacher: |f(x_t, t) - sg f(x_{t+dt}, t+dt)|^2.

    x_t interpolates the teacher's pairs (x0, teacher(x0)) (straight paths, so x_t is near its
    trajectory); t runs over a grid of ``grid`` steps, dt = 1 / grid; the teacher takes one Euler step.
    The pairs are the ends of the teacher's Euler paths from ``num_pairs`` noise points (drawn with
    ``seed``, as ``train_distilled`` draws them), or of ``paths`` if given.
    """
    paths = _teacher_paths(teacher, paths, num_pairs, teacher_steps, seed)
    num_pairs, teacher_steps = paths.shape[1], paths.shape[0] - 1
    model = TimeMLP() if model is None else model
    x0, x1 = paths[0], paths[-1]

    def loss_fn(gen):
        i = torch.randint(0, num_pairs, (batch_size,), generator=gen)
        t = torch.randint(0, grid, (batch_size,), generator=gen).to(x0.dtype) / grid
        xt = (1 - t)[:, None] * x0[i] + t[:, None] * x1[i]
        target = consistency_target(model, teacher, xt, t, 1.0 / grid)
        return ((consistency_fn(model, xt, t) - target) ** 2).sum(1).mean()
    model, losses = _loop(model, loss_fn, num_steps, lr, seed, desc, callback)
    model.cost["teacher_evals"] = num_pairs * teacher_steps + num_steps * batch_size
    return model, losses


# ------------------------------------------------------------------ shortcut models

def shortcut_target(s: Callable, xt: torch.Tensor, t: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """sg[(s(x_t, t, d) + s(x', t + d, d)) / 2] with x' = x_t + d s(x_t, t, d): two steps of d (8.2)."""
    with torch.no_grad():
        v1 = s(xt, t, d)
        v2 = s(xt + d[:, None] * v1, t + d, d)
        return (v1 + v2) / 2


def train_shortcut(sample_x1: Callable, num_steps: int = 500, levels: int = 6, self_fraction: float = 0.25,
                   coupling: str = "independent", batch_size: int = 256, lr: float = 3e-3, seed: int = 0,
                   model: nn.Module | None = None, desc: str = "shortcut", callback: Callable | None = None):
    """Shortcut model (Frans et al. 2024): flow matching at d = 0 plus s(x_t, t, 2d) = shortcut_target.

    A fraction ``self_fraction`` of each batch takes the self-consistency target, with d = 2^-k,
    k = 1..levels (so 2d <= 1) and t uniform on [0, 1 - 2d]; the rest regresses x1 - x0 at d = 0.
    """
    model = TwoTimeMLP() if model is None else model
    n_self = int(round(batch_size * self_fraction))

    def loss_fn(gen):
        x0, x1 = _pairs(sample_x1, batch_size, gen, coupling)
        t = torch.rand(batch_size, generator=gen, dtype=x0.dtype)
        d2 = 2.0 ** -torch.randint(0, levels, (batch_size,), generator=gen).to(x0.dtype)  # the big step 2d
        d2[n_self:] = 0
        t = t * (1 - d2)
        xt = (1 - t)[:, None] * x0 + t[:, None] * x1
        target = x1 - x0
        if n_self:
            target = target.clone()
            target[:n_self] = shortcut_target(model, xt[:n_self], t[:n_self], d2[:n_self] / 2)
        return ((model(xt, t, d2) - target) ** 2).sum(1).mean()
    return _loop(model, loss_fn, num_steps, lr, seed, desc, callback)


# ------------------------------------------------------------------ MeanFlow

def meanflow_target(u: Callable, z: torch.Tensor, r: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """sg[v - (t - r) du/dt], du/dt = v . grad_z u + d_t u, the total derivative by one jvp (8.3)."""
    _, dudt = torch.func.jvp(u, (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
    return (v - (t - r)[:, None] * dudt).detach()


def train_meanflow(sample_x1: Callable, num_steps: int = 500, jump_fraction: float = 0.25,
                   coupling: str = "independent", batch_size: int = 256, lr: float = 3e-3, seed: int = 0,
                   model: nn.Module | None = None, desc: str = "MeanFlow", callback: Callable | None = None):
    """MeanFlow (Geng et al. 2025): regress u(z_t, r, t) on sg[v - (t - r) du/dt], v = x1 - x0.

    t <= r (stand at t, land at r); a fraction ``jump_fraction`` of the batch has r > t, the rest
    r = t, where the target is the flow matching target v.
    """
    model = TwoTimeMLP() if model is None else model
    n_jump = int(round(batch_size * jump_fraction))

    def loss_fn(gen):
        x0, x1 = _pairs(sample_x1, batch_size, gen, coupling)
        a, b = torch.rand(2, batch_size, generator=gen, dtype=x0.dtype)
        t, r = torch.minimum(a, b), torch.maximum(a, b)
        r = torch.cat([r[:n_jump], t[n_jump:]])
        z = (1 - t)[:, None] * x0 + t[:, None] * x1
        target = meanflow_target(model, z, r, t, x1 - x0)
        return ((model(z, r, t) - target) ** 2).sum(1).mean()
    return _loop(model, loss_fn, num_steps, lr, seed, desc, callback)


# ------------------------------------------------------------------ samplers: sampler(x0, nfe)

def _check_nfe(nfe) -> int:
    if not isinstance(nfe, int) or isinstance(nfe, bool) or nfe < 1:
        raise InputError(f"`nfe` must be a positive integer (network evaluations), got {nfe!r}.")
    return nfe


def consistency_sampler(net: Callable) -> Callable:
    """nfe steps t_k -> t_{k+1} (t_k = k / nfe), each a fraction of the way to the predicted data f(x, t_k).

    x <- x + (t_{k+1} - t_k) / (1 - t_k) (f(x, t_k) - x) = x + (t_{k+1} - t_k) F(x, t_k): one step lands on
    f(x0, 0). Deterministic: the teachers' paths pair each noise with its own data point, so the
    re-noising of Song et al.'s multistep sampler (fresh noise) would leave the teacher's marginals.
    """
    @torch.no_grad()
    def sample(x0, nfe):
        nfe = _check_nfe(nfe)
        x = x0
        for k in range(nfe):
            t = k / nfe
            x = x + (1 / nfe) / (1 - t) * (consistency_fn(net, x, t) - x)
        return x
    return sample


def shortcut_sampler(s: Callable) -> Callable:
    """nfe steps of size d = 1 / nfe: x <- x + d s(x, t, d)."""
    @torch.no_grad()
    def sample(x0, nfe):
        d = 1.0 / _check_nfe(nfe)
        x = x0
        for k in range(nfe):
            x = x + d * s(x, k * d, d)
        return x
    return sample


def sample_mean_flow(u: Callable, x0: torch.Tensor, num_steps: int) -> torch.Tensor:
    """num_steps jumps on the grid t_k = k / num_steps: z <- z + (t_{k+1} - t_k) u(z, t_{k+1}, t_k) (8.4)."""
    times = torch.linspace(0, 1, _check_nfe(num_steps) + 1, dtype=x0.dtype)
    z = x0
    for k in range(num_steps):
        r, t = times[k + 1].expand(len(z)), times[k].expand(len(z))
        z = z + (r - t)[:, None] * u(z, r, t)
    return z


def meanflow_sampler(u: Callable) -> Callable:
    """sampler(x0, nfe) = sample_mean_flow(u, x0, nfe), without gradients."""
    @torch.no_grad()
    def sample(x0, nfe):
        return sample_mean_flow(u, x0, nfe)
    return sample


# ------------------------------------------------------------------ an exact case: Gaussian to Gaussian

def gaussian_flow(mean: torch.Tensor, scale: float) -> tuple[Callable, Callable]:
    """(v, u) exactly, for x0 ~ N(0, I), x1 ~ N(mean, scale^2 I) independent, xt = (1 - t) x0 + t x1.

    xt ~ N(t mean, s_t^2 I), s_t^2 = (1 - t)^2 + t^2 scale^2; the flow is affine, z_r = r mean +
    (s_r / s_t)(z - t mean), so u(z, r, t) = (z - z_r) / (t - r) (r != t) and v(z, t) its limit r -> t.
    """
    mean = torch.as_tensor(mean, dtype=torch.get_default_dtype())
    if mean.ndim != 1:
        raise InputError(f"`mean` must be a vector (d,), got shape {tuple(mean.shape)}.")

    def sd(t):
        return ((1 - t) ** 2 + t ** 2 * scale ** 2).sqrt()

    def v(z, t):
        t = batch_times(t, z)[:, None]
        dsd = (-(1 - t) + t * scale ** 2) / sd(t)
        return mean + dsd / sd(t) * (z - t * mean)

    def u(z, r, t):
        r, t = batch_times(r, z, "r")[:, None], batch_times(t, z)[:, None]
        z_r = r * mean + sd(r) / sd(t) * (z - t * mean)
        return (z - z_r) / (t - r)
    return v, u
