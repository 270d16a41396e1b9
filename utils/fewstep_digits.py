"""Few-step digits (notebook 08): notebook 07's class-conditional flow distilled into a one-step map.

    teacher = load_reference("07_digits")[0]        # notebook 07's recipe, converged (or train_guided(...))
    student, losses = train_distilled_digits(teacher, num_steps=600)     # f(x, t, y) = x + (1 - t) F(x, t, y)
    x = digits_sampler(student)(x0, labels, nfe)                         # nfe steps towards the predicted digit
    row = judge_samples(x, labels, data, classifier)   # accuracy, NN median, W2 (07's measures), class spread

The student is a ``ConditionalMLP`` read through the consistency parametrisation of ``utils.fewstep``
(the boundary condition f(x, 1, y) = x holds for every network); it regresses the endpoints of the
teacher's Euler paths (without guidance), drawn once for random labels.
"""
from __future__ import annotations

from typing import Callable

import torch

from .digits import nn_distances
from .errors import InputError
from .fewstep import _check_nfe, _loop, consistency_fn
from .metrics import w2
from .models import ConditionalMLP
from .solvers import solve_ode

__all__ = ["train_distilled_digits", "digits_sampler", "teacher_sampler", "judge_samples", "within_class_spread"]


def train_distilled_digits(teacher: Callable, num_steps: int = 600, num_paths: int = 2000, teacher_steps: int = 20,
                           num_classes: int = 10, dim: int = 64, hidden: int = 256, depth: int = 3,
                           batch_size: int = 256, lr: float = 2e-3, seed: int = 0, desc: str = "distillation"):
    """Regress f(x_t, t, y) on the endpoint of the teacher's path through x_t (labels y drawn uniformly)."""
    if not isinstance(num_paths, int) or num_paths < 1:
        raise InputError(f"`num_paths` must be a positive integer, got {num_paths!r}.")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    y = torch.randint(0, num_classes, (num_paths,), generator=g)
    x0 = torch.randn(num_paths, dim, generator=g)
    with torch.no_grad():
        paths = solve_ode(lambda x, t: teacher(x, t, y), x0, num_steps=teacher_steps, method="euler",
                          return_path=True).path
    model = ConditionalMLP(dim, num_classes, hidden=hidden, depth=depth)

    def loss_fn(gen):
        i = torch.randint(0, num_paths, (batch_size,), generator=gen)
        k = torch.randint(0, teacher_steps, (batch_size,), generator=gen)
        t = k.to(paths.dtype) / teacher_steps
        f = consistency_fn(lambda x, s: model(x, s, y[i]), paths[k, i], t)
        return ((f - paths[-1, i]) ** 2).sum(1).mean()
    model, losses = _loop(model, loss_fn, num_steps, lr, seed, desc, None)
    model.cost["teacher_evals"] = num_paths * teacher_steps
    return model.eval(), losses


def digits_sampler(student) -> Callable:
    """sampler(x0, labels, nfe): nfe steps, each a fraction of the way to the predicted digit (clamped to [-1, 1])."""
    @torch.no_grad()
    def sample(x0, labels, nfe):
        nfe = _check_nfe(nfe)
        x = x0
        for k in range(nfe):
            t = k / nfe
            x = x + (1 / nfe) / (1 - t) * (consistency_fn(lambda z, s: student(z, s, labels), x, t) - x)
        return x.clamp(-1, 1)
    return sample


def teacher_sampler(teacher) -> Callable:
    """sampler(x0, labels, nfe): nfe Euler steps of the teacher's conditional field (clamped to [-1, 1])."""
    @torch.no_grad()
    def sample(x0, labels, nfe):
        return solve_ode(lambda x, t: teacher(x, t, labels), x0, num_steps=_check_nfe(nfe), method="euler").x.clamp(-1, 1)
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
