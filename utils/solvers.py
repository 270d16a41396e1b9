"""ODE solvers that count function evaluations (taught in notebook 03, used from 03 on).

A vector field is a callable ``u(x, t)`` with x of shape (n, d) and t of
shape (n,), returning (n, d). Time runs from t=0 (noise) to t=1 (data);
integrating from t0 > t1 runs the flow backwards.

    sol = solve_ode(u, x0, num_steps=8, method="rk4")   # sol.x, sol.nfe, sol.path
    sol = solve_ode(u, x0, method="dopri5")              # adaptive, torchdiffeq

``nfe`` (number of function evaluations) is the cost measure the course
compares samplers by: Euler costs 1 per step, midpoint 2, RK4 4.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .errors import InputError, check_points

__all__ = ["euler_step", "midpoint_step", "rk4_step", "STEPPERS", "NFECounter", "ODESolution",
           "solve_ode"]

Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _times(t: float, x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)


def euler_step(u: Field, x: torch.Tensor, t: float, dt: float) -> torch.Tensor:
    """x_{t+dt} = x_t + dt u(x_t, t)."""
    return x + dt * u(x, _times(t, x))


def midpoint_step(u: Field, x: torch.Tensor, t: float, dt: float) -> torch.Tensor:
    """Evaluate the field half a step ahead, then take the full step with it."""
    x_mid = x + 0.5 * dt * u(x, _times(t, x))
    return x + dt * u(x_mid, _times(t + 0.5 * dt, x))


def rk4_step(u: Field, x: torch.Tensor, t: float, dt: float) -> torch.Tensor:
    """The classical fourth-order Runge-Kutta step."""
    k1 = u(x, _times(t, x))
    k2 = u(x + 0.5 * dt * k1, _times(t + 0.5 * dt, x))
    k3 = u(x + 0.5 * dt * k2, _times(t + 0.5 * dt, x))
    k4 = u(x + dt * k3, _times(t + dt, x))
    return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


STEPPERS = {"euler": euler_step, "midpoint": midpoint_step, "rk4": rk4_step}


class NFECounter:
    """Wrap a field and count how often it is evaluated."""

    def __init__(self, u: Field):
        self.u, self.nfe = u, 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        out = self.u(x, t)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise InputError(f"the vector field must return the shape of x, {tuple(x.shape)}; got {got}.")
        return out


@dataclass
class ODESolution:
    x: torch.Tensor  # the state at t1, (n, d)
    nfe: int  # function evaluations used
    times: torch.Tensor  # (k,) the times of path
    path: torch.Tensor | None = None  # (k, n, d) states at `times`, if asked for


def solve_ode(u: Field, x0: torch.Tensor, t0: float = 0.0, t1: float = 1.0, num_steps: int = 100,
              method: str = "euler", return_path: bool = False, rtol: float = 1e-5,
              atol: float = 1e-5) -> ODESolution:
    """Integrate dx/dt = u(x, t) from t0 to t1 starting at x0.

    Fixed-step methods ("euler", "midpoint", "rk4") take ``num_steps`` equal steps;
    "dopri5" (and any other torchdiffeq method) adapts its steps to ``rtol``/``atol``,
    reporting the path at ``num_steps + 1`` equally spaced times if asked.
    """
    check_points(x0, "x0")
    if not callable(u):
        raise InputError(f"`u` must be a callable u(x, t), got {type(u).__name__}.")
    if not isinstance(num_steps, int) or num_steps < 1:
        raise InputError(f"`num_steps` must be a positive integer, got {num_steps!r}.")
    field = NFECounter(u)
    times = torch.linspace(t0, t1, num_steps + 1, dtype=x0.dtype)
    if method in STEPPERS:
        step, dt = STEPPERS[method], (t1 - t0) / num_steps
        x, path = x0, [x0] if return_path else None
        for k in range(num_steps):
            x = step(field, x, t0 + k * dt, dt)
            if path is not None:
                path.append(x)
        return ODESolution(x, field.nfe, times, torch.stack(path) if path is not None else None)
    try:
        from torchdiffeq import odeint
    except ImportError as e:  # pragma: no cover
        raise InputError("method 'dopri5' needs torchdiffeq (pip install torchdiffeq)") from e
    n = x0.shape[0]
    func = lambda t, x: field(x, t.to(x.dtype).expand(n))  # noqa: E731
    ts = times if return_path else torch.tensor([t0, t1], dtype=x0.dtype)
    try:
        out = odeint(func, x0, ts.to(x0.device), method=method, rtol=rtol, atol=atol)
    except (AssertionError, ValueError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"torchdiffeq could not use method {method!r}: {e}. "
                         f"Fixed-step methods here: {sorted(STEPPERS)}.") from None
    return ODESolution(out[-1], field.nfe, ts, out if return_path else None)
