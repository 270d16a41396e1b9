"""Issue 20: every check watches the answer's tensor inputs; an answer that changes one in place is named.

Each mutant returns the reference's (right) result but writes into one of its tensor arguments, as
`t *= 2`, `x += dt * k` or `y[mask] = null` would: the check must say which argument changed, whatever the
exercise, before any message about values.
"""
from __future__ import annotations

import functools
import inspect

import pytest
import torch

from utils.checks import exercises, run_check

# The mutant writes into its first tensor argument, or the one named here (the one a student would change).
ARGUMENT = {"1.2": 1, "2.3": 1, "3.1": 1, "3.2": 1, "3.3": 1, "3.4": 1, "3.5": 1, "4.5": 1, "5.1": 1,
            "5.5": 4, "5.6": 3, "6.1": 2, "6.3": 1, "6.4": 1, "6.5": 1, "7.3": 1, "7.4": 1}
# 0.1 takes no tensor (a function, two sizes and a generator): nothing to change in place
NOT_APPLICABLE = {"0.1"}


def _scribble(t: torch.Tensor) -> None:
    with torch.no_grad():  # a leaf that requires grad may be written under no_grad (as `.data` would)
        if t.is_floating_point():
            t.mul_(2).add_(0.25)
        elif t.dtype == torch.bool:
            t.logical_not_()
        else:
            t.add_(1)


def _mutant(ref, k: int | None):
    @functools.wraps(ref)
    def inplace(*args, **kwargs):
        clean = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        out = ref(*clean, **kwargs)
        tensors = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        target = k if k is not None and k in tensors else (tensors[0] if tensors else None)
        if target is not None:
            _scribble(args[target])
        return out
    inplace.__name__ = f"{ref.__name__}_inplace"
    return inplace


def _mutant_class(ref):
    class InPlace(ref):
        def forward(self, z):
            out = super().forward(z.clone())
            _scribble(z)
            return out
    InPlace.__name__ = ref.__name__
    return InPlace


@pytest.mark.parametrize("ex", [e for e in exercises() if e.id not in NOT_APPLICABLE], ids=lambda e: e.id)
def test_in_place_change_of_an_input_is_named(ex):
    ref = ex.reference
    mutant = _mutant_class(ref) if inspect.isclass(ref) else _mutant(ref, ARGUMENT.get(ex.id))
    res = run_check(ex.id, mutant)
    assert res.status == "failed", f"{ex.id}: an answer that changes its input in place {res.status}"
    assert "changed its argument" in res.message and "in place" in res.message, res.message


def test_the_message_names_the_argument():
    def scale_t(x1, t, sigma_min):  # the 5.7 / 5.1 mistake of the issue: `t` rescaled in place
        t *= 1.0
        return t * x1, 1 - (1 - sigma_min) * t
    res = run_check("5.1", scale_t)
    assert "changed its argument `t` in place" in res.message, res.message


def test_heun_in_place_update_is_named_not_a_convergence_order():
    def heun_step(u, x, t, dt):  # issue 20: an in-place `x += ...` was rejected for its convergence order
        k1 = u(x, t)
        x += 0.5 * dt * (k1 + u(x + dt * k1, t + dt))
        return x
    res = run_check("6.5", heun_step)
    assert "changed its argument `x` in place" in res.message, res.message
