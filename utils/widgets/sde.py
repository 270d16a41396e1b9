"""The SDE versus ODE widget (notebook 04): the same starting noise, two samplers side by side.

    SDEvsODEWidget(sde, score, log_prob=None, n=200, seed=0)

Left: the reverse-time SDE sampled by Euler-Maruyama; right: the probability
flow ODE sampled by Euler, with the same number of steps (so the same NFE)
and the same starting noise x0. A steps slider re-runs both samplers (runs
are cached per step count); a time slider (flow time t: 0 noise, 1 data)
shows the particles at t with their trajectories so far. With ``log_prob(x, s)``
(the exact log-density at diffusion time s) the exact marginal p_t is drawn
behind the particles, so you can see that both clouds follow it.
"""
from __future__ import annotations

from typing import Callable

import ipywidgets as W
import numpy as np
import torch
from matplotlib.collections import LineCollection

from ..errors import InputError, check_points
from ..plotting import COLORS
from ..sde import diffusion_time
from ..samplers import sample_probability_flow, sample_reverse_sde
from .base import FigureWidget, one_thread
from .explorer import trail_segments

__all__ = ["SDEvsODEWidget"]

GRID = 70
PANELS = (("sde", "reverse SDE (Euler-Maruyama)"), ("ode", "probability flow ODE (Euler)"))


class SDEvsODEWidget(FigureWidget):
    """Reverse SDE (Euler-Maruyama) and probability flow ODE (Euler) from the same noise."""

    def __init__(self, sde, score: Callable, log_prob: Callable | None = None, x0: torch.Tensor | None = None,
                 n: int = 200, seed: int = 0, lim: float = 3.2, steps_options=(2, 5, 10, 20, 50, 100, 200),
                 steps: int = 20, n_trails: int = 25):
        if not callable(score):
            raise InputError(f"`score` must be a callable score(x, s), got {type(score).__name__}.")
        if x0 is None:
            x0 = sde.prior_sample(n, torch.Generator().manual_seed(seed))
        check_points(x0, "x0", dim=2)
        steps_options = tuple(int(k) for k in steps_options)
        if steps not in steps_options:
            raise InputError(f"`steps` must be one of steps_options {steps_options}, got {steps}.")
        self.sde, self.score, self.log_prob = sde, score, log_prob
        self.x0, self.seed, self.lim, self.n_trails = x0, seed, lim, n_trails
        self._cache: dict[int, tuple] = {}
        self._backgrounds: dict[float, np.ndarray] = {}
        self.steps = W.SelectionSlider(options=steps_options, value=steps, description="steps")
        self.t = W.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.01, description="t (flow)",
                               readout_format=".2f")
        # tall enough for two square panels under two-line titles: at 4.6 inches constrained layout
        # could not fit them, and the titles' first lines and the x labels fell off the image
        super().__init__([self.steps, self.t], figsize=(9, 5.2), ncols=2, dpi=72)

    def paths(self, steps: int | None = None) -> tuple:
        """(times, SDE path, ODE path) for a step count: paths (steps + 1, n, 2), cached."""
        steps = self.steps.value if steps is None else int(steps)
        if steps not in self._cache:
            with torch.no_grad(), one_thread():
                sde_out = sample_reverse_sde(self.sde, self.score, self.x0, steps, return_path=True,
                                             generator=torch.Generator().manual_seed(self.seed + 1))
                ode_out = sample_probability_flow(self.sde, self.score, self.x0, steps, method="euler",
                                                  return_path=True)
            self._cache[steps] = (sde_out.times, sde_out.path, ode_out.path)
        return self._cache[steps]

    def frame(self) -> int:
        """Index of the stored step nearest the time slider."""
        times = self.paths()[0]
        return int(torch.argmin((times - self.t.value).abs()))

    def particles(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(SDE particles, ODE particles) at the slider's time, each (n, 2)."""
        _, sde_path, ode_path = self.paths()
        k = self.frame()
        return sde_path[k], ode_path[k]

    def density_image(self, t: float) -> np.ndarray:
        """The exact marginal density at flow time t on a grid (computed once per t)."""
        if t not in self._backgrounds:
            c = torch.linspace(-self.lim, self.lim, GRID, dtype=torch.float64)
            gx, gy = torch.meshgrid(c, c, indexing="xy")
            pts = torch.stack([gx.flatten(), gy.flatten()], 1)
            with torch.no_grad():
                dens = self.log_prob(pts, torch.full((pts.shape[0],), float(diffusion_time(t)),
                                                     dtype=torch.float64)).exp()
            self._backgrounds[t] = dens.reshape(GRID, GRID).detach().cpu().numpy()
        return self._backgrounds[t]

    def build(self) -> None:
        lim = self.lim
        self.panels = []
        for ax, (kind, _) in zip(self.axes, PANELS):
            image = None
            if self.log_prob is not None:
                image = ax.imshow(np.zeros((GRID, GRID)), origin="lower", cmap="Greys", alpha=0.35,
                                  extent=(-lim, lim, -lim, lim))
            trails = LineCollection([], colors=COLORS["path"], linewidths=0.6, alpha=0.7)
            ax.add_collection(trails)
            dots = ax.scatter([], [], s=6, color=COLORS[kind], zorder=3, label=f"{kind.upper()} particles")
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="first coordinate",
                   ylabel="second coordinate")
            legend = ax.legend(loc="upper right", fontsize=8)
            self.panels.append((image, trails, dots))
            self.live += [a for a in (image, trails, dots, legend, ax.title) if a is not None]

    def update(self) -> None:
        times, sde_path, ode_path = self.paths()
        k = self.frame()
        t = float(times[k])
        steps = self.steps.value
        for ax, path, (_, name), (image, trails, dots) in zip(self.axes, (sde_path, ode_path), PANELS,
                                                              self.panels):
            if image is not None:
                dens = self.density_image(t)
                image.set_data(dens)
                image.set_clim(0.0, float(dens.max()) or 1.0)
            trails.set_segments(trail_segments(path[: k + 1, : self.n_trails].numpy()))
            dots.set_offsets(path[k].numpy())
            ax.set_title(f"{name}\n{steps} steps (NFE {steps}), t = {t:.2f}", fontsize=10)
