"""What a saved notebook keeps of a course widget: its last image and a line saying to run the cell again.

A widget lives in its kernel. Saved and reopened after the kernel is gone, JupyterLab either shows
"model not found" (no widget state saved) or restores the widget from the saved state: the image
shows, the controls move, but nothing redraws and nothing says why (walk-through 3, M2). Restoring
also marks the notebook modified a few seconds after opening (ipywidgets' lab manager sets the
notebook dirty for every model it restores when it saves widget state), so closing it asked to
save changes nobody made.

:func:`pre_save_hook` runs in the Jupyter server on every save (``make lab`` configures it:
``ContentsManager.pre_save_hook``, written by ``tools.course.labconfig``). In the file on disk it replaces
the output of each course widget (a :class:`~utils.widgets.base.FigureWidget`) by

- a text line: "<name> (not connected): run this cell again to use its controls. Saved with: a = 0.8, ...",
  the controls' values read from the saved widget state, and
- the widget's last image, from the saved state, as an ordinary PNG output,

and drops the widget state when no other widget needs it. The page open in the browser keeps its
live widget; a reopened notebook shows the snapshot, restores no model, and is not modified by
opening it. Other widgets (not the course's) are left as they are.
"""
from __future__ import annotations

import re
from typing import Any

__all__ = ["pre_save_hook", "snapshot_widgets", "MARK_CLASS", "RERUN"]

VIEW_MIME = "application/vnd.jupyter.widget-view+json"
STATE_MIME = "application/vnd.jupyter.widget-state+json"
MARK_CLASS = "course-figure-widget"  # the dom class every FigureWidget carries (found in the saved state)
RERUN = "run this cell again to use its controls"
_REPR = re.compile(r"^<(\w+)>$")  # FigureWidget.__repr__: a fixed "<ClassName>"


def _ref(value: Any) -> str | None:
    return value[len("IPY_MODEL_"):] if isinstance(value, str) and value.startswith("IPY_MODEL_") else None


def _control_value(state: dict) -> str | None:
    """The shown value of a saved control (slider, toggle buttons, selection slider, checkbox)."""
    if "_options_labels" in state and state.get("index") is not None:
        labels, index = state["_options_labels"], state["index"]
        return str(labels[index]) if isinstance(index, int) and 0 <= index < len(labels) else None
    if "value" in state and not isinstance(state["value"], (dict, list)):
        value = state["value"]
        if isinstance(value, float):
            return f"{value:.3g}"
        return str(value)
    return None


def _snapshot(models: dict, model_id: str) -> tuple[str, list[str], str | None, int | None] | None:
    """(class name, ["description = value", ...], base64 PNG or None, its width in CSS pixels or None)
    of a saved course widget."""
    box = models.get(model_id)
    if not box or MARK_CLASS not in box.get("state", {}).get("_dom_classes", []):
        return None
    name = next((c[len("course-class-"):] for c in box["state"]["_dom_classes"] if c.startswith("course-class-")),
                "widget")
    controls, png, width = [], None, None
    for child in map(_ref, box["state"].get("children", [])):
        model = models.get(child) or {}
        state = model.get("state", {})
        if model.get("model_name") == "ImageModel":
            buffers = model.get("buffers") or []
            png = next((b.get("data") for b in buffers if b.get("path") == ["value"]
                        and b.get("encoding", "base64") == "base64"), None)
            layout = (models.get(_ref(state.get("layout"))) or {}).get("state", {})
            width = re.match(r"^(\d+)px$", str(layout.get("width", "")))
            width = int(width.group(1)) if width else None
        for grandchild in map(_ref, state.get("children", [])):  # the row of controls
            c = (models.get(grandchild) or {}).get("state", {})
            value = _control_value(c)
            if value is not None and c.get("description"):
                controls.append(f"{c['description']} = {value}")
    return name, controls, png, width


def snapshot_widgets(nb: dict) -> int:
    """Replace, in the notebook dict ``nb`` (nbformat 4), each course widget's output by its snapshot;
    drop the saved widget state when nothing else uses it. Returns how many outputs were replaced."""
    metadata = nb.setdefault("metadata", {})
    models = ((metadata.get("widgets") or {}).get(STATE_MIME) or {}).get("state") or {}
    replaced, others = 0, False
    for cell in nb.get("cells", []):
        outputs = cell.get("outputs")
        if not outputs:
            continue
        new = []
        for out in outputs:
            data = out.get("data") or {}
            view = data.get(VIEW_MIME)
            if not view:
                new.append(out)
                continue
            snap = _snapshot(models, view.get("model_id", ""))
            plain = data.get("text/plain", "")
            plain = "".join(plain) if isinstance(plain, list) else plain
            if snap is None and not (_REPR.match(plain.strip()) and plain.strip()[1:-1] in _course_widgets()):
                others = True
                new.append(out)
                continue
            name, controls, png, width = snap if snap is not None else (plain.strip()[1:-1], [], None, None)
            line = f"↻ {name} (not connected to a kernel): {RERUN}."
            if controls:
                line += " Saved with " + ", ".join(controls) + "."
            new.append({"output_type": "stream", "name": "stdout", "text": line + "\n"})
            if png:
                # shown at the widget's size (the PNG is drawn at twice it, for sharp screens)
                new.append({"output_type": "display_data",
                            "metadata": {"image/png": {"width": width}} if width else {},
                            "data": {"image/png": png, "text/plain": f"<last image of {name}>"}})
            replaced += 1
        cell["outputs"] = new
    if replaced and not others:
        metadata.pop("widgets", None)
    return replaced


def _course_widgets() -> set[str]:
    # by name, not by import: the hook runs in the Jupyter server, which loads this file alone (no torch)
    return {"FigureWidget", "PushForwardWidget", "VectorFieldExplorer", "SDEvsODEWidget", "PathExplorer"}


def pre_save_hook(model: dict, **kwargs) -> None:
    """Jupyter server ``ContentsManager.pre_save_hook``: snapshot the course widgets of a saved notebook."""
    if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
        try:
            snapshot_widgets(model["content"])
        except Exception as err:  # never lose a student's save to this hook
            log = kwargs.get("contents_manager")
            if log is not None and getattr(log, "log", None) is not None:
                log.log.warning("course widget snapshot skipped: %s", err)
