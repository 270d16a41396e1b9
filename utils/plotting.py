"""The course's colours and small figure helpers (introduced in notebook 00).

One colour means one thing across every notebook:
base samples (noise, t=0) are blue, data (t=1) orange, model samples green,
exact or true quantities black, learned ones purple, trajectories grey.
"""
from __future__ import annotations

import io

import matplotlib
import torch

__all__ = ["COLORS", "scatter", "figure_png", "setup_axes"]

COLORS = {
    "base": "#3b6fb6",    # noise, t = 0
    "data": "#e07b39",    # data, t = 1
    "model": "#3a9a5b",   # samples from a model
    "exact": "#222222",   # exact / closed-form quantities
    "learned": "#8e44ad", # learned quantities
    "path": "#9a9a9a",    # trajectories
    "sde": "#c0392b",     # stochastic sampler
    "ode": "#2c7fb8",     # deterministic sampler
}


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


def scatter(ax, x, kind: str = "data", label: str | None = None, s: float = 4, alpha: float = 0.5):
    """Scatter 2D points (n, 2) in the course colour of ``kind``."""
    x = _np(x)
    return ax.scatter(x[:, 0], x[:, 1], s=s, alpha=alpha, color=COLORS[kind],
                      label=label if label is not None else kind)


def setup_axes(ax, title: str, xlabel: str = "$x_1$", ylabel: str = "$x_2$", lim: float | None = None):
    """Title, axis labels and (optionally) square limits [-lim, lim]^2."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
    return ax


def figure_png(fig: "matplotlib.figure.Figure", dpi: int = 80) -> bytes:
    """Render a figure to PNG bytes (for image widgets)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
