"""Clear messages for bad input to ``utils`` (used by every notebook).

Functions in ``utils`` validate what they are given and raise
:class:`InputError` with a message that says what was expected and what
arrived. In a notebook, IPython shows only that message, not a traceback
through the inside of ``utils``; in scripts and tests it is an ordinary
``ValueError``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

__all__ = ["InputError", "describe", "check_tensor", "check_points", "batch_times", "check_times"]


class InputError(ValueError):
    """A wrong argument given to a ``utils`` function, with a message that teaches."""

    def _render_traceback_(self) -> list[str]:  # IPython hook: no traceback into utils
        return [f"InputError: {self}"]


def describe(x) -> str:
    """A short description of a value for messages: type, shape and dtype."""
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)} and dtype {str(x.dtype).replace('torch.', '')}"
    try:
        import numpy as np

        if isinstance(x, np.ndarray):
            return f"a numpy array of shape {x.shape} (a torch.Tensor was expected)"
    except ImportError:  # pragma: no cover
        pass
    if x is None:
        return "None (did you forget a `return`?)"
    return f"a {type(x).__name__}"


def check_tensor(x, name: str, ndim: int | None = None, last_dim: int | None = None,
                 finite: bool = True) -> torch.Tensor:
    """Raise :class:`InputError` unless ``x`` is a tensor of the given rank, last size, all finite."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"`{name}` must be a torch.Tensor, got {describe(x)}.")
    if ndim is not None and x.ndim != ndim:
        raise InputError(f"`{name}` must have {ndim} dimension(s), got {describe(x)}.")
    if last_dim is not None and (x.ndim == 0 or x.shape[-1] != last_dim):
        raise InputError(f"`{name}` must have last dimension {last_dim}, got {describe(x)}.")
    if finite and x.is_floating_point() and not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).sum().item()
        raise InputError(f"`{name}` contains {bad} NaN or infinite value(s).")
    return x


def check_points(x, name: str = "x", dim: int | None = None) -> torch.Tensor:
    """A batch of points: a finite floating tensor of shape (n, d)."""
    check_tensor(x, name, ndim=2, last_dim=dim)
    if not x.is_floating_point():
        raise InputError(f"`{name}` must be floating point, got {describe(x)}.")
    return x


def batch_times(t, x: torch.Tensor, name: str = "t") -> torch.Tensor:
    """Times for the batch x (n, d) as a tensor of shape (n,) with x's dtype and device.

    Accepts a float, a 0-d tensor, or a tensor of shape (n,) or (n, 1).
    """
    n = x.shape[0]
    if not isinstance(t, torch.Tensor):
        t = torch.tensor(float(t), dtype=x.dtype, device=x.device)
    t = t.to(dtype=x.dtype, device=x.device)
    if t.ndim == 0:
        t = t.expand(n)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.shape != (n,):
        raise InputError(f"`{name}` must be a float or have shape ({n},) for x of shape {tuple(x.shape)}, "
                         f"got {describe(t)}.")
    return t


def check_times(t, n: int, name: str = "t") -> torch.Tensor:
    """Times for a batch of n points: a float or a tensor of shape (n,) or (n, 1), in [0, 1]."""
    if isinstance(t, (int, float)):
        if not (0.0 <= t <= 1.0) or math.isnan(t):
            raise InputError(f"`{name}` must lie in [0, 1] (t=0 noise, t=1 data), got {t}.")
        return torch.full((n,), float(t))
    check_tensor(t, name)
    if t.ndim == 0:
        t = t.expand(n)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.shape != (n,):
        raise InputError(f"`{name}` must have shape ({n},) to match the points, got {describe(t)}.")
    if (t < 0).any() or (t > 1).any():
        raise InputError(f"`{name}` must lie in [0, 1] (t=0 noise, t=1 data); "
                         f"got values from {t.min().item():.3g} to {t.max().item():.3g}.")
    return t


def same_shape(shapes: Sequence[tuple], names: Sequence[str]) -> None:
    """Raise unless all shapes agree."""
    if len(set(shapes)) > 1:
        parts = ", ".join(f"`{n}` {s}" for n, s in zip(names, shapes))
        raise InputError(f"shapes must agree: {parts}.")
