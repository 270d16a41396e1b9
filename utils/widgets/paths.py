"""The path explorer: Gaussian probability paths of a small data set, exactly (notebook 05).

    PathExplorer(data=None, lim=3.0)

Choose the path (OT or VP), sigma_min (OT only) and the time t. Left: the
exact marginal field u_t of the point cloud ``data`` (arrows) over the
marginal density p_t (shaded), and particles carried from N(0, I) by that
field. Right: the conditional field u_t(x | x1) of the chosen data point x1,
and the same noise samples moved by its conditional flow
psi_t(x0) = mu_t(x1) + sigma_t x0. Built on the arrows of the vector field
explorer of notebook 03 (:func:`utils.widgets.explorer.field_on_grid`).
"""
from __future__ import annotations

import ipywidgets as W
import numpy as np
import torch
from matplotlib.collections import LineCollection

from ..datasets import moons
from ..errors import InputError, check_points
from ..paths import GaussianPath, OTPath, VPPath
from ..plotting import COLORS
from ..solvers import solve_ode
from .base import FigureWidget, one_thread, readout_format
from .explorer import field_on_grid, set_arrows, trail_segments

__all__ = ["PathExplorer", "make_path"]

T_END = 0.99  # the VP path (and OT with sigma_min = 0) has sigma_1 = 0: the fields blow up at t = 1
GRID = 70


def make_path(name: str, sigma_min: float = 0.0) -> GaussianPath:
    """'OT' -> OTPath(sigma_min); 'VP' -> VPPath()."""
    if name == "OT":
        return OTPath(sigma_min)
    if name == "VP":
        return VPPath()
    raise InputError(f"`path` must be 'OT' or 'VP', got {name!r}.")


class PathExplorer(FigureWidget):
    """Path, sigma_min and t controls; marginal field, density and particles; a conditional field."""

    def __init__(self, data: torch.Tensor | None = None, lim: float = 3.0, grid_size: int = 15,
                 num_frames: int = 34, n_particles: int = 200, seed: int = 0):
        data = moons(48, seed=seed) if data is None else data
        check_points(data, "data", dim=2)
        if num_frames < 2:
            raise InputError(f"`num_frames` must be at least 2, got {num_frames}.")
        self.data, self.lim, self.grid_size, self.num_frames = data.to(torch.get_default_dtype()), lim, grid_size, num_frames
        self.x0 = torch.randn(n_particles, 2, generator=torch.Generator().manual_seed(seed + 1))
        self.times = torch.linspace(0.0, T_END, num_frames)
        self._cache: dict = {}
        self.path_name = W.ToggleButtons(options=["OT", "VP"], value="OT", description="path",
                                         style={"button_width": "3.5em"})
        self.sigma_min = W.FloatSlider(value=0.05, min=0.0, max=0.5, step=0.05, description="sigma_min")
        step = float(T_END / (num_frames - 1))
        # starts on a frame (near 0.5), with a readout as precise as the step: the value shown is the time drawn
        self.t = W.FloatSlider(value=round(0.5 / step) * step, min=0.0, max=T_END, step=step, description="t",
                               readout_format=readout_format(step))
        self.x1_index = W.IntSlider(value=0, min=0, max=data.shape[0] - 1, description="x1 index")
        super().__init__([self.path_name, self.sigma_min, self.t, self.x1_index], figsize=(9.6, 4.6), ncols=2)

    # ------------------------------------------------------------------ the math the figure shows
    @property
    def path(self) -> GaussianPath:
        return make_path(self.path_name.value, self.sigma_min.value)

    @property
    def x1(self) -> torch.Tensor:
        return self.data[self.x1_index.value]

    def frame(self) -> int:
        return int(torch.argmin((self.times - self.t.value).abs()))

    def time(self) -> float:
        return float(self.times[self.frame()])

    def marginal_field(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.path.marginal_velocity(x, self.data, t)

    def conditional_field(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.path.velocity(x, self.x1.expand_as(x), t)

    def _cached(self, what: str, compute):
        key = (what, repr(self.path), self.frame())
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def trajectories(self) -> torch.Tensor:
        """Particles moved by the marginal field, at every stored time: (num_frames, n, 2); cached per path."""
        key = ("trajectories", repr(self.path))
        if key not in self._cache:
            with torch.no_grad(), one_thread():
                sol = solve_ode(self.marginal_field, self.x0, 0.0, T_END, num_steps=2 * (self.num_frames - 1),
                                method="rk4", return_path=True)
            self._cache[key] = sol.path[::2]
        return self._cache[key]

    def particles(self) -> torch.Tensor:
        return self.trajectories()[self.frame()]

    def conditional_particles(self) -> torch.Tensor:
        """psi_t(x0 | x1) = mu_t(x1) + sigma_t x0 for the chosen x1."""
        return self.path.sample(self.x0, self.x1.expand_as(self.x0), self.time())

    def marginal_density(self) -> np.ndarray:
        """p_t on a grid (cached per path and time)."""
        def compute():
            c = torch.linspace(-self.lim, self.lim, GRID)
            gx, gy = torch.meshgrid(c, c, indexing="xy")
            pts = torch.stack([gx.flatten(), gy.flatten()], 1)
            return self.path.marginal_log_prob(pts, self.data, self.time()).exp().reshape(GRID, GRID).numpy()
        return self._cached("density", compute)

    # ------------------------------------------------------------------ drawing
    def build(self) -> None:
        ax_m, ax_c = self.axes
        lim = self.lim
        self.density_artist = ax_m.imshow(np.zeros((GRID, GRID)), origin="lower", extent=(-lim, lim, -lim, lim),
                                          cmap="Oranges", alpha=0.6)
        X, Y, _, _ = field_on_grid(lambda x, t: x, 0.0, lim, self.grid_size)
        zeros = np.zeros_like(X)
        self.quiver_marginal = ax_m.quiver(X, Y, zeros, zeros, zeros, cmap="Greys", angles="xy", scale_units="xy")
        self.trail_lines = LineCollection([], colors=COLORS["path"], linewidths=0.6, alpha=0.7)
        ax_m.add_collection(self.trail_lines)
        self.dots_marginal = ax_m.scatter([], [], s=6, color=COLORS["model"], zorder=3,
                                          label="particles of the marginal flow")
        data = ax_m.scatter(self.data[:, 0], self.data[:, 1], s=10, marker="x", color=COLORS["data"], zorder=2,
                            label="data points")
        legend_m = ax_m.legend(loc="upper right", fontsize=7)
        self.quiver_conditional = ax_c.quiver(X, Y, zeros, zeros, zeros, cmap="Purples", angles="xy",
                                              scale_units="xy")
        self.dots_conditional = ax_c.scatter([], [], s=6, color=COLORS["base"], alpha=0.7,
                                             label=r"$\psi_t(x_0 \mid x_1)$")
        self.star = ax_c.scatter([0.0], [0.0], s=80, marker="*", color=COLORS["data"], zorder=4,
                                 label="chosen $x_1$")
        legend_c = ax_c.legend(loc="upper right", fontsize=7)
        # everything in the panels moves except the axes themselves; the data points sit above p_t
        self.live = [self.density_artist, self.quiver_marginal, self.trail_lines, self.dots_marginal, data, legend_m,
                     ax_m.title, self.quiver_conditional, self.dots_conditional, self.star, legend_c, ax_c.title]
        for ax in self.axes:
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal",
                   xlabel="first coordinate", ylabel="second coordinate")

    def update(self) -> None:
        self.sigma_min.disabled = self.path_name.value == "VP"
        ax_m, ax_c = self.axes
        t, k, spacing = self.time(), self.frame(), 2 * self.lim / (self.grid_size - 1)
        dens = self.marginal_density()
        self.density_artist.set_data(dens)
        self.density_artist.set_clim(0.0, float(dens.max()) or 1.0)
        _, _, U, V = self._cached("field", lambda: field_on_grid(self.marginal_field, t, self.lim, self.grid_size))
        set_arrows(self.quiver_marginal, U, V, spacing)
        self.trail_lines.set_segments(
            trail_segments(self.trajectories()[max(0, k - 8): k + 1, :50].numpy()) if k > 0 else [])
        self.dots_marginal.set_offsets(self.particles().numpy())
        which = "VP path" if self.path_name.value == "VP" else f"OT path, $\\sigma_{{min}}$ = {self.sigma_min.value:.2f}"
        ax_m.set_title(f"{which}: marginal $u_t$ and $p_t$, t = {t:.2f}", fontsize=10)
        _, _, U, V = field_on_grid(self.conditional_field, t, self.lim, self.grid_size)
        set_arrows(self.quiver_conditional, U, V, spacing)
        self.dots_conditional.set_offsets(self.conditional_particles().numpy())
        self.star.set_offsets(self.x1.numpy()[None])
        ax_c.set_title(f"conditional field $u_t(x \\mid x_1)$, t = {t:.2f}", fontsize=10)
