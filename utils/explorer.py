"""The vector field explorer (taught in notebook 03; reused with learned and exact fields in 04 to 06).

    VectorFieldExplorer(u, x0=None, density=None, lim=3.0)

takes any field ``u(x, t)`` (x: (n, 2), t: (n,), returns (n, 2)) and shows,
for the time chosen on the slider: the field as arrows (optionally
streamlines), particles moved by the flow from t0 to that time, and, when
``density(x, t)`` (a log-density) is given, the density p_t beside it.

Trajectories are computed once, with RK4, when the widget is made; moving the
slider only redraws. A model on a GPU can be passed as a field: points are
moved to the model's device by the caller's wrapper, the explorer works on
the CPU.
"""
from __future__ import annotations

from typing import Callable

import ipywidgets as W
import numpy as np
import torch

from .errors import InputError, check_points
from .plotting import COLORS
from .solvers import solve_ode
from .widgets import FigureWidget

__all__ = ["VectorFieldExplorer", "field_on_grid"]


def field_on_grid(u: Callable, t: float, lim: float, size: int) -> tuple[np.ndarray, ...]:
    """Grid coordinates (X, Y) and field components (U, V) of u(., t) on a size x size grid."""
    c = torch.linspace(-lim, lim, size)
    gx, gy = torch.meshgrid(c, c, indexing="xy")
    pts = torch.stack([gx.flatten(), gy.flatten()], 1)
    with torch.no_grad():
        vel = u(pts, torch.full((pts.shape[0],), float(t)))
    if not isinstance(vel, torch.Tensor) or vel.shape != pts.shape:
        raise InputError(f"the field must map points of shape {tuple(pts.shape)} to the same shape, got "
                         f"{tuple(vel.shape) if isinstance(vel, torch.Tensor) else type(vel).__name__}.")
    vel = vel.detach().cpu().float()
    return (gx.numpy(), gy.numpy(), vel[:, 0].reshape(size, size).numpy(), vel[:, 1].reshape(size, size).numpy())


class VectorFieldExplorer(FigureWidget):
    """Time slider, arrows (or streamlines), particles moved by the flow, and the density if known."""

    def __init__(self, u: Callable, x0: torch.Tensor | None = None, density: Callable | None = None,
                 lim: float = 3.0, grid_size: int = 17, num_frames: int = 41, steps_per_frame: int = 2,
                 t0: float = 0.0, t1: float = 1.0, n_particles: int = 300, seed: int = 0,
                 title: str = "vector field", particles_kind: str = "model"):
        if not callable(u):
            raise InputError(f"`u` must be a callable u(x, t), got {type(u).__name__}.")
        if x0 is None:
            x0 = torch.randn(n_particles, 2, generator=torch.Generator().manual_seed(seed))
        check_points(x0, "x0", dim=2)
        if num_frames < 2:
            raise InputError(f"`num_frames` must be at least 2, got {num_frames}.")
        self.u, self.density, self.lim, self.grid_size = u, density, lim, grid_size
        self.title, self.particles_kind = title, particles_kind
        self.t0, self.t1 = float(t0), float(t1)
        with torch.no_grad():
            sol = solve_ode(u, x0.float(), self.t0, self.t1, num_steps=(num_frames - 1) * steps_per_frame,
                            method="rk4", return_path=True)
        self.times = sol.times[::steps_per_frame].float()
        self.trajectories = sol.path[::steps_per_frame].detach().cpu()  # (num_frames, n, 2)
        step = (self.t1 - self.t0) / (num_frames - 1)
        self.t = W.FloatSlider(value=self.t0, min=min(self.t0, self.t1), max=max(self.t0, self.t1),
                               step=abs(step), description="t", readout_format=".2f")
        self.streamlines = W.Checkbox(value=False, description="streamlines")
        self.trails = W.Checkbox(value=True, description="trails")
        super().__init__([self.t, self.streamlines, self.trails], figsize=(9 if density else 5, 4.4),
                         ncols=2 if density else 1)

    def frame(self) -> int:
        """Index of the stored frame nearest the slider's time."""
        return int(torch.argmin((self.times - self.t.value).abs()))

    def particles(self) -> torch.Tensor:
        """Particle positions at the slider's time, (n, 2)."""
        return self.trajectories[self.frame()]

    def draw(self) -> None:
        ax = self.axes[0]
        k, t = self.frame(), float(self.times[self.frame()])
        X, Y, U, V = field_on_grid(self.u, t, self.lim, self.grid_size)
        if self.streamlines.value:
            ax.streamplot(X, Y, U, V, color=COLORS["path"], density=1.0, linewidth=0.8)
        speed = np.hypot(U, V)
        self.quiver = ax.quiver(X, Y, U, V, speed, cmap="Greys", angles="xy", alpha=0.8)
        if self.trails.value and k > 0:
            lo = max(0, k - 8)
            trail = self.trajectories[lo : k + 1, :60].numpy()
            ax.plot(trail[:, :, 0], trail[:, :, 1], color=COLORS["path"], lw=0.6, alpha=0.6)
        p = self.particles().numpy()
        self.dots = ax.scatter(p[:, 0], p[:, 1], s=6, color=COLORS[self.particles_kind], zorder=3,
                               label="particles")
        ax.set(xlim=(-self.lim, self.lim), ylim=(-self.lim, self.lim), aspect="equal",
               xlabel="$x_1$", ylabel="$x_2$", title=f"{self.title}, t = {t:.2f}")
        ax.legend(loc="upper right")
        if self.density is not None:
            ax2 = self.axes[1]
            c = torch.linspace(-self.lim, self.lim, 80)
            gx, gy = torch.meshgrid(c, c, indexing="xy")
            pts = torch.stack([gx.flatten(), gy.flatten()], 1)
            with torch.no_grad():
                dens = torch.exp(self.density(pts, torch.full((pts.shape[0],), t))).reshape(80, 80)
            ax2.imshow(dens.numpy(), origin="lower", extent=(-self.lim, self.lim, -self.lim, self.lim),
                       cmap="Oranges")
            ax2.scatter(p[:, 0], p[:, 1], s=3, color=COLORS[self.particles_kind], alpha=0.7)
            ax2.set(xlim=(-self.lim, self.lim), ylim=(-self.lim, self.lim), aspect="equal",
                    xlabel="$x_1$", ylabel="$x_2$", title=f"density $p_t$ and particles, t = {t:.2f}")
