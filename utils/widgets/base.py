"""One rendering path for every figure widget of the course (used by every module of ``utils.widgets``).

A :class:`FigureWidget` is a box of controls above an image of a matplotlib
figure. Subclasses say what to draw in two methods:

- ``build()`` makes the artists once (lines, scatters, quivers, images, titles)
  and lists in ``self.live`` the ones a move changes;
- ``update()`` sets their data from the controls' values (``set_data``,
  ``set_offsets``, ``set_UVC``, ``set_text`` ...), never rebuilding the figure.

Only what changes is redrawn: the layout is computed once (constrained layout,
on the first draw) and then frozen; everything not in ``live`` (axes, ticks,
labels, static data) is drawn once into a background; a redraw restores that
background and draws the live artists on it, in z-order (blitting). An Axes can
be live as a whole (its ticks then change with it).

Moving a control asks for a redraw (:meth:`FigureWidget.request`). Redraws are
serialised by one lock (matplotlib is not thread-safe, and JupyterLab 4 may
deliver widget messages on several kernel threads at once) and coalesced: a
request that arrives while a redraw runs is not queued, the running redraw
simply goes round once more with the controls' latest values. So whatever the
order or speed of the moves, the last image drawn is the image of the controls'
final values. In a Jupyter kernel the redraws run on a background thread, so the
kernel takes the next move at once and a burst of moves costs one or two redraws;
elsewhere (tests, scripts) a move redraws before it returns.

The image is a PNG in an ``ipywidgets.Image``: it needs no front-end plotting
extension, and works in JupyterLab, Notebook and VS Code. It is drawn at twice
the displayed size (crisp on high-density screens) and shown at a fixed size
with its aspect kept.
"""
from __future__ import annotations

import html
import io
import os
import sys
import threading
import weakref
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import ipywidgets as W
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from .saved import MARK_CLASS, RERUN

__all__ = ["FigureWidget", "png_of_canvas", "one_thread", "DRAW_LOCK", "readout_format"]

NOTICE_HTML = (
    "<style>.course-rerun{display:none}"
    f".jupyter-widgets-disconnected .course-rerun,.jupyter-widgets-disconnected.course-rerun{{display:block;"
    "color:#b00020;font-weight:bold}"
    f".{MARK_CLASS}.jupyter-widgets-disconnected .course-controls{{pointer-events:none;opacity:.4}}</style>"
    f"<div class='course-rerun'>↻ This widget is not connected to a running kernel: {RERUN}.</div>")

# One figure is drawn at a time, across all widgets: matplotlib keeps global caches (fonts, text
# layout, mathtext) that are not safe to use from two threads at once.
DRAW_LOCK = threading.RLock()


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (a widget's small tensors).

    A widget's computations are small; torch's thread pool only adds synchronisation, and on a
    busy machine (another notebook training) two spinning threads made them 10 to 25 times slower
    (measured: the path explorer's trajectories 17 s with two threads, 0.7 s with one).
    """
    import torch

    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def png_of_canvas(canvas: FigureCanvasAgg) -> bytes:
    """PNG bytes of a drawn Agg canvas (RGB, fast compression: a redraw is on the clock)."""
    w, h = canvas.get_width_height(physical=True)
    img = Image.frombuffer("RGBA", (w, h), bytes(canvas.buffer_rgba()), "raw", "RGBA", 0, 1).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="png", compress_level=1)
    return buf.getvalue()


def readout_format(step: float) -> str:
    """The slider readout format that shows every value on a grid of ``step`` exactly: 0.025 -> ".3f"
    (".2f" showed 0.825 as "0.82"), 0.1 -> ".1f"."""
    for decimals in range(0, 5):
        scaled = abs(step) * 10**decimals
        if abs(scaled - round(scaled)) < 1e-6 * max(1.0, scaled):
            return f".{max(decimals, 1)}f"
    return ".3f"


def in_kernel() -> bool:
    """True inside a running Jupyter kernel (where moves arrive as messages)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def _worker(ref: "weakref.ReferenceType[FigureWidget]", wake: threading.Event) -> None:
    """The background redraw loop of one widget; ends when the widget is closed or collected."""
    while True:
        if not wake.wait(timeout=30):
            if ref() is None:
                return
            continue
        wake.clear()
        widget = ref()
        if widget is None or widget._closed:
            return
        widget._drain()
        del widget


class FigureWidget(W.VBox):
    """Controls above a figure whose artists are updated in place whenever a control changes.

    ``controls``: the widgets whose ``value`` the figure shows; ``figsize`` in inches and ``dpi``
    give the displayed size in CSS pixels (``figsize * dpi``); the image is drawn at ``scale``
    times that. ``background``: redraw on a background thread (default: inside a Jupyter kernel).
    """

    scale = 2.0
    instances: "weakref.WeakSet[FigureWidget]" = weakref.WeakSet()  # every widget made (the browser test)

    def __init__(self, controls: Sequence[W.Widget], figsize=(9, 3.6), ncols: int = 2, dpi: int = 80,
                 background: bool | None = None):
        self.controls = list(controls)
        self.figsize, self.ncols, self.dpi = tuple(figsize), ncols, dpi
        self.background = in_kernel() if background is None else bool(background)
        self._cond = threading.Condition(threading.Lock())
        self._wanted = self._drawn = self.renders = 0
        self._busy = self._paused = self._closed = False
        self._wake: threading.Event | None = None
        self.error: BaseException | None = None
        self.drawn_values: tuple | None = None
        self._positions: list | None = None  # the axes' places, computed on the first draw, then kept
        before = dict(vars(self))
        self._new_figure()
        self.build()
        self._built = [k for k, v in vars(self).items() if k not in before or before[k] is not v]
        width, height = (round(s * dpi) for s in self.figsize)
        self.image = W.Image(format="png", layout=W.Layout(width=f"{width}px", height="auto", max_width="100%",
                                                            align_self="flex-start", object_fit="contain"))
        self.message = W.HTML()
        self._render(raise_errors=True)  # the first image, before the widget is shown
        for c in self.controls:
            c.observe(self._on_change, names="value")
        # shown only when the page has lost the widget's kernel (ipywidgets marks the views
        # "jupyter-widgets-disconnected"): the controls greyed out and a line saying what to do
        self.notice = W.HTML(NOTICE_HTML)
        super().__init__([W.HBox(self.controls, layout=W.Layout(flex_flow="row wrap")).add_class("course-controls"),
                          self.image, self.message, self.notice])
        # marks read from the saved widget state by utils.widgets.saved (the snapshot on save)
        self.add_class(MARK_CLASS)
        self.add_class(f"course-class-{type(self).__name__}")
        FigureWidget.instances.add(self)

    # ------------------------------------------------------------------ what subclasses write
    def build(self) -> None:  # pragma: no cover - subclasses build
        """Make the figure's artists (once)."""
        raise NotImplementedError

    def update(self) -> None:  # pragma: no cover - subclasses update
        """Set the artists' data from the controls' current values (in place)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the rendering path
    def _new_figure(self) -> None:
        self.fig = Figure(figsize=self.figsize, dpi=self.dpi * self.scale, layout="constrained")
        self.canvas = FigureCanvasAgg(self.fig)
        self.axes = [self.fig.add_subplot(1, self.ncols, i + 1) for i in range(self.ncols)]
        self.live: list = []
        self._background = None

    def _draw(self) -> bytes:
        """Draw the figure (the background once, then only the live artists) and return its PNG."""
        if self._background is None:
            if self._positions is None:
                self.canvas.draw()  # the layout is computed here, with every artist shown
                self._positions = [ax.get_position(original=True) for ax in self.fig.axes]
                self.fig.set_layout_engine("none")  # and frozen: a move never shifts the axes
            else:  # a fresh figure of this widget: the same layout
                self.fig.set_layout_engine("none")
                for ax, position in zip(self.fig.axes, self._positions, strict=True):
                    ax.set_position(position)
                if not self.live:
                    self.canvas.draw()
            if not self.live:  # nothing declared live: every redraw is a full draw
                return png_of_canvas(self.canvas)
            # hide the live artists and draw the rest once; a hidden title would be moved by the
            # axes' title placement (it measures hidden text as empty), so texts keep their place
            shown = [(a, a.get_visible(), a.get_position() if isinstance(a, Text) else None) for a in self.live]
            for a, _, _ in shown:
                a.set_visible(False)
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.fig.bbox)
            for a, visible, position in shown:
                a.set_visible(visible)
                if position is not None:
                    a.set_position(position)
        if not self.live:
            self.canvas.draw()
            return png_of_canvas(self.canvas)
        self.canvas.restore_region(self._background)
        renderer = self.canvas.get_renderer()
        for a in sorted(self.live, key=lambda a: a.get_zorder()):
            if a.get_visible():
                a.draw(renderer)
        return png_of_canvas(self.canvas)

    def values(self) -> tuple:
        """The controls' current values, in order."""
        return tuple(c.value for c in self.controls)

    def set_values(self, values: Sequence[Any]) -> None:
        """Set every control at once, then redraw once."""
        self._paused = True
        try:
            for c, v in zip(self.controls, values, strict=True):
                c.value = v
        finally:
            self._paused = False
        self.request()

    def _on_change(self, change) -> None:
        if not self._paused:
            self.request()

    def request(self) -> None:
        """Ask for the figure of the controls' current values; coalesced with any redraw under way."""
        with self._cond:
            self._wanted += 1
        if self.background:
            if self._wake is None:
                self._wake = threading.Event()
                threading.Thread(target=_worker, args=(weakref.ref(self), self._wake), daemon=True,
                                 name=f"{type(self).__name__}-redraw").start()
            self._wake.set()
        else:
            self._drain()

    def _drain(self) -> None:
        """Redraw until the image shows the latest request; return at once if another thread draws."""
        while True:
            with self._cond:
                if self._busy or self._drawn >= self._wanted:
                    return
                self._busy, target = True, self._wanted
            try:
                self._render()
            finally:
                with self._cond:
                    self._busy, self._drawn = False, target
                    self._cond.notify_all()

    def _render(self, raise_errors: bool = False) -> None:
        with DRAW_LOCK, one_thread():
            values = self.values()
            try:
                self.update()
                png = self._draw()
            except Exception as err:  # a bad state must not kill the widget: say so, keep going
                self.error = err
                if raise_errors:
                    raise
                self.message.value = (f"<span style='color:#b00020'>could not draw this setting: "
                                      f"{html.escape(type(err).__name__)}: {html.escape(str(err))}</span>")
                return
            if raise_errors and os.environ.get("COURSE_CHECK_FIGURES") == "1":  # the first image, checked
                self.check_text()
            self.image.value = png
            self.drawn_values, self.renders, self.error = values, self.renders + 1, None
            if self.message.value:
                self.message.value = ""

    def check_text(self) -> None:
        """Raise :class:`utils.plotting.FigureTextOverlap` if two texts of the figure overlap or one
        falls outside the image (the PNG is the canvas, uncropped). Run on the first image when
        ``COURSE_CHECK_FIGURES=1``; the tests run it at every control's extremes."""
        from ..plotting import check_text_overlap

        with DRAW_LOCK:
            check_text_overlap(self.fig, name=f"the figure of {type(self).__name__} at {self.values()}", inside=True)

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every requested redraw is drawn (for tests and scripts); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and self._drawn >= self._wanted, timeout)

    def fresh_png(self) -> bytes:
        """PNG of the controls' current values drawn on a brand-new figure (the widget's is untouched),
        with the widget's layout.

        Tests compare it with ``image.value``: after any sequence of moves, the in-place image must
        equal, byte for byte, the image a new figure draws for the same values.
        """
        with DRAW_LOCK, one_thread():
            saved = {k: self.__dict__[k] for k in {*self._built, "fig", "canvas", "axes", "live", "_background"}}
            try:
                self._new_figure()
                self.build()
                self.update()
                return self._draw()
            finally:
                self.__dict__.update(saved)

    def close(self) -> None:
        self._closed = True
        if getattr(self, "_wake", None) is not None:  # also on a widget whose __init__ failed
            self._wake.set()
        super().close()

    def __repr__(self) -> str:  # fixed text, so stored notebook outputs compare
        return f"<{type(self).__name__}>"
