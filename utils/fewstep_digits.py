"""Few-step digits (notebook 08): the four few-step recipes of ``utils.fewstep``, class-conditional, on 07's digits.

    teacher = load_reference("07_digits")[0]               # notebook 07's flow, converged (or train_guided(...))
    student, _ = train_distilled_digits(teacher)           # f(x, t, y) = x + (1 - t) F(x, t, y): the endpoints
    cm, _ = train_consistency_digits(teacher)              # consistency distillation along the teacher's paths
    s, _ = train_shortcut_digits(data.x_train, data.y_train)   # s(x, t, d, y): two steps of d = one of 2d
    u, _ = train_meanflow_digits(data.x_train, data.y_train)   # u(z, r, t, y) = v - (t - r) du/dt
    x = digit_sampler("MeanFlow", u)(x0, labels, nfe)      # any method: nfe network evaluations, then clamp
    row = judge_samples(x, labels, data, classifier)       # accuracy, NN median, W2 (07's measures), class spread

Every model takes the label as its last input and is read through the same targets and samplers as
the 2D models of ``utils.fewstep`` (a label is bound to the network, so nothing is written twice):
distillation and consistency use a ``ConditionalMLP`` in the consistency parametrisation (the
boundary condition f(x, 1, y) = x holds for every network); shortcut and MeanFlow a
``ConditionalTwoTimeMLP``. The teacher is read without guidance: v(x, t | y).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .digits import nn_distances
from .errors import InputError, batch_times, check_points
from .fewstep import (_check_nfe, _loop, consistency_fn, consistency_sampler, consistency_target, meanflow_sampler,
                      meanflow_target, shortcut_sampler, shortcut_target)
from .metrics import w2
from .models import ConditionalMLP, time_features
from .solvers import solve_ode

__all__ = ["ConditionalTwoTimeMLP", "train_distilled_digits", "train_consistency_digits", "train_shortcut_digits",
           "train_meanflow_digits", "digit_sampler", "teacher_sampler", "judge_samples",
           "within_class_spread", "DIGIT_METHODS"]


class ConditionalTwoTimeMLP(ConditionalMLP):
    """g(x, a, b, y): notebook 07's ``ConditionalMLP`` with a second time input (shortcut: (t, d); MeanFlow: (r, t))."""

    def __init__(self, dim: int = 64, num_classes: int = 10, hidden: int = 128, depth: int = 3, num_freqs: int = 4):
        super().__init__(dim, num_classes, hidden, depth, num_freqs)
        self.inp = nn.Linear(dim + 2 * (1 + 2 * num_freqs), hidden)

    def forward(self, x: torch.Tensor, a, b, y: torch.Tensor) -> torch.Tensor:
        check_points(x, "x", dim=self.dim)
        a, b = batch_times(a, x, "first time"), batch_times(b, x, "second time")
        if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],) or y.is_floating_point():
            raise InputError(f"`y` must be integer labels of shape ({x.shape[0]},), got "
                             f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}.")
        feats = torch.cat([x, time_features(a.to(x.dtype), self.num_freqs),
                           time_features(b.to(x.dtype), self.num_freqs)], 1)
        return self.net(self.inp(feats) + self.label_embedding(y.to(x.device)))


def _bind(model: Callable, y: torch.Tensor) -> Callable:
    """The network with its label bound: model(x, *times, y) as a function of (x, *times)."""
    return lambda x, *times: model(x, *times, y)


def _teacher_paths(teacher: Callable, num_paths: int, teacher_steps: int, num_classes: int, dim: int, g):
    y = torch.randint(0, num_classes, (num_paths,), generator=g)
    x0 = torch.randn(num_paths, dim, generator=g)
    with torch.no_grad():
        paths = solve_ode(_bind(teacher, y), x0, num_steps=teacher_steps, method="euler", return_path=True).path
    return y, paths


def _check_paths(num_paths) -> None:
    if not isinstance(num_paths, int) or num_paths < 1:
        raise InputError(f"`num_paths` must be a positive integer, got {num_paths!r}.")


def train_distilled_digits(teacher: Callable, num_steps: int = 600, num_paths: int = 2000, teacher_steps: int = 20,
                           num_classes: int = 10, dim: int = 64, hidden: int = 256, depth: int = 3,
                           batch_size: int = 256, lr: float = 2e-3, seed: int = 0, model: nn.Module | None = None,
                           desc: str = "distillation", callback: Callable | None = None):
    """Regress f(x_t, t, y) on the endpoint of the teacher's path through x_t (labels y drawn uniformly)."""
    _check_paths(num_paths)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    y, paths = _teacher_paths(teacher, num_paths, teacher_steps, num_classes, dim, g)
    model = ConditionalMLP(dim, num_classes, hidden=hidden, depth=depth) if model is None else model

    def loss_fn(gen):
        i = torch.randint(0, num_paths, (batch_size,), generator=gen)
        k = torch.randint(0, teacher_steps, (batch_size,), generator=gen)
        t = k.to(paths.dtype) / teacher_steps
        return ((consistency_fn(_bind(model, y[i]), paths[k, i], t) - paths[-1, i]) ** 2).sum(1).mean()
    model, losses = _loop(model, loss_fn, num_steps, lr, seed, desc, callback)
    model.cost["teacher_evals"] = num_paths * teacher_steps
    return model.eval(), losses


def train_consistency_digits(teacher: Callable, num_steps: int = 600, num_paths: int = 2000, teacher_steps: int = 20,
                             num_classes: int = 10, dim: int = 64, hidden: int = 256, depth: int = 3,
                             batch_size: int = 256, lr: float = 2e-3, seed: int = 0, model: nn.Module | None = None,
                             desc: str = "consistency", callback: Callable | None = None):
    """Consistency distillation on the teacher's own Euler paths: |f(x_k, t_k, y) - sg f(x_k + dt v, t_k + dt, y)|^2.

    x_k is a point of the teacher's path at grid time t_k = k / teacher_steps; the target is
    ``utils.fewstep.consistency_target`` (one teacher Euler step, then the model's own map, no gradient).
    """
    _check_paths(num_paths)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    y, paths = _teacher_paths(teacher, num_paths, teacher_steps, num_classes, dim, g)
    model = ConditionalMLP(dim, num_classes, hidden=hidden, depth=depth) if model is None else model

    def loss_fn(gen):
        i = torch.randint(0, num_paths, (batch_size,), generator=gen)
        k = torch.randint(0, teacher_steps, (batch_size,), generator=gen)
        t = k.to(paths.dtype) / teacher_steps
        net = _bind(model, y[i])
        target = consistency_target(net, _bind(teacher, y[i]), paths[k, i], t, 1.0 / teacher_steps)
        return ((consistency_fn(net, paths[k, i], t) - target) ** 2).sum(1).mean()
    model, losses = _loop(model, loss_fn, num_steps, lr, seed, desc, callback)
    model.cost["teacher_evals"] = num_paths * teacher_steps + num_steps * batch_size
    return model.eval(), losses


def _data_batch(x_train, y_train, batch_size, gen):
    i = torch.randint(0, len(x_train), (batch_size,), generator=gen)
    x1 = x_train[i]
    return torch.randn(x1.shape, generator=gen, dtype=x1.dtype), x1, y_train[i]


def train_shortcut_digits(x_train: torch.Tensor, y_train: torch.Tensor, num_steps: int = 600, levels: int = 6,
                          self_fraction: float = 0.25, hidden: int = 128, depth: int = 3, batch_size: int = 256,
                          lr: float = 2e-3, seed: int = 0, model: nn.Module | None = None, desc: str = "shortcut",
                          callback: Callable | None = None):
    """``utils.fewstep.train_shortcut``'s objective with labels: flow matching at d = 0 on a part of each
    batch, the self-consistency target ``shortcut_target`` (label bound) at 2d = 2^-k on the rest."""
    check_points(x_train, "x_train")
    model = ConditionalTwoTimeMLP(x_train.shape[1], int(y_train.max()) + 1, hidden, depth) if model is None else model
    n_self = int(round(batch_size * self_fraction))

    def loss_fn(gen):
        x0, x1, y = _data_batch(x_train, y_train, batch_size, gen)
        t = torch.rand(batch_size, generator=gen, dtype=x0.dtype)
        d2 = 2.0 ** -torch.randint(0, levels, (batch_size,), generator=gen).to(x0.dtype)
        d2[n_self:] = 0
        t = t * (1 - d2)
        xt = (1 - t)[:, None] * x0 + t[:, None] * x1
        target = (x1 - x0).clone()
        target[:n_self] = shortcut_target(_bind(model, y[:n_self]), xt[:n_self], t[:n_self], d2[:n_self] / 2)
        return ((model(xt, t, d2, y) - target) ** 2).sum(1).mean()
    return _loop(model, loss_fn, num_steps, lr, seed, desc, callback)


def train_meanflow_digits(x_train: torch.Tensor, y_train: torch.Tensor, num_steps: int = 600,
                          jump_fraction: float = 0.25, hidden: int = 128, depth: int = 3, batch_size: int = 256,
                          lr: float = 2e-3, seed: int = 0, model: nn.Module | None = None, desc: str = "MeanFlow",
                          callback: Callable | None = None):
    """``utils.fewstep.train_meanflow``'s objective with labels: u(z_t, r, t, y) regressed on ``meanflow_target``
    (the label bound, so the jvp runs over (z, r, t) only); t <= r, r = t on the rest of the batch."""
    check_points(x_train, "x_train")
    model = ConditionalTwoTimeMLP(x_train.shape[1], int(y_train.max()) + 1, hidden, depth) if model is None else model
    n_jump = int(round(batch_size * jump_fraction))

    def loss_fn(gen):
        x0, x1, y = _data_batch(x_train, y_train, batch_size, gen)
        a, b = torch.rand(2, batch_size, generator=gen, dtype=x0.dtype)
        t, r = torch.minimum(a, b), torch.maximum(a, b)
        r = torch.cat([r[:n_jump], t[n_jump:]])
        z = (1 - t)[:, None] * x0 + t[:, None] * x1
        target = meanflow_target(_bind(model, y), z, r, t, x1 - x0)
        return ((model(z, r, t, y) - target) ** 2).sum(1).mean()
    return _loop(model, loss_fn, num_steps, lr, seed, desc, callback)


DIGIT_METHODS = {"distillation": consistency_sampler, "consistency": consistency_sampler,
                 "shortcut": shortcut_sampler, "MeanFlow": meanflow_sampler}


def digit_sampler(method: str, model: Callable) -> Callable:
    """sampler(x0, labels, nfe): ``method``'s 2D sampler of ``utils.fewstep``, labels bound, clamped to [-1, 1]."""
    if method not in DIGIT_METHODS:
        raise InputError(f"unknown method {method!r}; one of {', '.join(DIGIT_METHODS)}.")

    @torch.no_grad()
    def sample(x0, labels, nfe):
        return DIGIT_METHODS[method](_bind(model, labels))(x0, _check_nfe(nfe)).clamp(-1, 1)
    return sample


def teacher_sampler(teacher) -> Callable:
    """sampler(x0, labels, nfe): nfe Euler steps of the teacher's conditional field (clamped to [-1, 1])."""
    @torch.no_grad()
    def sample(x0, labels, nfe):
        return solve_ode(_bind(teacher, labels), x0, num_steps=_check_nfe(nfe), method="euler").x.clamp(-1, 1)
    return sample


def judge_samples(x: torch.Tensor, labels: torch.Tensor, data, classifier) -> dict:
    """07's measures of digits drawn for ``labels`` (those of the test set): accuracy, NN median, W2, and the
    within-class spread (mean distance of a sample to its class's mean sample: 0 when a class collapses)."""
    return {"accuracy": classifier.accuracy(x, labels), "nn": float(nn_distances(x, data.x_train).median()),
            "w2": w2(x, data.x_test), "spread": within_class_spread(x, labels)}


def within_class_spread(x: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over the samples of |x_i - mean of x's samples with x_i's label|."""
    centres = torch.stack([x[labels == c].mean(0) if (labels == c).any() else torch.zeros(x.shape[1])
                           for c in range(int(labels.max()) + 1)])
    return float((x - centres[labels]).norm(dim=1).mean())
