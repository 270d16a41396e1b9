"""Generate the student notebooks in ``lectures/`` from the sources in ``solutions/``.

Rules (nbgrader's, so ``solutions/`` also works with nbgrader unchanged):
each block between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes
``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at the marker's
indentation; outputs, execution counts, run timings and stored widget state are cleared;
nothing else changes. ``python -m tools.course.lectures`` (``make lectures``) writes
every notebook; ``--check`` only reports which would change.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS, LECTURES = ROOT / "solutions", ROOT / "lectures"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_BEGIN_RE = re.compile(r"^(\s*)### BEGIN SOLUTION\s*$")


class MarkerError(ValueError):
    pass


def strip_solutions(source: str, where: str = "") -> str:
    """Replace every solution block of a cell's source by the student placeholder."""
    out, inside, indent = [], False, ""
    for line in source.split("\n"):
        m = _BEGIN_RE.match(line)
        if m:
            if inside:
                raise MarkerError(f"{where}: nested {BEGIN}")
            inside, indent = True, m.group(1)
            out += [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
        elif line.strip() == END:
            if not inside:
                raise MarkerError(f"{where}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: {BEGIN} without {END}")
    return "\n".join(out)


def make_lecture(nb: nbformat.NotebookNode, name: str = "") -> nbformat.NotebookNode:
    """The student version of a solution notebook."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source, f"{name} cell {i}")
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)  # run timings, like outputs
        cell.pop("attachments", None) if cell.cell_type == "code" else None
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def expected_lectures() -> dict[str, str]:
    """File name -> the text ``make lectures`` would write, for every solution notebook."""
    out = {}
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        out[path.name] = render(make_lecture(nb, path.name))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="report stale lectures, write nothing")
    args = ap.parse_args(argv)
    want = expected_lectures()
    stale = [n for n, text in want.items()
             if not (LECTURES / n).exists() or (LECTURES / n).read_text() != text]
    extra = sorted(p.name for p in LECTURES.glob("*.ipynb") if p.name not in want)
    if args.check:
        for n in stale:
            print(f"stale: lectures/{n}")
        for n in extra:
            print(f"no solution for: lectures/{n}")
        return 1 if stale or extra else 0
    LECTURES.mkdir(exist_ok=True)
    for n in stale:
        (LECTURES / n).write_text(want[n])
        print(f"wrote lectures/{n}")
    for n in extra:
        (LECTURES / n).unlink()
        print(f"removed lectures/{n} (no solution notebook)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
