"""Widgets, driven headless: moving a control changes what is drawn, it matches the math, and the
one rendering path (utils.widgets.base) cannot be broken by the order or speed of the moves."""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from utils.plotting import text_overlaps
from utils.sde import VPSDE
from utils.mixtures import eight_gaussians_mixture
from utils.widgets import (PUSHFORWARD_MAPS, FigureWidget, PathExplorer, PushForwardWidget, SDEvsODEWidget,
                           VectorFieldExplorer)


def _bars(w):
    return np.asarray(w.bars.get_data().values)


def _centres(w):
    edges = np.asarray(w.bars.get_data().edges)
    return (edges[1:] + edges[:-1]) / 2


def test_pushforward_widget_redraws_on_each_control():
    w = PushForwardWidget(n=5000)
    before_png, before_bars = bytes(w.image.value), _bars(w)
    assert before_png.startswith(b"\x89PNG") and len(before_bars) == w.bins
    w.map.value = "exp"
    assert bytes(w.image.value) != before_png and not np.allclose(_bars(w), before_bars)
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
        xs, ys = w.curve.get_data()
        heights, centres = _bars(w), _centres(w)
        curve_at_centres = np.interp(centres, np.asarray(xs), np.asarray(ys))
        inner = slice(3, -3)  # the edge bins of tanh average a density that blows up at +-1
        err = np.abs(heights[inner] - curve_at_centres[inner])
        assert err.max() < 0.1 * curve_at_centres[inner].max() + 0.02, name
        # the histogram holds every sample inside the plotted range: its area is the share inside
        area = (heights * np.diff(np.asarray(w.bars.get_data().edges))).sum()
        assert 0.985 < area <= 1.0 + 1e-9, (name, area)


# ---------------------------------------------------------------------- the figures read well
def _pixels_of_axes(w, ax, artist_y_max):
    """Height in pixels of data value artist_y_max on the axes."""
    w.fig.canvas.draw()
    return ax.transData.transform((0, artist_y_max))[1] - ax.transData.transform((0, 0))[1]


def test_tanh_histogram_fills_its_panel_and_the_legend_leaves_the_curve_alone():
    w = PushForwardWidget()
    w.map.value, w.a.value = "tanh", 2.0  # the exact density blows up at +-1: it must not squash the bars
    ax = w.axes[1]
    bar_px = _pixels_of_axes(w, ax, _bars(w).max())
    assert bar_px > 0.6 * ax.bbox.height, f"the tallest bar is {bar_px:.0f} px of {ax.bbox.height:.0f}"
    for name, a in [("affine", 0.2), ("affine", 2.5), ("exp", 1.0), ("sinh", 2.5), ("tanh", 0.6)]:
        w.map.value, w.a.value = name, a
        w.fig.canvas.draw()
        legend = ax.get_legend().get_window_extent()
        xs, ys = w.curve.get_data()
        pts = ax.transData.transform(np.column_stack([xs, np.minimum(ys, ax.get_ylim()[1])]))
        inside = (pts[:, 0] > legend.x0) & (pts[:, 0] < legend.x1) & (pts[:, 1] > legend.y0) & (pts[:, 1] < legend.y1)
        assert not inside.any(), f"{name} a = {a}: the legend covers {inside.sum()} points of the curve"
        bars = np.column_stack([_centres(w), _bars(w)])
        tops = ax.transData.transform(bars)
        assert not ((tops[:, 0] > legend.x0) & (tops[:, 0] < legend.x1) & (tops[:, 1] > legend.y0)).any(), name


def _widgets():
    sde, target = VPSDE(), eight_gaussians_mixture()
    u = lambda x, t: (1 + t)[:, None] * torch.stack([-x[:, 1], x[:, 0]], 1) - 0.3 * x  # noqa: E731
    dens = lambda x, t: -0.5 * (x**2).sum(1) - math.log(2 * math.pi)  # noqa: E731
    return {
        "pushforward": (lambda: PushForwardWidget(n=4000),
                        lambda w: [(w.map, "tanh"), (w.a, 2.0), (w.map, "exp"), (w.a, 2.5), (w.map, "affine"),
                                   (w.a, 0.2), (w.map, "sinh")]),
        "explorer": (lambda: VectorFieldExplorer(u, density=dens, n_particles=60, num_frames=11),
                     lambda w: [(w.t, 0.3), (w.streamlines, True), (w.t, 0.9), (w.trails, False), (w.t, 0.0),
                                (w.streamlines, False), (w.t, 1.0), (w.trails, True)]),
        "explorer-one-panel": (lambda: VectorFieldExplorer(u, n_particles=60, num_frames=11, title="rotation"),
                               lambda w: [(w.t, 0.5), (w.t, 1.0), (w.streamlines, True), (w.t, 0.2)]),
        "sde": (lambda: SDEvsODEWidget(sde, target.score_fn(sde), log_prob=target.log_prob_fn(sde), n=60,
                                       steps_options=(2, 5, 20), steps=5),
                lambda w: [(w.t, 0.4), (w.steps, 20), (w.t, 0.0), (w.steps, 2), (w.t, 0.77), (w.steps, 5)]),
        "paths": (lambda: PathExplorer(num_frames=12, n_particles=40),
                  lambda w: [(w.t, 0.9), (w.x1_index, 7), (w.path_name, "VP"), (w.t, 0.0), (w.path_name, "OT"),
                             (w.sigma_min, 0.3), (w.t, w.t.max), (w.x1_index, 0)]),
        "fewstep": (_fewstep_widget, lambda w: [(w.nfe, 4), (w.nfe, 8), (w.nfe, 1), (w.nfe, 2)]),
    }


def _fewstep_widget():
    """Notebook 08's layout: six samplers with its names (two rows), analytic fields in place of its models."""
    from utils.datasets import moons
    from utils.showdown import flow_sampler
    from utils.widgets import FewStepWidget

    x0 = torch.randn(200, 2, generator=torch.Generator().manual_seed(8))
    fields = {"distillation": lambda x, t: -x, "consistency": lambda x, t: 0.5 * x,
              "shortcut": lambda x, t: torch.stack([-x[:, 1], x[:, 0]], 1), "MeanFlow": lambda x, t: 0 * x,
              "OT-CFM (06)": lambda x, t: x * t[:, None], "reflow (06)": lambda x, t: -2 * x}
    return FewStepWidget({name: flow_sampler(f) for name, f in fields.items()}, x0, moons(200), max_nfe=8)


WIDGETS = _widgets()


@pytest.fixture(scope="module", params=sorted(WIDGETS))
def case(request):
    make, moves = WIDGETS[request.param]
    w = make()
    return request.param, w, moves(w)


def test_every_state_equals_a_fresh_render_and_has_no_overlapping_text(case):
    """After each move, the in-place image is byte-for-byte what a new figure draws for those values;
    the artists are the same objects (updated, not rebuilt); no two text boxes overlap."""
    name, w, moves = case
    artists = {id(a) for a in w.live}
    axes = [id(ax) for ax in w.fig.axes]
    for control, value in moves:
        before = bytes(w.image.value)
        control.value = value
        assert w.error is None, f"{name}: {w.error!r}"
        png = bytes(w.image.value)
        assert png != before, f"{name}: moving {control.description} to {value} did not change the image"
        assert png == w.fresh_png(), f"{name} after {control.description} = {value}: image != a fresh render"
        assert w.drawn_values == w.values()
        assert not text_overlaps(w.fig), f"{name} at {w.values()}: {text_overlaps(w.fig)}"
    stream = {id(a) for a in getattr(w, "stream_artists", [])}  # streamlines are remade, by design
    assert artists - stream <= {id(a) for a in w.live}, f"{name}: artists were rebuilt, not updated"
    assert [id(ax) for ax in w.fig.axes] == axes


def _extremes(control):
    """The extreme values of a control: a slider's ends, every option of a menu, both of a checkbox."""
    import ipywidgets as W

    if isinstance(control, (W.FloatSlider, W.IntSlider)):
        return [control.min, control.max]
    if isinstance(control, W.SelectionSlider):
        return [control.options[0], control.options[-1]]
    if isinstance(control, W.Checkbox):
        return [not control.value, control.value]
    if hasattr(control, "options"):
        return list(control.options)
    raise AssertionError(f"no extremes known for {type(control).__name__}")


def test_no_text_outside_the_image_or_overlapping_at_every_controls_extremes(case):
    """The PNG is the canvas, uncropped: a title or label past its edge is cut off (04's two-line
    titles were). Checked at the initial state and with each control at each of its extremes."""
    name, w, _ = case
    start = w.values()
    w.check_text()
    for control in w.controls:
        before = control.value
        for value in _extremes(control):
            if control.disabled:
                continue
            control.value = value
            assert w.error is None, f"{name}: {w.error!r}"
            w.check_text()
        control.value = before
    w.set_values(start)


def test_text_outside_the_canvas_is_named():
    from utils.plotting import FigureTextOverlap

    w = SDEvsODEWidget(VPSDE(), lambda x, s: -x, n=20, steps_options=(2,), steps=2)
    w.check_text()
    w.fig.set_size_inches(9, 4.0)  # too short for its layout: the titles leave the canvas
    with pytest.raises(FigureTextOverlap, match="(?s)outside its canvas.*the title 'reverse SDE"):
        w.check_text()


def _random_moves(w, moves, n, seed):
    """n moves drawn from the case's controls and values (so every value is a legal one)."""
    rng = np.random.default_rng(seed)
    options = {}
    for control, value in moves:
        options.setdefault(control, []).append(value)
    controls = list(options)
    return [(c := controls[rng.integers(len(controls))], options[c][rng.integers(len(options[c]))])
            for _ in range(n)]


def test_a_burst_of_30_moves_ends_with_the_final_states_image(case):
    """In a kernel, redraws run on a background thread: 30 moves with no waiting are coalesced."""
    name, w, moves = case
    w.background = True
    try:
        renders = w.renders
        for control, value in _random_moves(w, moves, 30, seed=1):
            control.value = value
        assert w.wait(60), f"{name}: the redraws did not finish"
        assert w.error is None and w.drawn_values == w.values(), name
        assert bytes(w.image.value) == w.fresh_png(), f"{name}: the final image is not the final state's"
        print(f"{name}: 30 moves, {w.renders - renders} redraws")
    finally:
        w.background = False


def test_concurrent_moves_from_several_threads_end_with_the_final_state(case):
    """JupyterLab 4 may deliver widget messages on several kernel threads at once: redraws are
    serialised (no garbled figure, no exception) and the last image is the controls' final state."""
    name, w, moves = case
    errors = []
    start = threading.Barrier(4)

    def mover(seed):
        try:
            start.wait()
            for control, value in _random_moves(w, moves, 8, seed):
                control.value = value
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=mover, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and w.error is None, (name, errors, w.error)
    assert w.wait(60)
    assert w.drawn_values == w.values(), name
    assert bytes(w.image.value) == w.fresh_png(), f"{name}: the final image is not the final state's"


@pytest.mark.parametrize("blit", [True, False])
def test_a_failing_draw_is_shown_and_the_widget_recovers(blit):
    """A setting that cannot be drawn says so under the figure; the next good one is drawn. Both drawing
    modes: live artists blitted on a background, and (nothing declared live) a full draw each time."""
    class Fragile(FigureWidget):
        def __init__(self):
            import ipywidgets as W
            self.k = W.IntSlider(value=0, min=0, max=3)
            super().__init__([self.k], figsize=(3, 2), ncols=1)

        def build(self):
            (self.line,) = self.axes[0].plot([0, 1], [0, 0])
            self.axes[0].set(xlim=(0, 1), ylim=(0, 3), title="fragile")
            self.live = [self.line] if blit else []

        def update(self):
            if self.k.value == 2:
                raise ValueError("no figure for k = 2")
            self.line.set_ydata([0, self.k.value])

    w = Fragile()
    first = bytes(w.image.value)
    w.k.value = 1
    assert bytes(w.image.value) != first and bytes(w.image.value) == w.fresh_png()
    w.k.value = 2
    assert "no figure for k = 2" in w.message.value and isinstance(w.error, ValueError)
    w.k.value = 3
    assert w.message.value == "" and w.error is None and w.drawn_values == (3,)
    assert bytes(w.image.value) == w.fresh_png()


def test_image_keeps_its_aspect_and_is_drawn_at_twice_its_size():
    w = VectorFieldExplorer(lambda x, t: -x, n_particles=10, num_frames=3)
    from PIL import Image
    import io
    img = Image.open(io.BytesIO(bytes(w.image.value)))
    css_w = float(w.image.layout.width.removesuffix("px"))
    assert w.image.layout.height == "auto" and w.image.layout.align_self == "flex-start"
    assert img.size[0] == round(css_w * FigureWidget.scale)
    assert abs(img.size[0] / img.size[1] - w.figsize[0] / w.figsize[1]) < 0.01
