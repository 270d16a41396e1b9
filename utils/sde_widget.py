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
import torch

from .errors import InputError, check_points
from .plotting import COLORS
from .sde import diffusion_time, sample_probability_flow, sample_reverse_sde
from .widgets import FigureWidget

__all__ = ["SDEvsODEWidget"]


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
        self.steps = W.SelectionSlider(options=steps_options, value=steps, description="steps")
        self.t = W.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.01, description="t (flow)",
                               readout_format=".2f")
        super().__init__([self.steps, self.t], figsize=(10, 4.6), ncols=2, dpi=72)

    def paths(self, steps: int | None = None) -> tuple:
        """(times, SDE path, ODE path) for a step count: paths (steps + 1, n, 2), cached."""
        steps = self.steps.value if steps is None else int(steps)
        if steps not in self._cache:
            with torch.no_grad():
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

    def _background(self, ax, t: float) -> None:
        if self.log_prob is None:
            return
        c = torch.linspace(-self.lim, self.lim, 70, dtype=torch.float64)
        gx, gy = torch.meshgrid(c, c, indexing="xy")
        pts = torch.stack([gx.flatten(), gy.flatten()], 1)
        with torch.no_grad():
            dens = self.log_prob(pts, torch.full((pts.shape[0],), float(diffusion_time(t)),
                                                 dtype=torch.float64)).exp()
        ax.imshow(dens.reshape(70, 70).numpy(), origin="lower", cmap="Greys", alpha=0.35,
                  extent=(-self.lim, self.lim, -self.lim, self.lim))

    def draw(self) -> None:
        times, sde_path, ode_path = self.paths()
        k = self.frame()
        t = float(times[k])
        steps = self.steps.value
        for ax, path, kind, name in ((self.axes[0], sde_path, "sde", "reverse SDE (Euler-Maruyama)"),
                                     (self.axes[1], ode_path, "ode", "probability flow ODE (Euler)")):
            self._background(ax, t)
            trail = path[: k + 1, : self.n_trails].numpy()
            if k > 0:
                ax.plot(trail[:, :, 0], trail[:, :, 1], color=COLORS["path"], lw=0.6, alpha=0.7)
            p = path[k].numpy()
            ax.scatter(p[:, 0], p[:, 1], s=6, color=COLORS[kind], zorder=3, label=f"{kind.upper()} particles")
            ax.set(xlim=(-self.lim, self.lim), ylim=(-self.lim, self.lim), aspect="equal",
                   xlabel="$x_1$", ylabel="$x_2$", title=f"{name}\n{steps} steps (NFE {steps}), t = {t:.2f}")
            ax.legend(loc="upper right", fontsize=8)
