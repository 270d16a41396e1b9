"""Predict, then run: the student commits to a guess before an experiment; the run reveals the answer.

    from utils.widgets import Predict, reveal
    Predict("04-ode-vs-sde", "At 10 steps, which is closer to the data?",
            choices=["the SDE", "the ODE", "about level"])              # multiple choice
    Predict("03-rk4-euler", "W2 of Euler over W2 of RK4 at 8 NFE?", number=(0.5, 4.0, 1.0))  # a slider
    ... the experiment ...
    reveal("04-ode-vs-sde", actual="the SDE" if w2_sde < w2_ode else "the ODE", why="...")

- :class:`Predict` shows the question, the choices (toggle buttons) or a slider, and a button
  "Record my prediction". Pressing it stores the answer in the kernel and in
  ``.course-predictions.json`` in the notebook's folder (override: ``COURSE_PREDICTIONS=path``), so it
  survives reopening the notebook and restarting the kernel: the cell run again shows the recorded
  answer, and :func:`reveal` finds it.
- :func:`reveal` shows the run's answer (``actual``, computed from the run's numbers by the caller, never
  typed in) beside the recorded prediction, and ``why``. With nothing recorded it says so and still shows
  the answer: it never raises for a missing prediction and never stops the notebook. Predictions are
  not graded.
- Under ``COURSE_QUIET`` (nbval, CI, ``tools.course.execute``) nothing is read from the file, so stored
  outputs never depend on someone's local guesses.
- A saved notebook: the save hook (:mod:`utils.widgets.saved`) replaces the widget by a line with the
  chosen value (the box carries the course widget's dom class). The site (``tools.site``) reads the
  outputs' metadata ``{"course": {"predict": ...}}`` and ``{"course": {"reveal": ...}}`` and shows a
  static question (:func:`static_question_html`) and the answer folded (:func:`static_answer_html`).
"""
from __future__ import annotations

import html
import json
import math
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as W

from .saved import MARK_CLASS

__all__ = ["Predict", "reveal", "recorded", "predictions_file", "static_question_html", "static_answer_html",
           "FILE_NAME"]

FILE_NAME = ".course-predictions.json"
_SESSION: dict[str, Any] = {}        # key -> the answer recorded in this kernel
_QUESTIONS: dict[str, dict] = {}     # key -> {"question", "choices" | "number"} of the Predicts built here


def _input_error(msg: str) -> Exception:
    from utils.errors import InputError

    return InputError(msg)


def predictions_file() -> Path:
    """Where recorded predictions are kept: ``$COURSE_PREDICTIONS``, else the notebook's folder."""
    return Path(os.environ.get("COURSE_PREDICTIONS") or Path.cwd() / FILE_NAME)


def _quiet() -> bool:
    return os.environ.get("COURSE_QUIET", "") not in ("", "0")


def _read_file() -> dict:
    if _quiet():
        return {}
    try:
        data = json.loads(predictions_file().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def recorded(key: str) -> Any:
    """The prediction recorded for ``key`` (this kernel first, then the file), or None."""
    if key in _SESSION:
        return _SESSION[key]
    entry = _read_file().get(key)
    return entry.get("answer") if isinstance(entry, dict) else None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


class Predict(W.VBox):
    """A question, its choices (or a number slider) and a 'Record my prediction' button (module docstring)."""

    def __init__(self, key: str, question: str, choices: Sequence[str] | None = None,
                 number: tuple[float, float, float] | None = None, step: float | None = None):
        if not isinstance(key, str) or not key.strip():
            raise _input_error(f"Predict: key must be a non-empty string naming the question, got {key!r}")
        if (choices is None) == (number is None):
            raise _input_error("Predict: give either choices=[...] (multiple choice) or number=(low, high, start) "
                               "(a slider), exactly one of them")
        self.key, self.question = key, str(question)
        before = recorded(key)
        if choices is not None:
            choices = [str(c) for c in choices]
            if len(choices) < 2 or len(set(choices)) != len(choices):
                raise _input_error(f"Predict: choices must be at least two different strings, got {choices!r}")
            self.answer = W.ToggleButtons(options=choices, value=before if before in choices else None,
                                          description="Your prediction", style={"description_width": "initial"})
            spec = {"choices": choices}
        else:
            try:
                low, high, start = (float(v) for v in number)
            except (TypeError, ValueError):
                raise _input_error(f"Predict: number must be (low, high, start), got {number!r}") from None
            if not (low < high and low <= start <= high):
                raise _input_error(f"Predict: number=(low, high, start) needs low < high and start between them, "
                                   f"got {number!r}")
            from .base import readout_format

            step = float(step) if step else (high - low) / 100
            value = float(before) if isinstance(before, (int, float)) and low <= before <= high else start
            self.answer = W.FloatSlider(min=low, max=high, step=step, value=value, description="Your prediction",
                                        readout_format=readout_format(step), continuous_update=False,
                                        style={"description_width": "initial"},
                                        layout=W.Layout(width="480px"))
            spec = {"number": [low, high, start]}
        _QUESTIONS[key] = {"question": self.question, **spec}
        self.spec = spec
        self.button = W.Button(description="Record my prediction", icon="check", button_style="info",
                               layout=W.Layout(width="auto"))
        self.status = W.HTML(self._status(before, earlier=True))
        self.button.on_click(lambda _: self.record())
        # the answer in a row of its own: the save hook reads a box's rows of controls (utils.widgets.saved)
        super().__init__([W.HTMLMath(f"<b>Predict before you run.</b> {self.question}"), W.HBox([self.answer]),
                          W.HBox([self.button, self.status])])
        self.add_class(MARK_CLASS)
        self.add_class("course-class-Predict")
        self.add_class("course-predict")

    def _status(self, value: Any, earlier: bool = False) -> str:
        if value is None:
            return "<i>Nothing recorded yet: choose, then press the button (not graded).</i>"
        when = "Recorded earlier" if earlier else "Recorded"
        return (f"<span class='course-predict-recorded'>{when}: <b>{html.escape(_fmt(value))}</b>. "
                "Run the experiment below; the reveal compares.</span>")

    def record(self) -> Any:
        """Store the current choice (in this kernel and in the predictions file); return it."""
        value = self.answer.value
        if value is None:
            self.status.value = "<i>Choose an answer first, then press the button.</i>"
            return None
        _SESSION[self.key] = value
        try:
            path = predictions_file()
            data = {}
            if path.exists():
                try:
                    data = json.loads(path.read_text())
                except ValueError:
                    data = {}
            data[self.key] = {"question": self.question, "answer": value,
                              "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            path.write_text(json.dumps(data, indent=1))
        except OSError:  # a read-only folder: the kernel still has it
            pass
        self.status.value = self._status(value)
        return value

    def __repr__(self) -> str:
        return f"<Predict {self.key}>"

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        data = dict(data[0] if isinstance(data, tuple) else data)
        data["text/plain"] = f"Predict: {self.question}  (run this cell in Jupyter to record an answer)"
        return data, {"course": {"predict": self.key, "question": self.question, **self.spec}}


def _verdict(spec: dict, mine: Any, actual: Any) -> str:
    if "number" in spec or isinstance(actual, (int, float)) and not isinstance(actual, bool):
        ratio = mine / actual if actual else math.inf
        return f"off by a factor {ratio:.2g}" if not 0.8 <= ratio <= 1.25 else "within 25 %: well judged"
    return "it matches the run" if str(mine) == str(actual) else "the run says otherwise: that is what it is for"


def reveal(key: str, actual: Any, why: str = "") -> None:
    """Show the run's answer beside the recorded prediction (see the module docstring). Never raises
    for a missing prediction; raises InputError when ``actual`` is not one of the question's choices."""
    from IPython.display import display

    spec = _QUESTIONS.get(key, {})
    if "choices" in spec and str(actual) not in spec["choices"]:
        raise _input_error(f"reveal({key!r}): actual={actual!r} is not one of the choices {spec['choices']}")
    if isinstance(actual, (int, float)) and not isinstance(actual, bool):
        actual = float(actual)
        if not math.isfinite(actual):
            raise _input_error(f"reveal({key!r}): actual must be a finite number, got {actual!r}")
    mine = None if _quiet() else recorded(key)
    answer = f"The run's answer: {_fmt(actual)}."
    if mine is None:
        head = "No prediction recorded for this question (press 'Record my prediction' above, then run this again)."
    else:
        try:
            head = f"Your prediction: {_fmt(mine)}; {_verdict(spec, mine, actual)}."
        except (TypeError, ValueError, ZeroDivisionError):
            head = f"Your prediction: {_fmt(mine)}."
    lines = [head, answer] + ([why] if why else [])
    meta = {"course": {"reveal": key, "question": spec.get("question", ""), "answer": _fmt(actual), "why": why}}
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    display({"text/plain": "\n".join(lines), "text/html": f"<div class='course-reveal'>{body}</div>"},
            raw=True, metadata=meta)


_INLINE_MATH = re.compile(r"\$([^$\n]+)\$")


def _site_html(text) -> str:
    """Escaped text whose ``$...$`` becomes the inline math Sphinx's MathJax typesets (class ``math``, ``\\(...\\)``):
    the site's MathJax ignores dollars in raw HTML outputs, which showed as raw TeX."""
    return _INLINE_MATH.sub(r'<span class="math notranslate nohighlight">\\(\1\\)</span>', html.escape(str(text)))


def static_question_html(meta: dict) -> str:
    """The site's static form of a Predict output (its metadata ``course``): the question and the options."""
    q = _site_html(meta.get("question", ""))
    if "choices" in meta:
        opts = "".join(f"<li>{_site_html(c)}</li>" for c in meta["choices"])
        body = f"<ul class='course-predict-choices'>{opts}</ul>"
    else:
        low, high, _ = meta.get("number", [0, 0, 0])
        body = f"<p>Your estimate: a number between {low:g} and {high:g}.</p>"
    return (f"<div class='course-predict'><p><b>Predict before you run.</b> {q}</p>{body}"
            "<p class='widget-note'>Decide before reading on; the answer is folded below the experiment. "
            "In the notebook, a widget records your prediction.</p></div>")


def static_answer_html(meta: dict) -> str:
    """The site's form of a reveal output: the run's answer and why, folded (<details>)."""
    why = f"<p>{_site_html(meta.get('why', ''))}</p>" if meta.get("why") else ""
    return (f"<details class='course-reveal'><summary>The answer (from this run)</summary>"
            f"<p>The run's answer: <b>{_site_html(meta.get('answer', ''))}</b>.</p>{why}</details>")
