"""Conditional flow matching: the loss, a training step, a training loop (taught in notebook 05, used in 06 and 07).

    loss = cfm_loss(v_theta, path, x0, x1, t)            # mean over the batch of |v(xt, t) - u_t(xt | x1)|^2
    loss = training_step(v_theta, optimizer, path, x1, generator)
    model, losses = train_cfm(sample_x1, path=OTPath(), num_steps=2000)          # Gaussian source, a path
    model, losses = train_cfm(sample_x1, sample_x0=..., coupling="ot", sigma=0.1)  # pairs (notebook 06)
    model, losses = train_cfm(None, sample_pair=draw, coupling="given")  # fixed pairs: reflow (06)
    x = sample_flow(model, x0, num_steps=8)              # Euler from t=0 to t=1

``sample_x1(n, generator)`` (and ``sample_x0``) return (n, d) tensors. With a
``path``, x0 ~ N(0, I) and the target is the path's conditional field. With
``coupling`` ("independent", "ot", or "given" with ``sample_pair(n, generator) -> (x0, x1)``) the
model conditions on pairs (x0, x1) and
the straight interpolant xt = (1 - t) x0 + t x1 + sigma eps, target x1 - x0
(I-CFM and OT-CFM, notebook 06).
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from typing import Callable

import torch

from .couplings import ot_couple, straight_pair
from .errors import InputError
from .models import TimeMLP
from .paths import GaussianPath, OTPath
from .runtime import in_background, progress
from .solvers import solve_ode

__all__ = ["cfm_loss", "training_step", "train_cfm", "sample_flow", "T_MAX"]

T_MAX = 1.0 - 1e-3  # times are drawn from U[0, T_MAX): the VP path's field is undefined at t = 1


def cfm_loss(v_theta: Callable, path: GaussianPath, x0: torch.Tensor, x1: torch.Tensor,
             t: torch.Tensor) -> torch.Tensor:
    """The CFM loss of a batch: mean over i of |v_theta(xt_i, t_i) - u_t(xt_i | x1_i)|^2 (exercise 5.5)."""
    xt = path.sample(x0, x1, t)
    ut = path.velocity(xt, x1, t)
    return ((v_theta(xt, t) - ut) ** 2).sum(dim=1).mean()


def training_step(v_theta: torch.nn.Module, optimizer: torch.optim.Optimizer, path: GaussianPath,
                  x1: torch.Tensor, generator: torch.Generator | None = None) -> float:
    """One CFM step on the data batch x1: draw x0 ~ N(0, I) and t ~ U[0, 1), descend the loss (exercise 5.6)."""
    x0 = torch.randn(x1.shape, generator=generator, dtype=x1.dtype).to(x1.device)
    t = (torch.rand(x1.shape[0], generator=generator, dtype=x1.dtype) * T_MAX).to(x1.device)
    loss = cfm_loss(v_theta, path, x0, x1, t)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


PAIRS_AHEAD = 2  # batches of pairs drawn ahead in train_cfm (fixed: the random stream must not depend on the machine)


def train_cfm(sample_x1: Callable, path: GaussianPath | None = None, num_steps: int = 2000,
              batch_size: int = 256, lr: float = 1e-3, seed: int = 0, model: torch.nn.Module | None = None,
              sample_x0: Callable | None = None, coupling: str | None = None, sigma: float = 0.0,
              sample_pair: Callable | None = None, cosine: bool = True,
              desc: str = "training", callback: Callable | None = None) -> tuple[torch.nn.Module, list[float]]:
    """Train a TimeMLP (3 x 64, SELU) by CFM; return the model and the loss of every step.

    Either ``path`` (x0 ~ N(0, I), Gaussian conditional path given x1), or ``coupling`` in
    {"independent", "ot", "given"} with the straight interpolant of a pair and noise ``sigma``; then
    ``sample_x0(n, generator)`` draws the source (default N(0, I)), or, for "given",
    ``sample_pair(n, generator)`` draws pairs (x0, x1) together (reflow). Adam, with the learning
    rate decayed to 0 on a cosine schedule unless ``cosine=False`` (the CFM target is noisy: a
    decaying rate averages it out, as the score trainer of notebook 04 does). ``callback(step)``, if
    given, is called after every optimiser step (``utils.references`` measures checkpoints with it).
    """
    if (path is None) == (coupling is None):
        raise InputError("give either `path` (a GaussianPath) or `coupling` ('independent' or 'ot').")
    if coupling not in (None, "independent", "ot", "given"):
        raise InputError(f"`coupling` must be 'independent', 'ot' or 'given', got {coupling!r}.")
    if (coupling == "given") != (sample_pair is not None):
        raise InputError("`sample_pair` goes with coupling='given' (and only with it).")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if model is None:
        model = TimeMLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, num_steps) if cosine else None
    if sample_x0 is None:
        sample_x0 = lambda n, gen: torch.randn(n, 2, generator=gen)  # noqa: E731

    def next_pair():
        """A batch's pair, drawn now; its OT pairing is solved on a worker thread meanwhile."""
        if coupling == "given":
            return _done(sample_pair(batch_size, g))
        x1 = sample_x1(batch_size, g)
        x0 = sample_x0(batch_size, g)
        return in_background(ot_couple, x0, x1) if coupling == "ot" else _done((x0, x1))

    losses = []
    # straight couplings draw their pairs PAIRS_AHEAD batches ahead (a fixed number, so every machine
    # draws the same random numbers), and OT pairings are solved on other cores while a step trains
    ahead = deque(next_pair() for _ in range(min(PAIRS_AHEAD, num_steps))) if path is None else None
    for step in progress(range(num_steps), desc=desc):
        if path is not None:
            loss = training_step(model, optimizer, path, sample_x1(batch_size, g), g)
        else:
            x0, x1 = ahead.popleft().result()
            t = torch.rand(batch_size, generator=g)
            xt, ut = straight_pair(x0, x1, t, sigma=sigma, generator=g)
            if step + PAIRS_AHEAD < num_steps:
                ahead.append(next_pair())
            loss_t = ((model(xt, t) - ut) ** 2).sum(1).mean()
            optimizer.zero_grad()
            loss_t.backward()
            optimizer.step()
            loss = loss_t.item()
        if schedule is not None:
            schedule.step()
        losses.append(loss)
        if callback is not None:
            callback(step + 1)
    return model, losses


def _done(value) -> Future:
    """A future that already holds ``value`` (pairs that need no solving)."""
    done = Future()
    done.set_result(value)
    return done


@torch.no_grad()
def sample_flow(v_theta: Callable, x0: torch.Tensor, num_steps: int = 100, method: str = "euler",
                t1: float = 1.0, return_path: bool = False):
    """Integrate the learned field from t=0 to t1 (Euler by default); returns the ODESolution."""
    return solve_ode(v_theta, x0, 0.0, t1, num_steps=num_steps, method=method, return_path=return_path)
