"""Class-conditional flow matching with classifier-free guidance (taught in notebook 07).

One network v_theta(x, t, y) learns both the conditional field v(x, t | y) and
the unconditional one v(x, t | no label): during training each label is
replaced by the extra label ``null_label`` with probability ``p_uncond``
(label dropout). At sampling time the two are combined (Ho and Salimans 2022)

    v_w(x, t | y) = (1 + w) v(x, t | y) - w v(x, t | no label)
                  = v(x, t | y) + w (v(x, t | y) - v(x, t | no label)),

which for w = 0 is the conditional field and for w > 0 pushes further away
from "any digit" towards "this digit". Some texts (MIT 6.S184, the Flow Matching
Guide) write the same field as v(x | no label) + w' (v(x | y) - v(x | no label)) with
w' = 1 + w: their w' = 1 is our w = 0.

At each t this is the field the OT-path formula u = x/t + (1-t)/t grad log p_t
assigns to the score of p_t(x|y)^{1+w} p_t(x)^{-w}, but the guided ODE does *not*
sample p_1(x|y)^{1+w} p_1(x)^{-w}: tilting does not commute with the noising
(Bradley and Nakkiran 2024; Chidambaram et al. 2024). Notebook 07 measures this on a
labelled 2D mixture whose fields are exact (no training):

    target = labelled_eight_gaussians(std=0.3)                # component k has label k
    u = guided_mixture_field(target, y=0, w=1.0)              # exact (1+w) u(.|y) - w u(.)
    log_q = lambda x: tilted_log_density(x, target, 0, 1.0)   # log p(x|y)^{1+w} p(x)^{-w} + const
    ref = sample_grid_density(log_q, 1000, generator)          # exact samples of the tilted density

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

__all__ = ["drop_labels", "guided_velocity", "sample_guided", "train_guided", "TRAINING",
           "labelled_eight_gaussians", "mixture_ot_field", "guided_mixture_field", "tilted_log_density",
           "sample_grid_density"]

# the settings of notebook 07 (make bench trains with these, or longer)
TRAINING = dict(num_steps=700, batch_size=256, lr=2e-3, p_uncond=0.2, hidden=256, depth=3, seed=0)


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
                 device: torch.device | None = None, desc: str = "training", model: ConditionalMLP | None = None,
                 callback=None):
    """The training loop of notebook 07: OT path, label dropout, Adam with a cosine learning rate.

    Random numbers are drawn on the CPU from one generator, so a GPU sees the same batches.
    The model is built in torch's default dtype (float64 in notebook 07). Without ``device``:
    ``get_device()``, except Apple's MPS when the default dtype is float64 (MPS has none): the CPU.
    Returns the model (in eval mode, on ``device``) and the loss of every step. ``model``: train this one
    (built after ``seed_everything(seed)``, as the notebook does) instead of a new one; ``callback(step)`` is
    called after every optimiser step (``utils.references``).
    """
    check_points(x_train, "x_train")
    device = device or get_device()
    if device.type == "mps" and torch.get_default_dtype() == torch.float64:
        device = torch.device("cpu")  # MPS has no float64
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    num_classes = int(y_train.max()) + 1
    if model is None:
        model = ConditionalMLP(x_train.shape[1], num_classes, hidden=hidden, depth=depth)
    model = model.to(device)
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
        if callback is not None:
            callback(len(losses))
    return model.eval(), losses


# ---------------------------------------------------------------- guidance on a labelled 2D mixture, exactly

def labelled_eight_gaussians(radius: float = 2.0, std: float = 0.3):
    """The 8-Gaussians mixture (``utils.sde.eight_gaussians_mixture``); component k carries the label k."""
    from .mixtures import eight_gaussians_mixture

    return eight_gaussians_mixture(radius=radius, std=std)


def _components(target, y) -> torch.Tensor:
    k = torch.arange(target.means.shape[0]) if y is None else torch.as_tensor(y).reshape(-1)
    if k.numel() == 0 or k.min() < 0 or k.max() >= target.means.shape[0]:
        raise InputError(f"`y` must name components 0..{target.means.shape[0] - 1} of the mixture, got {y!r}.")
    return k


def mixture_ot_field(x: torch.Tensor, t, target, y=None) -> torch.Tensor:
    """Exact marginal field of the OT path x_t = t x1 + (1 - t) x0, x0 ~ N(0, I), towards the mixture
    ``target`` (a ``utils.sde.GaussianMixture``), restricted to the component ``y``: None (all of them),
    an int (one component, the class y), or an integer tensor of shape (n,) (each point's own class).

    Each component N(m, s^2 I) gives the Gaussian field E[x1 - x0 | x_t = x]
    = m + (t s^2 - (1 - t)) / (t^2 s^2 + (1 - t)^2) (x - t m), and the mixture's field is their average
    weighted by the posterior of the component given x_t. Defined for every t in [0, 1], where
    x/t + (1-t)/t grad log p_t (the same field) is singular at t = 0.
    """
    check_points(x, "x", dim=target.means.shape[1])
    per_point = isinstance(y, torch.Tensor) and y.ndim == 1 and y.numel() == x.shape[0] and x.shape[0] > 1
    if per_point:
        _components(target, y)
        mask = torch.arange(target.means.shape[0], device=x.device)[None] == y.to(x.device)[:, None]  # (n, K)
        y = None
    k = _components(target, y)
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    t = t.expand(x.shape[0]) if t.ndim == 0 else t.reshape(-1)
    means = target.means[k].to(x)
    var_k = (target.stds[k] ** 2).to(x)
    weights = target.weights[k].to(x)
    tt = t[:, None]  # (n, 1)
    var = tt ** 2 * var_k[None] + (1 - tt) ** 2  # (n, K)
    diff = x[:, None, :] - tt[:, :, None] * means[None]  # (n, K, d)
    d = x.shape[1]
    log_r = -0.5 * (diff ** 2).sum(-1) / var - 0.5 * d * torch.log(var) + torch.log(weights)[None]
    if per_point:
        log_r = log_r.masked_fill(~mask, float("-inf"))
    r = torch.softmax(log_r, dim=1)
    u_k = means[None] + ((tt * var_k[None] - (1 - tt)) / var)[:, :, None] * diff
    return (r[:, :, None] * u_k).sum(1)


def guided_mixture_field(target, y, w: float):
    """u(x, t) = (1 + w) u_t(x | y) - w u_t(x), both exact (``mixture_ot_field``), for ``solve_ode``.
    ``y``: one class (int) or each point's class (a tensor of shape (n,))."""
    _components(target, y)
    return lambda x, t: (1 + w) * mixture_ot_field(x, t, target, y) - w * mixture_ot_field(x, t, target)


def tilted_log_density(x: torch.Tensor, target, y: int, w: float) -> torch.Tensor:
    """log p(x|y)^{1+w} p(x)^{-w}, up to a constant: what guidance would sample if tilting commuted
    with noising. ``p(x|y)`` is component ``y`` of ``target`` (renormalised), ``p`` the whole mixture."""
    from .mixtures import mixture_log_prob

    check_points(x, "x", dim=target.means.shape[1])
    k = _components(target, y)
    log_cond = mixture_log_prob(x, target.means[k], target.stds[k], target.weights[k])
    log_all = mixture_log_prob(x, target.means, target.stds, target.weights)
    return (1 + w) * log_cond - w * log_all


def sample_grid_density(log_density, n: int, generator: torch.Generator | None = None, lim: float = 4.0,
                        cells: int = 400) -> torch.Tensor:
    """n samples of the 2D density exp(log_density) (unnormalised), normalised numerically on a grid.

    The density is evaluated at the centres of ``cells`` x ``cells`` squares covering [-lim, lim]^2; a
    square is drawn with probability proportional to its value, then a point uniformly inside it. The
    error is that of the midpoint rule: cells of width 2 lim / cells. Returns float64, shape (n, 2).
    """
    if not isinstance(n, int) or n <= 0:
        raise InputError(f"`n` must be a positive integer, got {n!r}.")
    h = 2 * lim / cells
    c = torch.linspace(-lim + h / 2, lim - h / 2, cells, dtype=torch.float64)
    gx, gy = torch.meshgrid(c, c, indexing="xy")
    centres = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    log_p = log_density(centres).reshape(-1).to(torch.float64)
    if not torch.isfinite(log_p).any():
        raise InputError("`log_density` is -inf or NaN everywhere on the grid; widen `lim`.")
    p = torch.exp(log_p - log_p.max())
    idx = torch.multinomial(p / p.sum(), n, replacement=True, generator=generator)
    return centres[idx] + h * (torch.rand(n, 2, generator=generator, dtype=torch.float64) - 0.5)
