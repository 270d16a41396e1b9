"""Checked claims: a sentence about measured numbers, tested on those numbers (used from notebook 02 on).

A reading of a result ("OT beats VP from 8 steps on", "the ODE sits within the
floor's spread") is never typed into markdown. It is printed by code that
checks it on the numbers just computed::

    claim(w2_ot[8] < w2_vp[8] - tol, "from 8 steps on, OT beats VP by more than the spread")

prints ``✔ from 8 steps on, OT beats VP ...`` when the condition holds. What a
claim the numbers do not support does depends on whose run it is (:func:`mode`):

- ``strict``, the course's source (a notebook run in ``solutions/``: ``make solutions``,
  nbval, ``tools.course.execute``; and plain Python, such as tests): it raises :class:`ClaimError`,
  which stops the notebook with a one-line message instead of letting the prose lie;
- ``student``, every other notebook (``lectures/``, ``my-work/``, a grader's folder): it
  prints ✘, what happened and why it can happen (a correct answer that draws its random
  numbers in another order trains another model), and the notebook goes on;
- ``record``, the benchmark's seed sweep (``COURSE_CLAIMS_RECORD`` names a file): each
  verdict is appended there as one JSON line (notebook, index, text, holds), printed with
  ✔ or ✘, and the run goes on; :func:`read_record` and :func:`tally` count the seeds
  behind each claim, for any notebook.

``COURSE_CLAIMS=strict`` or ``COURSE_CLAIMS=student`` overrides the choice by folder.

:func:`beyond` is the one rule for "is this difference real?": a difference
counts only when it exceeds a tolerance measured in the same run (a spread
over seeds, or the floor's spread).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

__all__ = ["ClaimError", "claim", "beyond", "mode", "read_record", "tally"]

MODES = ("strict", "student", "record")
_count = {"n": 0}  # claims made so far in this process: their index in a record


class ClaimError(AssertionError):
    """A claim in a notebook that the numbers just computed no longer support."""

    def _render_traceback_(self) -> list[str]:  # IPython hook: one line, no traceback
        return [f"ClaimError: {self}"]


def claim(condition, text: str) -> None:
    """Print ``✔ text`` if ``condition`` holds; raise :class:`ClaimError` otherwise.

    ``condition`` is anything with a truth value (a bool, a 0-d tensor, a numpy
    bool). Keep measured numbers out of ``text`` unless they are rounded to a
    precision that does not depend on the CPU.
    """
    if not isinstance(text, str) or not text.strip():
        raise TypeError("claim(condition, text): `text` must be the sentence the numbers support.")
    try:
        ok = bool(condition)
    except Exception as exc:  # e.g. a tensor with several elements
        raise TypeError(f"claim({text!r}): the condition must be a single truth value ({exc}).") from None
    how = mode()
    index = _count["n"]
    _count["n"] += 1
    if how == "record":  # the benchmark's seed sweep: note the verdict, go on
        entry = {"text": text, "holds": ok}
        if os.environ.get("COURSE_CLAIMS_NOTEBOOK"):
            entry["notebook"] = os.environ["COURSE_CLAIMS_NOTEBOOK"]
        entry["index"] = index
        with open(os.environ["COURSE_CLAIMS_RECORD"], "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        print(f"{'✔' if ok else '✘'} {text}")
        return None
    if ok:
        print(f"✔ {text}")  # returns None, so a cell that ends with a claim shows only the tick
        return None
    if how == "student":
        print(f"✘ {text}\n  Your run's numbers do not support this sentence; the course's run did. That can happen "
              "with correct code: an answer that draws its random numbers in another order (t after x0, say) "
              "trains another model on another random stream, and a close comparison can tip the other way. "
              "The notebook goes on; compare your numbers with the stored outputs of solutions/, or run the "
              "cell again with the reference answer to see the course's reading.")
        return None
    raise ClaimError(f"the numbers just computed no longer support: \"{text}\". The course's own run "
                     "did; if code above is yours (your answers draw other random numbers), your run may "
                     "legitimately differ: compare it with the reference numbers. Maintainers: correct the "
                     "text or the experiment.")


def mode() -> str:
    """"record", "strict" or "student": what a claim the numbers do not support does (module docstring)."""
    if os.environ.get("COURSE_CLAIMS_RECORD"):
        return "record"
    chosen = os.environ.get("COURSE_CLAIMS", "").strip().lower()
    if chosen:
        if chosen not in ("strict", "student"):
            raise ValueError(f"COURSE_CLAIMS must be 'strict' or 'student', got {chosen!r}.")
        return chosen
    if not _in_notebook():
        return "strict"  # plain Python: tests, tools
    # a kernel starts in its notebook's folder (Jupyter, nbval, nbclient with the notebook's path)
    return "strict" if Path.cwd().name == "solutions" else "student"


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def read_record(path) -> list[dict]:
    """The verdicts a record-mode run appended to ``path`` (empty if it made no claim)."""
    p = Path(path)
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if p.exists() else []


def tally(runs: dict) -> dict[str, list]:
    """{seed: read_record(...)} -> {claim text: the seeds whose run supports it}, in the order claims are made.

    A claim a run never reached (it stopped earlier, or took another branch) counts as not supported.
    """
    texts: list[str] = []
    for records in runs.values():
        for r in records:
            if r["text"] not in texts:
                texts.append(r["text"])
    return {text: [seed for seed, records in runs.items()
                   if any(r["text"] == text for r in records)
                   and all(r["holds"] for r in records if r["text"] == text)]
            for text in texts}


def beyond(a: float, b: float, tol: float) -> bool:
    """True when ``a`` exceeds ``b`` by more than ``tol`` (a spread measured in the same run)."""
    if tol < 0:
        raise ValueError(f"beyond(a, b, tol): the tolerance must be >= 0, got {tol}.")
    return float(a) - float(b) > float(tol)
