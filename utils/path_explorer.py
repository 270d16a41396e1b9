"""The path explorer: Gaussian probability paths of a small data set, exactly (notebook 05).

    PathExplorer(data=None, lim=3.0)

Choose the path (OT or VP), sigma_min (OT only) and the time t. Left: the
exact marginal field u_t of the point cloud ``data`` (arrows) over the
marginal density p_t (shaded), and particles carried from N(0, I) by that
field. Right: the conditional field u_t(x | x1) of the chosen data point x1,
and the same noise samples moved by its conditional flow
psi_t(x0) = mu_t(x1) + sigma_t x0. Built on the arrows of the vector field
explorer of notebook 03 (:func:`utils.explorer.field_on_grid`).
"""
from __future__ import annotations

import ipywidgets as W
import numpy as np
import torch

from .datasets import moons
from .errors import InputError, check_points
from .explorer import field_on_grid
from .paths import GaussianPath, OTPath, VPPath
from .plotting import COLORS
from .solvers import solve_ode
from .widgets import FigureWidget

__all__ = ["PathExplorer", "make_path"]

T_END = 0.99  # the VP path (and OT with sigma_min = 0) has sigma_1 = 0: the fields blow up at t = 1


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
        self.data, self.lim, self.grid_size, self.num_frames = data.float(), lim, grid_size, num_frames
        self.x0 = torch.randn(n_particles, 2, generator=torch.Generator().manual_seed(seed + 1))
        self.times = torch.linspace(0.0, T_END, num_frames)
        self._cache: dict = {}
        self.path_name = W.ToggleButtons(options=["OT", "VP"], value="OT", description="path")
        self.sigma_min = W.FloatSlider(value=0.05, min=0.0, max=0.5, step=0.05, description="sigma_min",
                                       continuous_update=False)
        self.t = W.FloatSlider(value=0.5, min=0.0, max=T_END, step=float(T_END / (num_frames - 1)),
                               description="t", readout_format=".2f", continuous_update=False)
        self.x1_index = W.IntSlider(value=0, min=0, max=data.shape[0] - 1, description="x1 index",
                                    continuous_update=False)
        super().__init__([self.path_name, self.sigma_min, self.t, self.x1_index], figsize=(10, 4.6), ncols=2)

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

    def trajectories(self) -> torch.Tensor:
        """Particles moved by the marginal field, at every stored time: (num_frames, n, 2); cached per path."""
        key = repr(self.path)
        if key not in self._cache:
            with torch.no_grad():
                sol = solve_ode(self.marginal_field, self.x0, 0.0, T_END, num_steps=2 * (self.num_frames - 1),
                                method="rk4", return_path=True)
            self._cache[key] = sol.path[::2]
        return self._cache[key]

    def particles(self) -> torch.Tensor:
        return self.trajectories()[self.frame()]

    def conditional_particles(self) -> torch.Tensor:
        """psi_t(x0 | x1) = mu_t(x1) + sigma_t x0 for the chosen x1."""
        return self.path.sample(self.x0, self.x1.expand_as(self.x0), self.time())

    # ------------------------------------------------------------------ drawing
    def draw(self) -> None:
        self.sigma_min.disabled = self.path_name.value == "VP"
        ax_m, ax_c = self.axes
        t, lim = self.time(), self.lim
        c = torch.linspace(-lim, lim, 70)
        gx, gy = torch.meshgrid(c, c, indexing="xy")
        pts = torch.stack([gx.flatten(), gy.flatten()], 1)
        dens = self.path.marginal_log_prob(pts, self.data, t).exp().reshape(70, 70)
        ax_m.imshow(dens.numpy(), origin="lower", extent=(-lim, lim, -lim, lim), cmap="Oranges", alpha=0.6)
        X, Y, U, V = field_on_grid(self.marginal_field, t, lim, self.grid_size)
        self.quiver_marginal = ax_m.quiver(X, Y, U, V, np.hypot(U, V), cmap="Greys", angles="xy")
        k = self.frame()
        if k > 0:
            trail = self.trajectories()[max(0, k - 8): k + 1, :50].numpy()
            ax_m.plot(trail[:, :, 0], trail[:, :, 1], color=COLORS["path"], lw=0.6, alpha=0.7)
        p = self.particles().numpy()
        self.dots_marginal = ax_m.scatter(p[:, 0], p[:, 1], s=6, color=COLORS["model"], zorder=3,
                                          label="particles of the marginal flow")
        ax_m.scatter(self.data[:, 0], self.data[:, 1], s=10, marker="x", color=COLORS["data"], zorder=2,
                     label="data points")
        ax_m.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="$x_1$", ylabel="$x_2$",
                 title=f"{self.path!r}: marginal field $u_t$ and $p_t$, t = {t:.2f}")
        ax_m.legend(loc="upper right", fontsize=7)

        X, Y, U, V = field_on_grid(self.conditional_field, t, lim, self.grid_size)
        self.quiver_conditional = ax_c.quiver(X, Y, U, V, np.hypot(U, V), cmap="Purples", angles="xy")
        q = self.conditional_particles().numpy()
        self.dots_conditional = ax_c.scatter(q[:, 0], q[:, 1], s=6, color=COLORS["base"], alpha=0.7,
                                             label=r"$\psi_t(x_0 \mid x_1)$")
        x1 = self.x1.numpy()
        ax_c.scatter([x1[0]], [x1[1]], s=80, marker="*", color=COLORS["data"], zorder=4, label="chosen $x_1$")
        ax_c.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="$x_1$", ylabel="$x_2$",
                 title=f"conditional field $u_t(x \\mid x_1)$, t = {t:.2f}")
        ax_c.legend(loc="upper right", fontsize=7)
