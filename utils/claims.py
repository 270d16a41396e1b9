"""Checked claims: a sentence about measured numbers, tested on those numbers (used from notebook 02 on).

A reading of a result ("OT beats VP from 8 steps on", "the ODE sits within the
floor's spread") is never typed into markdown. It is printed by code that
checks it on the numbers just computed::

    claim(w2_ot[8] < w2_vp[8] - tol, "from 8 steps on, OT beats VP by more than the spread")

prints ``✔ from 8 steps on, OT beats VP ...`` when the condition holds. When a
retraining no longer supports the text, it raises :class:`ClaimError`, which
stops the notebook (and so ``make solutions`` and nbval) with a one-line
message instead of letting the prose lie.

The benchmark reruns notebooks with other seeds to see which readings hold beyond
the course's own run. It sets ``COURSE_CLAIMS_RECORD`` to a file: each claim is
then appended there (one JSON line: text, holds) and printed with ✔ or ✘, and a
failed claim no longer stops the run.

:func:`beyond` is the one rule for "is this difference real?": a difference
counts only when it exceeds a tolerance measured in the same run (a spread
over seeds, or the floor's spread).
"""
from __future__ import annotations

import json
import os

__all__ = ["ClaimError", "claim", "beyond"]


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
    record = os.environ.get("COURSE_CLAIMS_RECORD")
    if record:  # the benchmark's seed sweep: note the verdict, go on
        with open(record, "a", encoding="utf-8") as f:
            f.write(json.dumps({"text": text, "holds": ok}) + "\n")
        print(f"{'✔' if ok else '✘'} {text}")
        return None
    if not ok:
        raise ClaimError(f"the numbers just computed no longer support: \"{text}\". The course's own run "
                         "did; if code above is yours (your answers draw other random numbers), your run may "
                         "legitimately differ: compare it with the reference numbers. Maintainers: correct the "
                         "text or the experiment.")
    print(f"✔ {text}")  # returns None, so a cell that ends with a claim shows only the tick


def beyond(a: float, b: float, tol: float) -> bool:
    """True when ``a`` exceeds ``b`` by more than ``tol`` (a spread measured in the same run)."""
    if tol < 0:
        raise ValueError(f"beyond(a, b, tol): the tolerance must be >= 0, got {tol}.")
    return float(a) - float(b) > float(tol)
