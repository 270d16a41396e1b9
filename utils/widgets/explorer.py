"""The vector field explorer (taught in notebook 03; reused with learned and exact fields in 04 to 06).

    VectorFieldExplorer(u, x0=None, density=None, lim=3.0)

takes any field ``u(x, t)`` (x: (n, 2), t: (n,), returns (n, 2)) and shows,
for the time chosen on the slider: the field as arrows (optionally
streamlines), particles moved by the flow from t0 to that time, and, when
``density(x, t)`` (a log-density) is given, the density p_t beside it.

Trajectories are computed once, with RK4, when the widget is made; the field
and density on the grid are computed once per stored time and kept, so moving
the slider only updates the artists. A model on a GPU can be passed as a field:
points are moved to the model's device by the caller's wrapper, the explorer
works on the CPU.
"""
from __future__ import annotations

from typing import Callable

import ipywidgets as W
import numpy as np
import torch
from matplotlib.collections import LineCollection

from ..errors import InputError, check_points
from ..plotting import COLORS
from ..solvers import solve_ode
from .base import FigureWidget, one_thread, readout_format

__all__ = ["VectorFieldExplorer", "field_on_grid", "set_arrows"]

TRAIL = 8        # frames of trail behind each particle
TRAILED = 60     # particles drawn with a trail
DENSITY_GRID = 80


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


def set_arrows(quiver, U: np.ndarray, V: np.ndarray, spacing: float) -> None:
    """Update a quiver in place: the longest arrow spans one grid spacing, shade by speed."""
    speed = np.hypot(U, V)
    top = float(speed.max())
    quiver.scale = (top if top > 0 else 1.0) / spacing
    quiver.set_UVC(U, V, speed)
    # shade from mid grey (the slowest arrow) to black (the fastest): from white, slow arrows vanished
    quiver.set_clim(-0.6 * (top if top > 0 else 1.0), top if top > 0 else 1.0)


def trail_segments(path: np.ndarray) -> list[np.ndarray]:
    """(frames, n, 2) -> one polyline per particle."""
    return [path[:, i] for i in range(path.shape[1])] if path.shape[0] > 1 else []


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
        if particles_kind not in COLORS:
            raise InputError(f"`particles_kind` must be one of {sorted(COLORS)}, got {particles_kind!r}.")
        self.u, self.density, self.lim, self.grid_size = u, density, lim, grid_size
        self.title, self.particles_kind = title, particles_kind
        self.t0, self.t1 = float(t0), float(t1)
        with torch.no_grad(), one_thread():
            sol = solve_ode(u, x0.to(torch.get_default_dtype()), self.t0, self.t1, num_steps=(num_frames - 1) * steps_per_frame,
                            method="rk4", return_path=True)
        self.times = sol.times[::steps_per_frame].float()
        self.trajectories = sol.path[::steps_per_frame].detach().cpu()  # (num_frames, n, 2)
        self._fields: dict[int, tuple] = {}
        self._densities: dict[int, np.ndarray] = {}
        step = (self.t1 - self.t0) / (num_frames - 1)
        self.t = W.FloatSlider(value=self.t0, min=min(self.t0, self.t1), max=max(self.t0, self.t1),
                               step=abs(step), description="t", readout_format=readout_format(step))
        # check boxes as wide as their labels, beside the slider (the default 300 px each spread them thin)
        self.streamlines = W.Checkbox(value=False, description="streamlines", indent=False,
                                      layout=W.Layout(width="auto", margin="0 0 0 1.5em"))
        self.trails = W.Checkbox(value=True, description="trails", indent=False,
                                 layout=W.Layout(width="auto", margin="0 0 0 1.5em"))
        # one panel: square axes in a figure a little wider than tall (room for the labels)
        super().__init__([self.t, self.streamlines, self.trails], figsize=(8.6, 4.4) if density else (4.8, 4.4),
                         ncols=2 if density else 1)

    def frame(self) -> int:
        """Index of the stored frame nearest the slider's time."""
        return int(torch.argmin((self.times - self.t.value).abs()))

    def particles(self) -> torch.Tensor:
        """Particle positions at the slider's time, (n, 2)."""
        return self.trajectories[self.frame()]

    def field(self, k: int) -> tuple:
        """(X, Y, U, V) of the field at stored frame k (computed once)."""
        if k not in self._fields:
            self._fields[k] = field_on_grid(self.u, float(self.times[k]), self.lim, self.grid_size)
        return self._fields[k]

    def density_image(self, k: int) -> np.ndarray:
        """p_t on a grid at stored frame k (computed once)."""
        if k not in self._densities:
            c = torch.linspace(-self.lim, self.lim, DENSITY_GRID)
            gx, gy = torch.meshgrid(c, c, indexing="xy")
            pts = torch.stack([gx.flatten(), gy.flatten()], 1)
            with torch.no_grad():
                logp = self.density(pts, torch.full((pts.shape[0],), float(self.times[k])))
            self._densities[k] = torch.exp(logp).reshape(DENSITY_GRID, DENSITY_GRID).detach().cpu().numpy()
        return self._densities[k]

    def build(self) -> None:
        ax, lim = self.axes[0], self.lim
        X, Y, U, V = self.field(0)
        self.quiver = ax.quiver(X, Y, U, V, np.hypot(U, V), cmap="Greys", angles="xy", scale_units="xy",
                                alpha=0.8)
        self.trail_lines = LineCollection([], colors=COLORS["path"], linewidths=0.6, alpha=0.6)
        ax.add_collection(self.trail_lines)
        self.stream_artists: list = []
        self.dots = ax.scatter([], [], s=6, color=COLORS[self.particles_kind], zorder=3, label="particles")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal",
                   xlabel="first coordinate", ylabel="second coordinate")
        legend = ax.legend(loc="upper right", fontsize=8)
        self.live = [self.quiver, self.trail_lines, self.dots, legend, ax.title]
        if self.density is not None:
            ax2 = self.axes[1]
            self.density_artist = ax2.imshow(np.zeros((DENSITY_GRID, DENSITY_GRID)), origin="lower",
                                             extent=(-lim, lim, -lim, lim), cmap="Oranges")
            self.dots2 = ax2.scatter([], [], s=3, color=COLORS[self.particles_kind], alpha=0.7)
            ax2.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal",
                   xlabel="first coordinate", ylabel="second coordinate")
            self.live += [self.density_artist, self.dots2, ax2.title]

    def update(self) -> None:
        ax = self.axes[0]
        k = self.frame()
        t = float(self.times[k])
        X, Y, U, V = self.field(k)
        set_arrows(self.quiver, U, V, 2 * self.lim / (self.grid_size - 1))
        for artist in self.stream_artists:  # streamlines cannot be updated in place: only they are remade
            artist.remove()
            self.live.remove(artist)
        self.stream_artists = []
        if self.streamlines.value:
            before = set(ax.get_children())
            ax.streamplot(X, Y, U, V, color=COLORS["path"], density=1.0, linewidth=0.8)
            self.stream_artists = [a for a in ax.get_children() if a not in before]  # lines and arrow heads
            self.live += self.stream_artists
        shown = self.trails.value and k > 0
        self.trail_lines.set_segments(
            trail_segments(self.trajectories[max(0, k - TRAIL): k + 1, :TRAILED].numpy()) if shown else [])
        p = self.particles().numpy()
        self.dots.set_offsets(p)
        ax.set_title(f"{self.title}, t = {t:.2f}")
        if self.density is not None:
            dens = self.density_image(k)
            self.density_artist.set_data(dens)
            self.density_artist.set_clim(0.0, float(dens.max()) or 1.0)
            self.dots2.set_offsets(p)
            self.axes[1].set_title(f"density $p_t$ and particles, t = {t:.2f}")
