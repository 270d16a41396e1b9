"""Write student notebooks in which only chosen exercises are open (``make assignment``).

``python -m tools.grading.assignment 1.1 1.3 --out dir`` (or
``make assignment EXERCISES="1.1 1.3" OUT=dir``) writes, for every notebook that
holds a chosen exercise, the student version of ``solutions/NN_topic.ipynb``:

- the answer cells of the chosen exercises are open, exactly as in ``lectures/``
  (``### BEGIN SOLUTION`` blocks become ``# YOUR CODE HERE`` /
  ``raise NotImplementedError()``);
- every other exercise is filled in with its solution (the markers removed), and
  its exercise text says that it is given;
- everything else follows the rules of ``make lectures`` (tools.course.lectures):
  outputs, execution counts and widget state cleared, cell metadata kept, so
  ``make grade`` finds every exercise's cells.

The notebook metadata records the assignment (``course.assignment.exercises``),
which ``make grade`` uses when it is not told which exercises to grade.
``assignment.json`` next to the notebooks lists the exercises, notebooks and points.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import nbformat

from tools.course.lectures import BEGIN, END, SOLUTIONS, make_lecture, render, strip_solutions
from tools.course.nbcells import check_known, course_meta, parse_ids

GIVEN_NOTE = ("\n\n> **Not part of this assignment:** the solution of this exercise is filled in below; "
              "run its cells as they are.")


def fill_solution(source: str, where: str = "") -> str:
    """The cell with its solution kept and the ``### BEGIN/END SOLUTION`` marker lines removed."""
    strip_solutions(source, where)  # raises MarkerError on unbalanced markers
    return "\n".join(line for line in source.split("\n") if line.strip() not in (BEGIN, END))


def make_assignment(nb: nbformat.NotebookNode, open_ids, name: str = "") -> nbformat.NotebookNode:
    """The student version of a solution notebook with only the exercises ``open_ids`` open.

    Exercises not chosen get their solution written in (markers removed); then the
    rules of ``make lectures`` apply unchanged (``tools.course.lectures.make_lecture``).
    """
    open_ids = set(open_ids)
    nb = copy.deepcopy(nb)
    here = []
    for i, cell in enumerate(nb.cells):
        meta = course_meta(cell)
        ex, role = meta.get("exercise"), meta.get("role")
        if ex is not None and ex not in here:
            here.append(ex)
        if ex is None or ex in open_ids:
            continue
        if cell.cell_type == "code" and role == "answer":
            cell.source = fill_solution(cell.source, f"{name} cell {i}")
        elif role == "exercise":
            cell.source = cell.source.rstrip("\n") + GIVEN_NOTE
    nb = make_lecture(nb, name)
    nb.metadata["course"] = {"assignment": {"exercises": [e for e in here if e in open_ids]}}
    return nb


def write_assignment(ids, out: Path, solutions: Path = SOLUTIONS) -> dict:
    """Write the notebooks holding the exercises ``ids`` to ``out``; return the manifest."""
    from utils.checks import load_all, exercises

    ids = parse_ids(ids)
    if not ids:
        raise ValueError("Name at least one exercise, e.g. EXERCISES=\"1.1 1.3\" (see EXERCISES.md).")
    check_known(ids)
    registry = load_all()
    order = [e.id for e in exercises()]
    ids = sorted(set(ids), key=order.index)
    notebooks = list(dict.fromkeys(registry[i].notebook for i in ids))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stem in notebooks:
        src = Path(solutions) / f"{stem}.ipynb"
        if not src.exists():
            raise FileNotFoundError(f"{src} does not exist (exercise registered for a missing notebook)")
        nb = make_assignment(nbformat.read(src, as_version=4), ids, src.name)
        (out / src.name).write_text(render(nb))
    manifest = {"exercises": ids, "notebooks": [f"{s}.ipynb" for s in notebooks],
                "points": sum(registry[i].points for i in ids),
                "minutes": sum(registry[i].minutes for i in ids),
                "grade": f'make grade SUBMISSIONS=<folder> OUT=<folder> EXERCISES="{" ".join(ids)}"'}
    (out / "assignment.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("exercises", nargs="*", help='exercise ids, e.g. 1.1 1.3 (or one string "1.1 1.3")')
    ap.add_argument("--out", required=True, type=Path, help="folder to write the notebooks to")
    ap.add_argument("--challenge", default=None, help="write a challenge's handout instead (tools.grading.challenge)")
    args = ap.parse_args(argv)
    if args.challenge:
        from tools.grading.challenge import main as challenge
        return challenge(["assignment", "--out", str(args.out), "--challenge", args.challenge])
    try:
        m = write_assignment(" ".join(args.exercises), args.out)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(m['notebooks'])} to {args.out}: exercises {' '.join(m['exercises'])} "
          f"({m['points']} points, about {m['minutes']} minutes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
