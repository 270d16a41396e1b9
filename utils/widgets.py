"""Interactive figures built on ipywidgets (the push-forward widget: notebook 00).

A :class:`FigureWidget` is a VBox of controls above an image of a matplotlib
figure. Moving a control calls ``draw()`` and re-renders the image, so it
works in JupyterLab, classic Notebook, VS Code and in a static rendering
(no front-end plotting extension needed). Tests set a control's ``value``
and read ``fig`` (the artists) and ``image.value`` (the PNG bytes).
"""
from __future__ import annotations

import math
from typing import Callable

import ipywidgets as W
import torch
from matplotlib.figure import Figure

from .changevars import pushforward_log_prob, standard_normal_log_prob
from .errors import InputError
from .plotting import COLORS, figure_png

__all__ = ["FigureWidget", "PushForwardWidget", "PUSHFORWARD_MAPS"]


class FigureWidget(W.VBox):
    """Controls above a figure that is redrawn whenever a control changes."""

    def __init__(self, controls: list[W.Widget], figsize=(9, 3.6), ncols: int = 2, dpi: int = 80):
        self.fig = Figure(figsize=figsize, layout="constrained")
        self.axes = [self.fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
        self.dpi = dpi
        self.image = W.Image(format="png")
        self.controls = controls
        for c in controls:
            c.observe(lambda change: self.redraw(), names="value")
        super().__init__([W.HBox(controls), self.image])
        self.redraw()

    def draw(self) -> None:  # pragma: no cover - subclasses draw
        raise NotImplementedError

    def redraw(self) -> None:
        for ax in self.axes:
            ax.clear()
        self.draw()
        self.image.value = figure_png(self.fig, dpi=self.dpi)

    def __repr__(self) -> str:  # fixed text, so stored notebook outputs compare
        return f"<{type(self).__name__}>"


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


class PushForwardWidget(FigureWidget):
    """Pick a map f and its parameter a; see z ~ N(0, 1) and the histogram of x = f(z).

    The right panel overlays the exact density of x from the change-of-variables
    formula (notebook 01), so the histogram and the curve must agree.
    """

    def __init__(self, n: int = 20_000, seed: int = 0, bins: int = 60):
        if n < 10:
            raise InputError(f"`n` must be at least 10 samples, got {n}.")
        self.z = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        self.bins = bins
        # Buttons, not a Dropdown: in JupyterLab the arrow keys on a focused <select> move the
        # notebook's cell cursor instead of the choice (tests/test_browser.py found it).
        self.map = W.ToggleButtons(options=list(PUSHFORWARD_MAPS), value="affine", description="map f",
                                   style={"button_width": "4.5em"})
        self.a = W.FloatSlider(value=1.0, min=0.2, max=2.5, step=0.1, description="a",
                               continuous_update=False)
        super().__init__([self.map, self.a])

    def pushed(self) -> torch.Tensor:
        f = PUSHFORWARD_MAPS[self.map.value][0]
        return f(self.z, self.a.value)

    def exact_density(self, x: torch.Tensor) -> torch.Tensor:
        _, f_inv, f_inv_deriv, _ = PUSHFORWARD_MAPS[self.map.value]
        a = self.a.value
        return torch.exp(pushforward_log_prob(x, standard_normal_log_prob,
                                              lambda u: f_inv(u, a), lambda u: f_inv_deriv(u, a)))

    def draw(self) -> None:
        ax_z, ax_x = self.axes
        z = self.z[:, 0]
        ax_z.hist(z.numpy(), bins=self.bins, density=True, color=COLORS["base"], alpha=0.6, label="samples z")
        zz = torch.linspace(-4, 4, 200, dtype=torch.float64)
        ax_z.plot(zz, torch.exp(-zz**2 / 2) / math.sqrt(2 * math.pi), color=COLORS["exact"], label="N(0, 1)")
        ax_z.set(title="base: z ~ N(0, 1)", xlabel="z", ylabel="density")
        ax_z.legend(loc="upper right")

        x = self.pushed()[:, 0]
        lo, hi = torch.quantile(x, 0.005).item(), torch.quantile(x, 0.995).item()
        ax_x.hist(x.numpy(), bins=self.bins, range=(lo, hi), density=False, color=COLORS["data"], alpha=0.6,
                  weights=torch.full_like(x, 1 / (len(x) * (hi - lo) / self.bins)).numpy(), label="samples f(z)")
        xx = torch.linspace(lo, hi, 300, dtype=torch.float64)[:, None]
        ax_x.plot(xx[:, 0], self.exact_density(xx), color=COLORS["exact"], label="change of variables")
        formula = PUSHFORWARD_MAPS[self.map.value][3]
        ax_x.set(title=f"push-forward: x = f(z), {formula}, a = {self.a.value:.1f}", xlabel="x", ylabel="density")
        ax_x.legend(loc="upper right")
