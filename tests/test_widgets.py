"""Widgets, driven headless: moving a control changes what is drawn, and it matches the math."""
from __future__ import annotations

import numpy as np
import torch

from utils.widgets import PUSHFORWARD_MAPS, PushForwardWidget


def _bars(w):
    return np.array([p.get_height() for p in w.axes[1].patches])


def test_pushforward_widget_redraws_on_each_control():
    w = PushForwardWidget(n=5000)
    before_png, before_bars = bytes(w.image.value), _bars(w)
    assert before_png.startswith(b"\x89PNG") and len(before_bars) == w.bins
    w.map.value = "exp"
    assert bytes(w.image.value) != before_png and not np.allclose(_bars(w), before_bars[: len(_bars(w))])
    assert "e^{a z}" in w.axes[1].get_title()
    png, bars = bytes(w.image.value), _bars(w)
    w.a.value = 2.0
    assert bytes(w.image.value) != png and not np.allclose(_bars(w), bars)
    assert repr(w) == "<PushForwardWidget>"


def test_pushforward_widget_samples_and_curve_agree():
    w = PushForwardWidget(n=20000)
    for name in PUSHFORWARD_MAPS:
        w.map.value = name
        w.a.value = 1.5
        x = w.pushed()
        assert torch.allclose(x, PUSHFORWARD_MAPS[name][0](w.z, 1.5))
        # the drawn curve is the change-of-variables density; the histogram must follow it
        line = w.axes[1].lines[0]
        xs, ys = line.get_xdata(), line.get_ydata()
        heights = _bars(w)
        centres = np.array([p.get_x() + p.get_width() / 2 for p in w.axes[1].patches])
        curve_at_centres = np.interp(centres, np.asarray(xs), np.asarray(ys))
        inner = slice(3, -3)  # the edge bins of tanh average a density that blows up at +-1
        err = np.abs(heights[inner] - curve_at_centres[inner])
        assert err.max() < 0.1 * curve_at_centres[inner].max() + 0.02, name
