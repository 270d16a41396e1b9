"""utils.widgets.predict: Predict records a guess (kernel and file), reveal shows it beside the run's answer.

Headless: the buttons' callbacks are called directly; the browser test (tests/test_browser.py,
``-k predict``) clicks them in JupyterLab. The site's static form is tested here on its HTML.
"""
from __future__ import annotations

import json

import pytest

from utils.errors import InputError
from utils.widgets import predict as P
from utils.widgets.predict import Predict, recorded, reveal, static_answer_html, static_question_html
from utils.widgets.saved import snapshot_widgets


@pytest.fixture(autouse=True)
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_PREDICTIONS", str(tmp_path / "p.json"))
    monkeypatch.delenv("COURSE_QUIET", raising=False)
    monkeypatch.setattr(P, "_SESSION", {})
    monkeypatch.setattr(P, "_QUESTIONS", {})
    yield tmp_path / "p.json"


def _reveal_bundle(monkeypatch, *args, **kwargs):
    seen = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: seen.append((obj, kw)))
    reveal(*args, **kwargs)
    assert len(seen) == 1
    return seen[0]


def test_records_a_choice_in_the_kernel_and_the_file(fresh, monkeypatch):
    p = Predict("t-choice", "Which is closer?", choices=["the SDE", "the ODE"])
    assert p.answer.value is None and "Nothing recorded" in p.status.value
    assert p.record() is None and not fresh.exists()          # nothing chosen: nothing stored
    p.answer.value = "the ODE"
    p.button.click()
    assert recorded("t-choice") == "the ODE"
    assert json.loads(fresh.read_text())["t-choice"]["answer"] == "the ODE"
    assert "Recorded: <b>the ODE</b>" in p.status.value
    # a restarted kernel: the session is empty, the file remembers; the cell run again shows it
    monkeypatch.setattr(P, "_SESSION", {})
    again = Predict("t-choice", "Which is closer?", choices=["the SDE", "the ODE"])
    assert again.answer.value == "the ODE" and "Recorded earlier" in again.status.value
    data, kw = _reveal_bundle(monkeypatch, "t-choice", actual="the SDE", why="noise corrects errors")
    assert "Your prediction: the ODE" in data["text/plain"] and "The run's answer: the SDE" in data["text/plain"]
    assert "says otherwise" in data["text/plain"] and "noise corrects errors" in data["text/html"]
    assert kw["metadata"]["course"] == {"reveal": "t-choice", "question": "Which is closer?", "answer": "the SDE",
                                        "why": "noise corrects errors"}


def test_a_number_prediction_is_compared_by_its_ratio(monkeypatch):
    p = Predict("t-num", "Ratio?", number=(0.5, 4.0, 1.0))
    p.answer.value = 2.0
    p.record()
    data, _ = _reveal_bundle(monkeypatch, "t-num", actual=2.2)
    assert "Your prediction: 2" in data["text/plain"] and "well judged" in data["text/plain"]
    data, _ = _reveal_bundle(monkeypatch, "t-num", actual=0.5)
    assert "off by a factor 4" in data["text/plain"]


def test_reveal_without_a_prediction_shows_the_answer_and_never_raises(monkeypatch):
    data, _ = _reveal_bundle(monkeypatch, "never-asked", actual="yes")
    assert data["text/plain"].startswith("No prediction recorded") and "The run's answer: yes." in data["text/plain"]


def test_quiet_runs_ignore_the_file(fresh, monkeypatch):
    fresh.write_text(json.dumps({"t-q": {"answer": "a"}}))
    assert recorded("t-q") == "a"
    monkeypatch.setenv("COURSE_QUIET", "1")                   # nbval, CI, tools.course.execute
    data, _ = _reveal_bundle(monkeypatch, "t-q", actual="b")
    assert data["text/plain"].startswith("No prediction recorded")


def test_bad_input_gets_a_clear_message(monkeypatch):
    with pytest.raises(InputError, match="exactly one"):
        Predict("k", "q")
    with pytest.raises(InputError, match="two different"):
        Predict("k", "q", choices=["a", "a"])
    with pytest.raises(InputError, match="low < high"):
        Predict("k", "q", number=(2, 1, 1.5))
    with pytest.raises(InputError, match="non-empty"):
        Predict("", "q", choices=["a", "b"])
    Predict("k", "q", choices=["a", "b"])
    with pytest.raises(InputError, match="not one of the choices"):
        reveal("k", actual="c")


def test_the_output_carries_its_question_for_the_site():
    p = Predict("t-site", "Will RK4 beat Euler?", choices=["yes", "no"])
    data, meta = p._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data and "Will RK4 beat Euler?" in data["text/plain"]
    assert meta["course"] == {"predict": "t-site", "question": "Will RK4 beat Euler?", "choices": ["yes", "no"]}
    page = static_question_html(meta["course"])
    assert "Will RK4 beat Euler?" in page and "<li>yes</li>" in page and "<details" not in page
    folded = static_answer_html({"answer": "no", "why": "RK4 pays 4 NFE a step"})
    assert folded.startswith("<details") and "<b>no</b>" in folded and "RK4 pays" in folded
    assert "between 0.5 and 4" in static_question_html({"question": "r", "number": [0.5, 4.0, 1.0]})


def test_a_saved_notebook_keeps_the_chosen_answer_as_a_line():
    """The save hook (utils.widgets.saved) finds Predict by its dom class and reads its control."""
    from ipywidgets.embed import embed_data

    p = Predict("t-save", "Which?", choices=["left", "right"])
    p.answer.value = "right"
    state = embed_data(views=[p])["manager_state"]
    nb = {"metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": state}},
          "cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {
              "application/vnd.jupyter.widget-view+json": {"model_id": p.model_id}, "text/plain": "x"}}]}]}
    assert snapshot_widgets(nb) == 1
    line = nb["cells"][0]["outputs"][0]["text"]
    assert "Predict" in line and "Your prediction = right" in line


def test_the_site_shows_a_static_question_and_folds_the_answer():
    """tools.site.build.site_notebook turns the stored outputs into the static form (no widget model on the page)."""
    import nbformat

    from tools.site.build import site_notebook

    p = Predict("t-page", "Which one?", choices=["this", "that"])
    data, meta = p._repr_mimebundle_()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("Predict(...)", outputs=[nbformat.v4.new_output(
            "display_data", data={k: v for k, v in data.items()}, metadata=meta)]),
        nbformat.v4.new_code_cell("reveal(...)", outputs=[nbformat.v4.new_output(
            "display_data", data={"text/plain": "No prediction recorded", "text/html": "<div>x</div>"},
            metadata={"course": {"reveal": "t-page", "question": "Which one?", "answer": "that", "why": "w"}})])])
    page = site_notebook(nb, "99_test", {}, solutions=True, animations={})
    question, answer = (c.outputs[0]["data"] for c in page.cells)
    assert list(question) == ["text/html"] and "Which one?" in question["text/html"] and "<li>that</li>" in question["text/html"]
    assert answer["text/html"].startswith("<details") and "<b>that</b>" in answer["text/html"]
    assert "No prediction recorded" not in str(answer)
