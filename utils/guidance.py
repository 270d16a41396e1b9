"""Class-conditional flow matching with classifier-free guidance (taught in notebook 07).

One network v_theta(x, t, y) learns both the conditional field v(x, t | y) and
the unconditional one v(x, t | no label): during training each label is
replaced by the extra label ``null_label`` with probability ``p_uncond``
(label dropout). At sampling time the two are combined (Ho and Salimans 2022)

    v_w(x, t | y) = (1 + w) v(x, t | y) - w v(x, t | no label)
                  = v(x, t | y) + w (v(x, t | y) - v(x, t | no label)),

which for w = 0 is the conditional field and for w > 0 pushes further away
from "any digit" towards "this digit".

    y = drop_labels(y, p_uncond=0.2, null_label=model.null_label, generator=g)
    v = guided_velocity(model, x, t, y, w)
    x1 = sample_guided(model, x0, y, w, num_steps=20)        # Euler from t=0 to t=1
    model, losses = train_guided(x_train, y_train)            # the training loop of notebook 07
"""
from __future__ import annotations

import torch

from .cfm import T_MAX, cfm_loss
from .errors import InputError, check_points
from .models import ConditionalMLP
from .paths import OTPath
from .runtime import get_device, progress
from .solvers import solve_ode

__all__ = ["drop_labels", "guided_velocity", "sample_guided", "train_guided", "TRAINING"]

# the settings of notebook 07 (make bench trains with these, or longer)
TRAINING = dict(num_steps=1000, batch_size=256, lr=2e-3, p_uncond=0.2, hidden=256, depth=3, seed=0)


def drop_labels(y: torch.Tensor, p_uncond: float, null_label: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """A copy of the labels y (n,) in which each entry, independently with probability p_uncond,
    is replaced by ``null_label`` (exercise 7.2). The random numbers come from ``generator``."""
    if not 0.0 <= p_uncond <= 1.0:
        raise InputError(f"`p_uncond` must be a probability in [0, 1], got {p_uncond}.")
    drop = torch.rand(y.shape[0], generator=generator) < p_uncond
    return torch.where(drop.to(y.device), torch.full_like(y, null_label), y)


def guided_velocity(model, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, w: float) -> torch.Tensor:
    """(1 + w) v(x, t | y) - w v(x, t | no label), with the no-label field from ``model.null_label``
    (exercise 7.3)."""
    v_cond = model(x, t, y)
    v_uncond = model(x, t, torch.full_like(y, model.null_label))
    return (1 + w) * v_cond - w * v_uncond


def sample_guided(model, x0: torch.Tensor, y: torch.Tensor, w: float, num_steps: int) -> torch.Tensor:
    """Integrate the guided field from the noise x0 at t=0 to t=1 with ``num_steps`` Euler steps
    (exercise 7.4). Returns the samples at t=1, shape of x0."""
    check_points(x0, "x0")
    with torch.no_grad():
        return solve_ode(lambda x, t: guided_velocity(model, x, t, y, w), x0, 0.0, 1.0,
                         num_steps=num_steps, method="euler").x


def train_guided(x_train: torch.Tensor, y_train: torch.Tensor, num_steps: int = TRAINING["num_steps"],
                 batch_size: int = TRAINING["batch_size"], lr: float = TRAINING["lr"],
                 p_uncond: float = TRAINING["p_uncond"], hidden: int = TRAINING["hidden"],
                 depth: int = TRAINING["depth"], seed: int = TRAINING["seed"],
                 device: torch.device | None = None, desc: str = "training"):
    """The training loop of notebook 07: OT path, label dropout, Adam with a cosine learning rate.

    Random numbers are drawn on the CPU from one generator, so a GPU sees the same batches.
    Returns the model (in eval mode, on ``device``) and the loss of every step.
    """
    check_points(x_train, "x_train")
    device = device or get_device()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    num_classes = int(y_train.max()) + 1
    model = ConditionalMLP(x_train.shape[1], num_classes, hidden=hidden, depth=depth).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, num_steps)
    path = OTPath(sigma_min=0.0)
    losses = []
    for _ in progress(range(num_steps), desc=desc):
        idx = torch.randint(x_train.shape[0], (batch_size,), generator=generator)
        x1 = x_train[idx]
        y = drop_labels(y_train[idx], p_uncond, model.null_label, generator)
        x0 = torch.randn(x1.shape, generator=generator)
        t = torch.rand(batch_size, generator=generator) * T_MAX
        x0, x1, t, y = x0.to(device), x1.to(device), t.to(device), y.to(device)
        loss = cfm_loss(lambda x, s: model(x, s, y), path, x0, x1, t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return model.eval(), losses
