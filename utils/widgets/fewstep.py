"""The few-step widget (notebook 08): every method's samples as the number of network evaluations moves.

Pass samplers ``{name: sampler(x0, nfe)}`` (the interface of ``utils.showdown``), the noise ``x0`` and
the data to draw behind. Move the NFE slider from 1 to ``max_nfe``: each panel shows one method's samples
from the same noise. Samples are computed once per (method, NFE), on one thread, and then only looked up.
"""
from __future__ import annotations

from typing import Callable

import ipywidgets as W
import torch
from matplotlib.figure import Figure
from matplotlib.backends.backend_agg import FigureCanvasAgg

from ..errors import InputError, check_points
from ..plotting import COLORS
from .base import FigureWidget, one_thread

__all__ = ["FewStepWidget"]

NCOLS = 3


class FewStepWidget(FigureWidget):
    """Samples of several few-step samplers side by side, with an NFE slider (1 to ``max_nfe``)."""

    def __init__(self, samplers: dict[str, Callable], x0: torch.Tensor, reference: torch.Tensor, max_nfe: int = 8):
        if not isinstance(samplers, dict) or not samplers or not all(callable(s) for s in samplers.values()):
            raise InputError("`samplers` must be a non-empty dict {name: sampler(x0, nfe)}.")
        if not isinstance(max_nfe, int) or max_nfe < 1:
            raise InputError(f"`max_nfe` must be a positive integer, got {max_nfe!r}.")
        check_points(x0, "x0", dim=2)
        check_points(reference, "reference", dim=2)
        self.samplers, self.x0, self.reference = dict(samplers), x0.detach(), reference.detach()
        self._cache: dict = {}
        self.nfe = W.IntSlider(value=1, min=1, max=max_nfe, step=1, description="NFE", continuous_update=True)
        n = len(self.samplers)
        self.nrows = -(-n // NCOLS)
        super().__init__([self.nfe], figsize=(3.0 * min(n, NCOLS), 2.9 * self.nrows), ncols=min(n, NCOLS))

    def samples(self, name: str, nfe: int) -> torch.Tensor:
        """``name``'s samples at ``nfe`` evaluations (computed once)."""
        key = (name, int(nfe))
        if key not in self._cache:
            with one_thread(), torch.no_grad():
                self._cache[key] = self.samplers[name](self.x0, int(nfe)).detach().cpu()
        return self._cache[key]

    def _new_figure(self) -> None:  # a grid of panels, NCOLS a row
        self.fig = Figure(figsize=self.figsize, dpi=self.dpi * self.scale, layout="constrained")
        self.canvas = FigureCanvasAgg(self.fig)
        self.axes = [self.fig.add_subplot(self.nrows, self.ncols, i + 1) for i in range(len(self.samplers))]
        self.live: list = []
        self._background = None

    def build(self) -> None:
        lim = float(self.reference.abs().max()) * 1.3
        self.points, self.titles = {}, {}
        for ax, name in zip(self.axes, self.samplers):
            ax.scatter(*self.reference.T.numpy(), s=2, color=COLORS["data"], alpha=0.3, label="data")
            self.points[name] = ax.scatter(*self.samples(name, 1).T.numpy(), s=2, color=COLORS["model"], alpha=0.6,
                                           label="samples")
            self.titles[name] = ax.set_title(" ", fontsize=9)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="first coordinate", ylabel="second coordinate")
        self.axes[0].legend(loc="lower left", fontsize=7, markerscale=3)
        self.live = list(self.points.values()) + list(self.titles.values())

    def update(self) -> None:
        k = self.nfe.value
        for name in self.samplers:
            self.points[name].set_offsets(self.samples(name, k).numpy())
            self.titles[name].set_text(f"{name}: {k} NFE")
