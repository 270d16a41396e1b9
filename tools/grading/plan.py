"""Planning a notebook: which cells a grading run executes, and the official check after each answer."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tools.grading.deps import ALWAYS, NEEDED, import_cells, needed_cells
from tools.course.nbcells import course_meta, exercise_cells


_K = "from tools.grading.kernel import {fn} as __course_grader__\n__course_grader__({args})\ndel __course_grader__"


def _call(fn: str, *args) -> str:
    return _K.format(fn=fn, args=", ".join(repr(a) for a in args))


@dataclass
class _Step:
    kind: str  # "begin", "code" (a student cell), "grade" (the official check of `ex`), "verify"
    source: str
    cell: int | None = None  # index of the student's cell
    ex: str | None = None
    path: str | None = None  # where the kernel writes this step's result


@dataclass
class _Notebook:
    """One notebook of a student: what to run, and what happened."""
    stem: str
    file: str
    nb: object
    ids: list[str]
    steps: list[_Step] = field(default_factory=list)
    answer_at: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    events: dict = field(default_factory=dict)  # step index -> "timeout" / "crash" / error text
    stored: dict = field(default_factory=dict)  # exercise id (or "verify") -> what the kernel wrote
    skip: set = field(default_factory=set)  # steps left out of a rerun (they crashed or hung)
    reached: int | None = None  # steps from this one on were not run (deadline, restarts)
    seconds: float = 0.0
    attempts: int = 0
    skipped_cells: int = 0  # code cells fast grading did not run


def _registry():
    from utils.checks import exercises, load_all

    load_all()
    return {e.id: e for e in exercises()}


def _defines(source: str, name: str) -> bool:
    return re.search(rf"^\s*(def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*(:[^=]*)?=[^=]",
                     source, re.M) is not None


def _answer_cells(nb, stem: str, registry) -> tuple[dict[str, int | None], list[str]]:
    notes = []
    cells = nb.cells
    found = exercise_cells(nb)
    answer_at: dict[str, int | None] = {}
    for ex in (e for e in registry.values() if e.notebook == stem):
        idx = [i for i in found.get(ex.id, {}).get("answer", []) if cells[i].cell_type == "code"]
        if len(idx) > 1:
            notes.append(f"{len(idx)} cells are marked as the answer to exercise {ex.id}: graded the last one.")
        if not idx:  # metadata lost (cell re-created or pasted): the cell that defines the name
            idx = [i for i, c in enumerate(cells) if c.cell_type == "code" and course_meta(c).get("role") != "check"
                   and _defines(c.source, ex.answer)]
            if idx:
                notes.append(f"The answer cell of exercise {ex.id} had lost its metadata: graded cell {idx[-1] + 1}, "
                             f"the last one that defines `{ex.answer}`.")
        answer_at[ex.id] = idx[-1] if idx else None
    return answer_at, notes


def cells_to_run(nb, answer_cells: list[int], fast: bool = True) -> set[int]:
    """The code cells a grading run executes (check cells never: the official checks replace them).

    Full: every other code cell. Fast: the imports, the answer cells, the cells marked
    needed in the metadata, and what those need by the static analysis of ``tools.grading.deps`` on
    this very notebook (a student's own helpers, an answer that reads a demo's variable).
    """
    checks = {i for i, c in enumerate(nb.cells) if course_meta(c).get("role") == "check"}
    code = {i for i, c in enumerate(nb.cells) if c.cell_type == "code"} - checks
    if not fast:
        return code
    marked = {i for i in code if course_meta(nb.cells[i]).get("grade") in (NEEDED, ALWAYS)}
    last = max(answer_cells, default=-1)
    anchors = sorted(set(answer_cells) | {i for i in marked | set(import_cells(nb.cells, checks)) if i < last})
    return (needed_cells(nb.cells, anchors, skip=checks) | set(answer_cells)) & code


def _plan(book: _Notebook, workdir: Path, results: Path, registry, fast: bool) -> None:
    """The steps to run: begin, the cells to run (no check cells), the official check after each answer."""
    nb = book.nb
    book.answer_at, book.notes = _answer_cells(nb, book.stem, registry)
    after = {i: ex for ex, i in book.answer_at.items() if i is not None}
    run = cells_to_run(nb, sorted(after), fast)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and course_meta(c).get("role") != "check"]
    book.skipped_cells = len(set(code) - run)
    # begin empties the namespace, so the name it was called by is gone already
    book.steps = [_Step("begin", _call("begin", str(workdir)).rsplit("\n", 1)[0])]
    for i in sorted(run):
        book.steps.append(_Step("code", nb.cells[i].source, cell=i))
        if i in after:
            ex = after[i]
            path = str(results / f"{book.stem}-{ex}.json")
            book.steps.append(_Step("grade", _call("grade", ex, path), cell=i, ex=ex, path=path))
    path = str(results / f"{book.stem}-verify.json")
    book.steps.append(_Step("verify", _call("verify", path), path=path))
