"""A saved course widget reopens as its last image and a line saying to run the cell again
(utils.widgets.saved, the Jupyter server's pre-save hook; walk-through 3, M2)."""
from __future__ import annotations

import base64
import copy

import nbformat
from ipywidgets.embed import embed_data

from utils.widgets import PushForwardWidget
from utils.widgets.saved import RERUN, STATE_MIME, VIEW_MIME, pre_save_hook, snapshot_widgets


def _saved_notebook(w, other_widget=None):
    """A notebook as JupyterLab saves it with widget state on: the view output and the manager state."""
    views = [w] + ([other_widget] if other_widget is not None else [])
    data = embed_data(views=views)
    cells = []
    for spec, v in zip(data["view_specs"], views):
        cell = nbformat.v4.new_code_cell("PushForwardWidget()")
        cell.outputs = [nbformat.v4.new_output("display_data", data={VIEW_MIME: spec, "text/plain": repr(v)})]
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["widgets"] = {STATE_MIME: data["manager_state"]}
    return nb


def test_a_saved_widget_becomes_its_last_image_and_a_rerun_line():
    w = PushForwardWidget(n=2000)
    w.set_values(("tanh", 0.8))
    nb = _saved_notebook(w)
    model = {"type": "notebook", "content": copy.deepcopy(nb)}
    pre_save_hook(model)
    out = model["content"]["cells"][0]["outputs"]
    assert [o["output_type"] for o in out] == ["stream", "display_data"]
    assert RERUN in out[0]["text"] and "PushForwardWidget" in out[0]["text"]
    assert "map f = tanh" in out[0]["text"] and "a = 0.8" in out[0]["text"]
    assert base64.b64decode(out[1]["data"]["image/png"]) == bytes(w.image.value)  # the last image drawn
    assert out[1]["metadata"]["image/png"]["width"] == 720  # shown at the widget's size
    assert "widgets" not in model["content"]["metadata"]  # nothing to restore: opening modifies nothing
    nbformat.validate(nbformat.from_dict(model["content"]))


def test_other_widgets_and_their_state_are_kept():
    import ipywidgets as W

    w, other = PushForwardWidget(n=2000), W.IntSlider(3)
    nb = _saved_notebook(w, other)
    assert snapshot_widgets(nb) == 1
    assert VIEW_MIME in nb.cells[1].outputs[0]["data"]
    assert STATE_MIME in nb.metadata["widgets"]


def test_without_saved_state_the_rerun_line_still_replaces_model_not_found():
    w = PushForwardWidget(n=2000)
    nb = _saved_notebook(w)
    del nb.metadata["widgets"]
    assert snapshot_widgets(nb) == 1
    out = nb.cells[0].outputs
    assert len(out) == 1 and RERUN in out[0]["text"]


def test_a_widget_carries_the_marks_and_the_disconnected_notice():
    w = PushForwardWidget(n=2000)
    assert "course-figure-widget" in w._dom_classes and "course-class-PushForwardWidget" in w._dom_classes
    assert ".jupyter-widgets-disconnected .course-rerun" in w.notice.value and RERUN in w.notice.value
