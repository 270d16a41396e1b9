"""The exercise registry and the machinery of checks (how to use them: notebook 00).

Every exercise is registered once, with its id ("1.2"), title, notebook, the
name of the object the student writes, a reference answer and a check. In a
notebook the check cell right after an exercise reads::

    pushforward_log_prob = check("1.1", pushforward_log_prob)

:func:`check` runs the exercise's check on the student's answer and prints
one of three results, never a traceback from inside ``utils``:

- passed: the answer is kept;
- failed: what is wrong (shape, dtype, NaN, a value at a test point, a sign,
  or a named common mistake); the notebook continues with the reference;
- not attempted (the answer still raises ``NotImplementedError``): the
  notebook continues with the reference, and says so.

Writing a check: a function of the answer that raises :class:`CheckFailure`
with a message for the student. The helpers of :mod:`utils.checks.expect` (:func:`call`,
:func:`expect_tensor`, :func:`expect_close`) produce the usual messages.

What every check gets without asking (issue 20):

- :func:`call` watches every tensor it hands the answer (value and version counter):
  an answer that changes one in place is told which argument, before anything else;
- :func:`run_check` seeds torch, numpy and random from the exercise id and restores
  the global generators afterwards: the same answer gets the same message on every
  run, in the notebook and in ``make grade``;
- :func:`expect_gradient` compares the answer's gradient with the reference's, where a
  later cell differentiates the answer; :func:`expect_log_space` names an overflow or
  underflow on far or small-scale inputs ("work in log space").
"""
from __future__ import annotations

import contextlib
import os
import random
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import torch

try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy comes with torch's usual installs
    np = None

__all__ = ["CheckFailure", "Exercise", "Result", "REGISTRY", "exercise", "get_exercise", "run_check", "check"]

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"
_UTILS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CheckFailure(Exception):
    """Raised by a check with a message that tells the student what is wrong."""


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    notebook: str  # file stem, e.g. "01_change_of_variables"
    answer: str  # name of the object the student defines
    check: Callable[[Any], Any]
    reference: Any
    points: int = 1
    minutes: int = 10
    practises: str = ""


REGISTRY: dict[str, Exercise] = {}


def exercise(id: str, *, title: str, notebook: str, answer: str, reference: Any,
             points: int = 1, minutes: int = 10, practises: str = "") -> Callable:
    """Decorator: register the decorated function as the check of exercise ``id``."""
    def register(fn: Callable) -> Callable:
        if id in REGISTRY:
            raise ValueError(f"exercise {id} registered twice")
        REGISTRY[id] = Exercise(id, title, notebook, answer, fn, reference, points, minutes, practises)
        return fn
    return register


def get_exercise(id: str) -> Exercise:
    from . import load_all

    load_all()
    if id not in REGISTRY:
        known = ", ".join(sorted(REGISTRY, key=_id_key))
        raise CheckFailure(f"There is no exercise {id!r}. Known exercises: {known}.")
    return REGISTRY[id]


def _id_key(id: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in id.split("."))


@dataclass
class Result:
    """The outcome of one check, for the notebook, the autograder and tests."""
    id: str
    title: str
    status: str
    message: str = ""
    points: float = 0.0
    max_points: float = 1.0

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def report(self) -> str:
        head = f"Exercise {self.id} ({self.title})"
        if self.status == PASSED:
            return f"✔ {head}: passed." + (f" {self.message}" if self.message else "")
        if self.status == NOT_ATTEMPTED:
            return f"○ {head}: not attempted yet (it still raises NotImplementedError)."
        return f"✘ {head}: not yet right.\n{self.message}"

    def __str__(self) -> str:
        return self.report()


def _student_location(tb) -> str:
    """The last frame of the traceback outside utils and libraries: the student's line."""
    frames = traceback.extract_tb(tb)
    for frame in reversed(frames):
        fname = os.path.abspath(frame.filename)
        if fname.startswith(_UTILS_DIR) or "site-packages" in fname or fname.startswith(sys.prefix):
            continue
        code = (frame.line or "").strip()
        return f" (in `{frame.name}`, at: {code})" if code else f" (in `{frame.name}`)"
    return ""


def run_check(id: str, answer: Any) -> Result:
    """Run the check of exercise ``id`` on ``answer``; never raises for a wrong answer."""
    ex = get_exercise(id)
    res = Result(id, ex.title, FAILED, max_points=ex.points)
    if answer is None or answer is Ellipsis:
        res.status = NOT_ATTEMPTED
        return res
    if isinstance(getattr(answer, "did_not_run", None), str):  # utils.runtime.AnswerDidNotRun: a syntax error
        res.message = answer.did_not_run
        return res
    try:
        with _seeded(id):
            detail = ex.check(answer)
    except NotImplementedError:
        res.status = NOT_ATTEMPTED
    except CheckFailure as e:
        res.message = str(e)
    except Exception as e:  # the student's code broke in a way the check did not foresee
        res.message = (f"Your code raised {type(e).__name__}: {e}{_student_location(e.__traceback__)}")
    else:
        res.status, res.points = PASSED, float(ex.points)
        res.message = detail if isinstance(detail, str) else ""
    return res


@contextlib.contextmanager
def _seeded(id: str):
    """Every random number a check (or the answer it runs) draws comes from a seed fixed by the exercise id.

    So the same answer gets the same message on every run, in the notebook and in ``make grade`` alike, whatever
    ran before: an answer that draws from the global generator, or a layer initialised at random, sees the same
    numbers each time. The global generators (torch, numpy, random) are restored afterwards, so checking an
    answer never changes the random stream of the student's notebook.
    """
    seed = 20_000 + sum(int(p) * 100**k for k, p in enumerate(reversed(id.split("."))) if p.isdigit())
    py_state = random.getstate()
    np_state = np.random.get_state() if np is not None else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        if np is not None:
            np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(py_state)
            if np is not None:
                np.random.set_state(np_state)


def check(id: str, answer: Any, quiet: bool = False) -> Any:
    """Check exercise ``id``: print the result and return what the notebook should use next.

    Returns the student's answer when it passes, otherwise the reference answer,
    so the rest of the notebook still runs.
    """
    try:
        ex = get_exercise(id)
    except CheckFailure as e:
        print(f"✘ {e}")
        return answer
    res = run_check(id, answer)
    if not quiet:
        print(res.report())
    if res.passed:
        return answer
    if not quiet:
        print(f"↪ The notebook continues with the reference `{ex.answer}`, so the cells below still run."
              + (" Fix yours and run both cells again." if res.status == FAILED else ""))
    return ex.reference
