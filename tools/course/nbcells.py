"""Find the cells of an exercise in a notebook by their metadata (instructor tooling).

Every exercise's four cells carry ``{"course": {"role": ..., "exercise": "1.2"}}``
in their metadata, in ``solutions/`` and in the ``lectures/`` generated from it
(``make lectures`` copies cell metadata unchanged). Jupyter keeps a cell's
metadata when the student edits its text, so the grader and the assignment
tools find an exercise's answer cell even after the student rewrote it.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import nbformat

ROLES = ("exercise", "hint", "answer", "check")


def course_meta(cell) -> dict:
    """The ``course`` metadata of a cell ({} when absent or malformed)."""
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    got = meta.get("course", {}) if isinstance(meta, dict) else {}
    return got if isinstance(got, dict) else {}


def exercise_cells(nb: nbformat.NotebookNode) -> dict[str, dict[str, list[int]]]:
    """exercise id -> role -> indices of the cells with that role, in notebook order."""
    out: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, cell in enumerate(nb.get("cells", [])):
        meta = course_meta(cell)
        ex, role = meta.get("exercise"), meta.get("role")
        if isinstance(ex, str) and role in ROLES:
            out[ex][role].append(i)
    return {k: dict(v) for k, v in out.items()}


def exercise_ids(nb: nbformat.NotebookNode) -> list[str]:
    """Ids of the exercises whose cells appear in ``nb``, in notebook order."""
    return list(exercise_cells(nb))


def check_known(ids: Iterable[str]) -> None:
    """Raise ValueError naming every id in ``ids`` that is not a registered exercise."""
    from utils.checks import exercises, load_all

    registry = load_all()
    unknown = [i for i in ids if i not in registry]
    if unknown:
        raise ValueError(f"Unknown exercise(s) {', '.join(unknown)}. Known: "
                         f"{', '.join(e.id for e in exercises())} (see EXERCISES.md).")


def parse_ids(text: str | Iterable[str] | None) -> list[str] | None:
    """ "5.1 5.2,6.1" -> ["5.1", "5.2", "6.1"]; None or empty -> None."""
    if text is None:
        return None
    if isinstance(text, str):
        text = text.replace(",", " ").split()
    ids = [t.strip() for t in text if t.strip()]
    return ids or None

