"""Widgets on a static page (``python -m tools.site.build``): each widget becomes an animation of it
sweeping its main control, rendered at build time with matplotlib's JS animation (``HTMLWriter``, the writer of ``to_jshtml``; no ffmpeg).

A static page has no kernel, and a widget is built from the notebook's own objects (a trained
field, a score, a data set). So, for each notebook that shows a widget, the code of its solution
notebook is run in a throwaway kernel (nbclient, the notebook's own folder, ``COURSE_QUIET=1``)
up to its last widget cell; in each widget cell, the widget that the cell would display is handed
to :func:`sweep` instead. The pages still show the stored outputs of ``solutions/``; only these
animations are computed. They are cached in ``build/site-cache/`` under a hash of the code run
and of ``utils/``, so a rebuild with unchanged notebooks runs nothing.

The adapter (:func:`sweep`) relies on this much of the widget API (``utils.widgets.FigureWidget``):

- ``widget.fig``: the matplotlib figure the widget draws into, redrawn in place;
- the main control is an ipywidget attribute (``MAIN_CONTROL`` names it by class, else the first
  slider in ``widget.controls``) with ``value`` and ``min``/``max``/``step`` (a float or int
  slider) or ``options`` (a selection slider);
- setting ``control.value`` redraws ``widget.fig`` at once (an ``observe`` callback).

A widget cell is a code cell whose last statement displays a widget: an expression calling a
name that ends in ``Widget`` or ``Explorer`` (``PathExplorer()``), a name bound in the same cell
to such a call (``w = SDEvsODEWidget(...)`` then ``w``), or ``display(...)`` of either. This is
the rule of ``tests/test_browser.py``, read on the code.
"""
from __future__ import annotations

import ast
import asyncio
import time
import hashlib
import json
import os
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
WIDGET_SUFFIXES = ("Widget", "Explorer")
# class name -> the control the animation sweeps (what a student moves first to see the idea)
MAIN_CONTROL = {"PushForwardWidget": "a", "VectorFieldExplorer": "t", "SDEvsODEWidget": "t",
                "PathExplorer": "t"}
FRAMES = 16          # frames of a float slider's sweep
INTERVAL_MS = 300    # between frames
DPI = 72             # of the frames, for a widget with no `dpi` of its own (FigureWidget has one)
VERSION = "3"        # bump when sweep() changes: the cache key holds it, utils/ and the code run


# ----------------------------------------------------------------- finding widget cells
def _call_name(node: ast.AST) -> str:
    while isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _is_widget_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _call_name(node).endswith(WIDGET_SUFFIXES)


def displayed_widget(source: str) -> ast.expr | None:
    """The expression node of the widget a cell displays, or None (the rule in the docstring)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return None
    if not body or not isinstance(body[-1], ast.Expr):
        return None
    expr = body[-1].value
    if isinstance(expr, ast.Call) and _call_name(expr) == "display" and len(expr.args) == 1:
        expr = expr.args[0]
    if _is_widget_call(expr):
        return expr
    if isinstance(expr, ast.Name):
        for stmt in body[:-1]:
            if (isinstance(stmt, ast.Assign) and _is_widget_call(stmt.value)
                    and any(isinstance(t, ast.Name) and t.id == expr.id for t in stmt.targets)):
                return expr
    return None


def widget_cells(nb: nbformat.NotebookNode) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and displayed_widget(c.source)]


def _swept_source(source: str, key: str) -> str:
    """The cell with its displayed widget handed to the adapter instead of displayed."""
    expr = displayed_widget(source)
    last = ast.parse(source).body[-1]
    lines = source.split("\n")
    head = "\n".join(lines[: last.lineno - 1] + [lines[last.lineno - 1][: last.col_offset]])
    call = ast.get_source_segment(source, expr)
    return f"{head}\n__site_sweep({call}, {key!r})\n"


# ----------------------------------------------------------------- the adapter
def _main_control(widget):
    name = next((MAIN_CONTROL[k.__name__] for k in type(widget).__mro__ if k.__name__ in MAIN_CONTROL), None)
    if name is not None:
        return name, getattr(widget, name)
    for c in getattr(widget, "controls", []):
        if type(c).__name__.endswith("Slider"):
            return getattr(c, "description", "") or type(c).__name__, c
    raise TypeError(f"{type(widget).__name__}: no slider to sweep")


def sweep_values(control) -> list:
    """The values the sweep sets: a selection slider's options, else up to FRAMES evenly spaced steps."""
    if not hasattr(control, "max"):   # SelectionSlider
        return [v[1] if isinstance(v, tuple) else v for v in control.options]
    lo, hi = control.min, control.max
    step = control.step or (hi - lo) / (FRAMES - 1)
    n_steps = int(round((hi - lo) / step))
    picks = sorted({round(k * n_steps / (FRAMES - 1)) for k in range(FRAMES)}) if n_steps >= FRAMES else range(n_steps + 1)
    vals = [lo + k * step for k in picks]
    return [int(v) for v in vals] if isinstance(lo, int) else [round(float(v), 10) for v in vals]


def _reset_mathtext() -> None:
    from matplotlib import mathtext
    from pyparsing import ParserElement

    ParserElement.reset_cache()
    mathtext.MathTextParser._parser = None


def sweep(widget, out: str | Path) -> None:
    """Write to ``out`` a JSON {"html": the JS animation, "control": name, "values": [...], "widget": class}.

    The animation is matplotlib's JS animation: ``HTMLWriter`` with embedded frames, the writer
    behind ``Animation.to_jshtml``, fed one frame per value of the main control. (Driven directly
    rather than through ``FuncAnimation``, which redraws the figure once more per frame.)
    """
    import tempfile

    from matplotlib.animation import HTMLWriter

    from utils.widgets.base import DRAW_LOCK

    settle = getattr(widget, "wait", lambda: True)  # FigureWidget.wait: every requested redraw drawn
    if hasattr(widget, "background"):
        # In a kernel a widget redraws on a background thread; the sweep grabs frames of the same
        # figure on this one. Two threads drawing one figure crash FreeType ("invalid outline", a dead
        # kernel), so the sweep draws on this thread only, after any redraw under way has finished.
        widget.background = False
        settle()
    name, control = _main_control(widget)
    values = sweep_values(control)
    writer = HTMLWriter(fps=1000 / INTERVAL_MS, embed_frames=True, default_mode="loop")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sweep.html"
        with writer.saving(widget.fig, path, dpi=getattr(widget, "dpi", DPI)):
            for v in values:
                try:
                    control.value = v   # the widget redraws widget.fig in place, on this thread
                    settle()
                    with DRAW_LOCK:
                        writer.grab_frame()
                except ValueError:      # matplotlib's mathtext parser, left in a bad state by earlier
                    _reset_mathtext()   # cells of a long kernel, fails once; a fresh parser draws it
                    widget.redraw() if hasattr(widget, "redraw") else None
                    settle()
                    with DRAW_LOCK:
                        writer.grab_frame()
        html = path.read_text()
    Path(out).write_text(json.dumps({"html": html, "control": name, "values": values,
                                     "widget": type(widget).__name__}))


# ----------------------------------------------------------------- running the notebooks
def _fingerprint() -> str:
    h = hashlib.sha256(repr((VERSION, FRAMES, INTERVAL_MS, DPI, MAIN_CONTROL)).encode())
    for p in sorted((ROOT / "utils").rglob("*.py")):
        h.update(str(p.relative_to(ROOT)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _plan(path: Path, fingerprint: str) -> tuple[nbformat.NotebookNode, dict[int, str]]:
    """The notebook to run (code up to its last widget cell) and {widget cell index: cache key}."""
    nb = nbformat.read(path, as_version=4)
    cells = widget_cells(nb)
    keys, h = {}, hashlib.sha256(fingerprint.encode())
    for i, cell in enumerate(nb.cells[: max(cells, default=-1) + 1]):
        if cell.cell_type == "code":
            h.update(cell.source.encode() + b"\0")
        if i in cells:
            keys[i] = f"{path.stem}-cell{i:02d}-{h.hexdigest()[:16]}"
    return nb, keys


def _runner(nb: nbformat.NotebookNode, keys: dict[int, str], cache: Path) -> nbformat.NotebookNode:
    setup = (f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
             "from tools.site.widgets import sweep as _site_sweep\n"
             f"def __site_sweep(w, key):\n    _site_sweep(w, {str(cache)!r} + '/' + key + '.json')\n")
    cells = [nbformat.v4.new_code_cell(setup)]
    for i, cell in enumerate(nb.cells[: max(keys) + 1]):
        if cell.cell_type != "code":
            continue
        src = _swept_source(cell.source, keys[i]) if i in keys else cell.source
        cells.append(nbformat.v4.new_code_cell(src))
    run = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": nb.metadata.get("kernelspec", {})})
    return run


# The site's kernels are local, started and ended by this build on 127.0.0.1; ipykernel's warning that
# TCP is unencrypted ("susceptible to eavesdropping", once a kernel) is noise here: the kernels log errors only.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]
HEARTBEAT_S = 5.0  # a progress line at least this often while the kernels run


async def _execute(run: nbformat.NotebookNode, folder: Path, name: str, limit: asyncio.Semaphore,
                   progress: dict | None = None) -> list[str]:
    """Run the cells; return the errors they raised. A failing cell (a claim that a notebook being edited
    no longer supports, say) does not stop the run: the tests report it; the widget may still be built.
    ``progress[name]`` is kept at [cells run, cells] for the progress lines."""
    from nbclient import NotebookClient

    progress = {} if progress is None else progress

    def executed(cell=None, cell_index: int = 0, **_) -> None:
        progress[name][0] = cell_index + 1

    async with limit:
        progress[name] = [0, len(run.cells)]  # running (a notebook waiting for a kernel slot is not listed)
        client = NotebookClient(run, timeout=600, kernel_name="python3", record_timing=False, allow_errors=True,
                                resources={"metadata": {"path": str(folder)}}, extra_arguments=KERNEL_ARGS,
                                on_cell_executed=executed)
        await client.async_execute()
    return [f"{name} ({c.source.splitlines()[0][:60]!r}...): {o.ename}: {o.evalue[:300]}"
            for c in run.cells for o in c.get("outputs", []) if o.output_type == "error"]


def render_widgets(notebooks: list[Path], cache: Path, jobs: int | None = None,
                   log=print) -> dict[tuple[str, int], dict]:
    """{(notebook stem, cell index): {"html", "control", "values", "widget"}} for every widget cell."""
    cache.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint()
    todo, found = [], {}
    for path in notebooks:
        nb, keys = _plan(path, fingerprint)
        if not keys:
            continue
        if any(not (cache / f"{k}.json").exists() for k in keys.values()):
            todo.append((path, _runner(nb, keys, cache)))
        for i, k in keys.items():
            found[(path.stem, i)] = cache / f"{k}.json"
    if todo:
        log(f"rendering widget animations: running {', '.join(p.name for p, _ in todo)} up to their widgets")
        os.environ.setdefault("COURSE_QUIET", "1")
        os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        limit_n = jobs or max(1, min(len(todo), os.cpu_count() or 1))

        progress: dict[str, list[int]] = {}
        start = time.monotonic()

        async def heartbeat():
            while True:
                await asyncio.sleep(HEARTBEAT_S)
                running = ", ".join(f"{name[:2]} cell {k} of {n}" for name, (k, n) in progress.items() if k < n)
                waiting = len(todo) - len(progress)
                log(f"   widget animations, {time.monotonic() - start:.0f} s: {running or 'starting the kernels'}"
                    + (f"; {waiting} waiting for a kernel" if waiting else ""))

        async def one(p, run, limit):
            errors = await _execute(run, p.parent, p.name, limit, progress)
            log(f"   widget animations of {p.name} ready ({time.monotonic() - start:.0f} s)")
            return errors

        async def go():
            limit = asyncio.Semaphore(limit_n)
            beat = asyncio.create_task(heartbeat())
            try:
                return await asyncio.gather(*(one(p, run, limit) for p, run in todo))
            finally:
                beat.cancel()

        errors = [e for errs in asyncio.run(go()) for e in errs]
        for e in errors:
            log(f"warning: while rendering the widgets, {e}")
    for stale in set(cache.glob("*.json")) - set(found.values()):  # animations of older code
        if stale.name.startswith(tuple(p.stem for p in notebooks)):
            stale.unlink()
    out = {}
    for where, f in found.items():
        if not f.exists():
            raise RuntimeError(f"no animation could be made for the widget of {where[0]} cell {where[1]}: "
                               "the errors above stopped it")
        out[where] = json.loads(f.read_text())
    return out
