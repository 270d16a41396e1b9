"""Export the course as an nbgrader course folder (``make nbgrader OUT=dir``).

``python -m tools.grading.nbgrader_export --out dir`` writes ``dir/nbgrader_config.py``
and ``dir/source/<assignment>/<NN_topic>.ipynb``: by default one assignment a
notebook (named after it) with every exercise; with ``--exercises "1.1 1.3"``
one assignment (``--name``, default ``assignment``) holding the notebooks of
those exercises, the others filled in with their solution (as ``make assignment``).

In each exported notebook, for every assigned exercise:
- the answer cell is an nbgrader *solution* cell (``### BEGIN SOLUTION`` /
  ``### END SOLUTION`` are nbgrader's own markers, so ``nbgrader
  generate_assignment`` produces the same student cell as ``make lectures``);
- the check cell becomes an *autograded test* cell, locked, worth the
  exercise's points: it runs the official check (``utils.checks.run_check``),
  prints its message, continues with the reference when it fails (as
  ``check()`` does) and fails the cell unless the check passed;
- the exercise's statement is locked.
Everything else is the solution notebook, outputs cleared. Our cell metadata
(``course``) is kept, so ``make grade`` also grades nbgrader submissions.
Then nbgrader's own ``generate_assignment``, ``release_assignment``,
``collect`` and ``autograde`` work as usual (see INSTRUCTORS.md).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from tools.grading.assignment import make_assignment
from tools.course.lectures import SOLUTIONS, render, strip_solutions
from tools.course.nbcells import check_known, course_meta, parse_ids

COURSE_ID = "flow-matching"
CONFIG = '''# nbgrader configuration of the Flow Matching course, written by `make nbgrader`.
c = get_config()  # noqa: F821 (provided by nbgrader)
c.CourseDirectory.course_id = "{course_id}"
# Exercises are checked by utils.checks: the course's package must be importable by the kernel
# (install the course: `pip install -r requirements.txt && pip install -e .`, see INSTRUCTORS.md).
c.Execute.timeout = 300  # seconds a cell; the slowest notebook takes about 90 s in all
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
'''


def _gid(kind: str, id: str) -> str:
    return f"{kind}_{id.replace('.', '_')}"


def autograded_check_source(ex) -> str:
    """The autograded test cell of exercise ``ex``: the official check, worth ``ex.points``."""
    return (f"# Autograded: the official check of Exercise {ex.id} ({ex.points} point"
            f"{'s' if ex.points != 1 else ''}). Do not edit.\n"
            "from utils.checks import get_exercise, run_check\n\n"
            f"_result = run_check({ex.id!r}, globals().get({ex.answer!r}))\n"
            "print(_result.report())\n"
            "if not _result.passed:  # the notebook goes on with the reference, as check() does\n"
            f"    {ex.answer} = get_exercise({ex.id!r}).reference\n"
            f"assert _result.passed, \"Exercise {ex.id}: \" + _result.status")


def _meta(grade: bool, solution: bool, locked: bool, grade_id: str, points=None) -> dict:
    m = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
         "solution": solution, "task": False}
    if points is not None:
        m["points"] = points
    return m


def to_nbgrader(nb: nbformat.NotebookNode, open_ids, name: str = "") -> nbformat.NotebookNode:
    """The nbgrader source version of a solution notebook; ``open_ids`` are the assigned exercises."""
    from utils.checks import load_all

    registry = load_all()
    open_ids = set(open_ids)
    src = make_assignment(nb, open_ids, name)  # filled-in solutions, cleared outputs, note on given exercises
    for i, cell in enumerate(src.cells):
        meta = course_meta(cell)
        ex_id, role = meta.get("exercise"), meta.get("role")
        if ex_id not in open_ids or ex_id not in registry:
            continue
        ex = registry[ex_id]
        if role == "answer":
            cell.source = nb.cells[i].source  # keep the markers: nbgrader strips them itself
            strip_solutions(cell.source, f"{name} cell {i}")  # validate the markers
            cell.metadata["nbgrader"] = _meta(False, True, False, _gid("answer", ex_id))
        elif role == "check":
            cell.source = autograded_check_source(ex)
            cell.metadata["nbgrader"] = _meta(True, False, True, _gid("check", ex_id), ex.points)
        elif role == "exercise":
            cell.metadata["nbgrader"] = _meta(False, False, True, _gid("exercise", ex_id))
    return src


def write_course(out: Path, exercises=None, name: str | None = None, solutions: Path = SOLUTIONS) -> dict[str, list[str]]:
    """Write the nbgrader course to ``out``; return assignment -> notebook file names."""
    from utils.checks import exercises as all_exercises, load_all

    registry = load_all()
    ids = parse_ids(exercises)
    if ids:
        check_known(ids)
        order = [e.id for e in all_exercises()]
        ids = sorted(set(ids), key=order.index)
        plan = {name or "assignment": (list(dict.fromkeys(registry[i].notebook for i in ids)), set(ids))}
    else:
        plan = {}
        for path in sorted(Path(solutions).glob("*.ipynb")):
            here = [e.id for e in all_exercises() if e.notebook == path.stem]
            if here:
                plan[path.stem] = ([path.stem], set(here))
    out = Path(out)
    (out / "source").mkdir(parents=True, exist_ok=True)
    written: dict[str, list[str]] = {}
    for assignment, (stems, open_ids) in plan.items():
        folder = out / "source" / assignment
        folder.mkdir(parents=True, exist_ok=True)
        for stem in stems:
            nb = nbformat.read(Path(solutions) / f"{stem}.ipynb", as_version=4)
            (folder / f"{stem}.ipynb").write_text(render(to_nbgrader(nb, open_ids, stem)))
            written.setdefault(assignment, []).append(f"{stem}.ipynb")
    (out / "nbgrader_config.py").write_text(CONFIG.format(course_id=COURSE_ID))
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path, help="the nbgrader course folder to write")
    ap.add_argument("--exercises", default=None, help='one assignment with only these, e.g. "1.1 1.3"')
    ap.add_argument("--name", default=None, help="the assignment's name with --exercises (default: assignment)")
    args = ap.parse_args(argv)
    try:
        written = write_course(args.out, args.exercises, args.name)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for a, files in written.items():
        print(f"wrote {args.out}/source/{a}/: {', '.join(files)}")
    print(f"wrote {args.out}/nbgrader_config.py; next: cd {args.out} && nbgrader generate_assignment <name>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
