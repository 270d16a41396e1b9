"""The course's colours and small figure helpers (introduced in notebook 00).

One colour means one thing across every notebook:
base samples (noise, t=0) are blue, data (t=1) orange, model samples green,
exact or true quantities black, learned ones purple, trajectories grey.
"""
from __future__ import annotations

import io

import matplotlib
import torch

# Log axes label their ticks as plain decimals from 0.001 to 100 ("0.3", not "3x10^-1"; walk-through 3,
# p3); beyond that, powers of ten. Set once for every notebook: ``import utils`` imports this module.
matplotlib.rcParams["axes.formatter.min_exponent"] = 3

__all__ = ["COLORS", "scatter", "figure_png", "setup_axes", "check_text_overlap", "text_overlaps", "figure_texts",
           "text_outside", "FigureTextOverlap", "install_figure_check"]

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


def setup_axes(ax, title: str, xlabel: str = "first coordinate", ylabel: str = "second coordinate",
               lim: float | None = None):
    """Title, axis labels and (optionally) square limits [-lim, lim]^2.

    The default labels name coordinates in words: $x_1$ is a data point in the flow-matching notebooks
    (review 3, P10), so no figure uses it for an axis.
    """
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


# ---------------------------------------------------------------------- no overlapping text
class FigureTextOverlap(AssertionError):
    """Two text boxes of a figure overlap, or a text falls outside the canvas (raised by
    :func:`check_text_overlap`)."""


def _axes_name(fig, ax) -> str:
    title = ax.get_title() or ax.get_title("left") or ax.get_title("right")
    return f"axes {fig.axes.index(ax) + 1}" + (f" ({title!r})" if title else "")


def figure_texts(fig, renderer=None) -> list[tuple[str, "matplotlib.transforms.Bbox"]]:
    """(name, window extent) of every visible text box of a drawn figure: the suptitle and figure
    texts, and per axes its titles, axis labels, tick labels, offset texts and legend (one box)."""
    renderer = renderer or fig._get_renderer()
    out = []

    def add(name, artist):
        if artist is None or not artist.get_visible():
            return
        if hasattr(artist, "get_text") and not artist.get_text().strip():
            return
        box = artist.get_window_extent(renderer)
        if box.width > 0 and box.height > 0:
            out.append((name, box))

    for sub in [fig, *getattr(fig, "subfigs", [])]:
        special = {id(getattr(sub, f"_sup{k}", None)): f"the sup{k}" for k in ("title", "xlabel", "ylabel")}
        for t in sub.texts:  # the suptitle and sup-labels are figure texts too
            add(f"{special.get(id(t), 'the figure text')} {t.get_text()!r}", t)
        for legend in sub.legends:
            add("the figure legend", legend)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        where = _axes_name(fig, ax)
        for loc in ("center", "left", "right"):
            t = {"center": ax.title, "left": ax._left_title, "right": ax._right_title}[loc]
            add(f"the title {t.get_text()!r} of axes {fig.axes.index(ax) + 1}", t)
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis), *((("z", ax.zaxis),) if hasattr(ax, "zaxis") else ())):
            if not axis.get_visible():
                continue
            add(f"the {name} label {axis.label.get_text()!r} of {where}", axis.label)
            add(f"the {name} offset text {axis.offsetText.get_text()!r} of {where}", axis.offsetText)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                for label in (tick.label1, tick.label2):
                    if tick.get_visible() and label.get_visible() and _in_view(axis, tick):
                        add(f"the {name} tick label {label.get_text()!r} of {where}", label)
        legend = ax.get_legend()
        if legend is not None:
            add(f"the legend of {where}", legend)
    return out


def _in_view(axis, tick) -> bool:
    lo, hi = sorted(axis.get_view_interval())
    loc = tick.get_loc()
    return loc is not None and lo - 1e-9 * (hi - lo) <= loc <= hi + 1e-9 * (hi - lo)


def text_overlaps(fig, tolerance: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of text boxes of ``fig`` that overlap by more than ``tolerance`` pixels both ways,
    measured with matplotlib's own window extents after drawing the figure."""
    renderer = fig._get_renderer()  # any canvas, also a closed figure's
    fig.draw(renderer)
    boxes = figure_texts(fig, renderer)
    found = []
    for i, (name_a, a) in enumerate(boxes):
        for name_b, b in boxes[i + 1:]:
            dx = min(a.x1, b.x1) - max(a.x0, b.x0)
            dy = min(a.y1, b.y1) - max(a.y0, b.y0)
            if dx > tolerance and dy > tolerance:
                found.append((name_a, name_b))
    return found


def text_outside(fig, tolerance: float = 1.0, draw: bool = True) -> list[str]:
    """Names of the text boxes of ``fig`` that reach more than ``tolerance`` pixels past the edge of
    its canvas: what a PNG of the canvas cuts off (a widget's image; a title above the top edge).

    ``draw=False`` measures the figure as last drawn (a widget's canvas, drawn in place)."""
    canvas = fig.canvas
    renderer = fig._get_renderer() if draw or not hasattr(canvas, "get_renderer") else canvas.get_renderer()
    if draw:
        fig.draw(renderer)
    width, height = renderer.get_canvas_width_height()
    return [name for name, box in figure_texts(fig, renderer)
            if box.x0 < -tolerance or box.y0 < -tolerance or box.x1 > width + tolerance or box.y1 > height + tolerance]


def check_text_overlap(fig, name: str = "the figure", tolerance: float = 1.0, inside: bool = False) -> None:
    """Raise :class:`FigureTextOverlap` naming every pair of overlapping text boxes of ``fig`` and,
    with ``inside=True`` (a figure shown as its canvas, not cropped to its contents), every text
    that falls outside the canvas."""
    pairs = text_overlaps(fig, tolerance)
    outside = text_outside(fig, tolerance, draw=False) if inside else []
    problems = []
    if pairs:
        lines = "\n".join(f"  - {a} overlaps {b}" for a, b in pairs)
        problems.append(f"{name} has overlapping text ({len(pairs)} pair{'s' if len(pairs) > 1 else ''}):\n{lines}"
                        "\nShorten titles, use layout='constrained', or fewer ticks.")
    if outside:
        lines = "\n".join(f"  - {a}" for a in outside)
        problems.append(f"{name} has text outside its canvas, cut off in the image ({len(outside)}):\n{lines}"
                        "\nMake the figure taller or wider, or the titles shorter.")
    if problems:
        raise FigureTextOverlap("\n".join(problems))


CHECK_FIGURES_ENV = "COURSE_CHECK_FIGURES"
CHECK_MIME = "application/x-course-figure-text-check"


def install_figure_check(shell=None) -> bool:
    """Check every figure a notebook shows for overlapping text (when ``COURSE_CHECK_FIGURES=1``).

    Installed by ``import utils`` in an IPython kernel (``utils.runtime``). The check is one more
    display formatter: every way a figure reaches the page (``plt.show()``, the inline backend's flush
    after the cell, a figure as the cell's value, ``display(fig)``) runs the display formatters on
    the figure while it is still open. (A ``post_execute`` hook would miss figures that ``plt.show()``
    inside the cell already showed and closed; a printer registered by type would be dropped when
    the inline backend configures itself, which removes every formatter's entry for ``Figure``.)
    An overlap raises :class:`FigureTextOverlap` naming the texts: the cell shows the error, and
    nbval fails it. Returns True when installed.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False
    from IPython.core.formatters import BaseFormatter
    from matplotlib.figure import Figure
    from traitlets import Unicode

    class FigureTextCheck(BaseFormatter):
        """Produces no output: raises FigureTextOverlap for a figure whose texts overlap."""

        format_type = Unicode(CHECK_MIME)

        def __call__(self, obj):
            if isinstance(obj, Figure):
                # the inline backend crops a shown figure to its contents (bbox_inches="tight", its
                # default): text past the canvas is then kept, so only a figure shown uncropped is
                # also checked for it
                config = _inline_config(shell)
                kwargs = config.print_figure_kwargs if config is not None else {"bbox_inches": "tight"}
                check_text_overlap(obj, name=f"this figure ({obj.get_suptitle() or _first_title(obj)!r})",
                                   inside=kwargs.get("bbox_inches") != "tight")
            return None

    shell.display_formatter.formatters[CHECK_MIME] = FigureTextCheck(parent=shell.display_formatter)
    return True


def _inline_config(shell):
    """The inline backend's configuration object of ``shell`` (None outside one)."""
    try:
        from matplotlib_inline.config import InlineBackend
    except ImportError:  # pragma: no cover - the course pins matplotlib-inline
        return None
    return InlineBackend.instance(parent=shell) if InlineBackend.initialized() else None


def _first_title(fig) -> str:
    return next((ax.get_title() for ax in fig.axes if ax.get_title()), "untitled")
