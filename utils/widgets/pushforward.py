"""The push-forward widget (notebook 00): z ~ N(0, 1), a map f, and the histogram of x = f(z).

The right panel overlays the exact density of x from the change-of-variables
formula (notebook 01), so the histogram and the curve must agree.
"""
from __future__ import annotations

import math
from typing import Callable

import ipywidgets as W
import numpy as np
import torch
from matplotlib.ticker import FormatStrFormatter, MaxNLocator

from ..changevars import pushforward_log_prob, standard_normal_log_prob
from ..errors import InputError
from ..plotting import COLORS
from .base import FigureWidget

__all__ = ["PushForwardWidget", "PUSHFORWARD_MAPS"]

# name -> (f, f_inv, d f_inv / dx, formula); each takes the parameter a > 0.
PUSHFORWARD_MAPS: dict[str, tuple[Callable, Callable, Callable, str]] = {
    "affine": (lambda z, a: a * z + 1, lambda x, a: (x - 1) / a,
               lambda x, a: torch.full_like(x, 1 / a), r"$f(z) = a z + 1$"),
    "exp": (lambda z, a: torch.exp(a * z), lambda x, a: torch.log(x) / a,
            lambda x, a: 1 / (a * x), r"$f(z) = e^{a z}$"),
    "sinh": (lambda z, a: torch.sinh(a * z) / a, lambda x, a: torch.asinh(a * x) / a,
             lambda x, a: 1 / torch.sqrt(1 + (a * x) ** 2), r"$f(z) = \sinh(a z) / a$"),
    "tanh": (lambda z, a: torch.tanh(a * z), lambda x, a: torch.atanh(x) / a,
             lambda x, a: 1 / (a * (1 - x**2)), r"$f(z) = \tanh(a z)$"),
}

HEADROOM = 1.45  # the y axis reaches 1.45 x the tallest bar: the legend sits above the histogram and curve


class PushForwardWidget(FigureWidget):
    """Pick a map f and its parameter a; see z ~ N(0, 1) and the histogram of x = f(z)."""

    def __init__(self, n: int = 20_000, seed: int = 0, bins: int = 60):
        if n < 10:
            raise InputError(f"`n` must be at least 10 samples, got {n}.")
        self.z = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        self.bins = bins
        # Buttons, not a Dropdown: in JupyterLab the arrow keys on a focused <select> move the
        # notebook's cell cursor instead of the choice (tests/test_browser.py found it).
        self.map = W.ToggleButtons(options=list(PUSHFORWARD_MAPS), value="affine", description="map f",
                                   style={"button_width": "4.5em"})
        self.a = W.FloatSlider(value=1.0, min=0.2, max=2.5, step=0.1, description="a")
        super().__init__([self.map, self.a], figsize=(9, 3.4))

    def pushed(self) -> torch.Tensor:
        f = PUSHFORWARD_MAPS[self.map.value][0]
        return f(self.z, self.a.value)

    def exact_density(self, x: torch.Tensor) -> torch.Tensor:
        _, f_inv, f_inv_deriv, _ = PUSHFORWARD_MAPS[self.map.value]
        a = self.a.value
        return torch.exp(pushforward_log_prob(x, standard_normal_log_prob,
                                              lambda u: f_inv(u, a), lambda u: f_inv_deriv(u, a)))

    def build(self) -> None:
        ax_z, ax_x = self.axes
        z = self.z[:, 0].numpy()
        heights, edges = np.histogram(z, bins=self.bins, range=(-4, 4), density=True)
        ax_z.stairs(heights, edges, fill=True, color=COLORS["base"], alpha=0.6, label="samples z")
        zz = np.linspace(-4, 4, 200)
        ax_z.plot(zz, np.exp(-zz**2 / 2) / math.sqrt(2 * math.pi), color=COLORS["exact"], label="N(0, 1)")
        ax_z.set(title="base: z ~ N(0, 1)", xlabel="z", ylabel="density", xlim=(-4, 4),
                 ylim=(0, HEADROOM * heights.max()))
        ax_z.legend(loc="upper right", fontsize=8)
        self.bars = ax_x.stairs(np.zeros(self.bins), np.arange(self.bins + 1.0), fill=True, color=COLORS["data"],
                                alpha=0.6, label="samples f(z)")
        (self.curve,) = ax_x.plot([], [], color=COLORS["exact"], label="change of variables")
        ax_x.set(xlabel="x", ylabel="density")
        ax_x.legend(loc="upper right", fontsize=8)
        for ax in self.axes:
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.yaxis.set_major_locator(MaxNLocator(5))
            ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))  # labels of one width: the layout holds
        self.live = [ax_x]  # the right panel's limits and ticks follow f and a: it is redrawn whole
        # the layout is computed once, but a tick label can land on the right panel's edge for some
        # f and a: room for half a label on each side keeps it inside the image
        self.fig.get_layout_engine().set(w_pad=0.2)

    def update(self) -> None:
        ax_x = self.axes[1]
        x = self.pushed()[:, 0]
        lo, hi = torch.quantile(x, 0.005).item(), torch.quantile(x, 0.995).item()
        heights, edges = np.histogram(x.numpy(), bins=self.bins, range=(lo, hi))
        heights = heights / (len(x) * (hi - lo) / self.bins)  # density of all samples, the tails included
        self.bars.set_data(heights, edges)
        xx = torch.linspace(lo, hi, 300, dtype=torch.float64)[:, None]
        self.curve.set_data(xx[:, 0].numpy(), self.exact_density(xx).numpy())
        # the tallest bar sets the scale: a density that blows up at an edge (tanh) is cut, not the histogram
        ax_x.set(xlim=(lo, hi), ylim=(0, HEADROOM * heights.max()),
                 title=f"push-forward {PUSHFORWARD_MAPS[self.map.value][3]}, a = {self.a.value:.1f}")
