"""One student: read and recognise their notebooks, grade them in one kernel, and mark tampering."""
from __future__ import annotations

import json
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

import nbformat
import nbformat.reader

from tools.course.nbcells import exercise_cells
from tools.grading.plan import _Notebook, _plan, _registry
from tools.grading.records import ERROR, ExerciseGrade, FAILED, Limits, NOT_ATTEMPTED, StudentGrade, TAMPERED, _order
from tools.grading.run import _collect, _run_student
from tools.grading.tamper import GradingEnvironmentError, _differs, _genuine, _package_files, _tamper, course_files


def read_notebook(path: Path):
    """The notebook at ``path``, or raise ValueError with a message for the gradebook."""
    try:
        nb = nbformat.read(path, as_version=4)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as e:
        cause = e if isinstance(e, json.JSONDecodeError) else e.__context__
        where = (f" ({cause.msg}: line {cause.lineno}, column {cause.colno})"
                 if isinstance(cause, json.JSONDecodeError) else "")
        raise ValueError(f"{path.name} is not valid notebook JSON{where}: was it saved completely?") from None
    except Exception as e:
        raise ValueError(f"{path.name} could not be read as a notebook ({type(e).__name__}: {e}).") from None
    if not isinstance(nb.get("cells"), list):
        raise ValueError(f"{path.name} has no list of cells.")
    for c in nb.cells:
        if not isinstance(c, dict) or c.get("cell_type") not in ("code", "markdown", "raw"):
            raise ValueError(f"{path.name} has a malformed cell.")
        if not isinstance(c.get("source", ""), str):
            c["source"] = "".join(c.get("source") or [])
        c.setdefault("metadata", {})
        c.setdefault("source", "")
    return nb


def identify(nb, path: Path, registry) -> str | None:
    """The course notebook (stem) this is: by its exercise cells' metadata, else by its file name."""
    stems = {e.notebook for e in registry.values()}
    votes = Counter(registry[i].notebook for i in exercise_cells(nb) if i in registry)
    if votes:
        return votes.most_common(1)[0][0]
    m = re.match(r"(\d\d)_", path.name)
    for s in sorted(stems):
        if path.stem == s or (m and s.startswith(m.group(0)) and path.stem.startswith(s)):
            return s
    return None


def _assigned(nb) -> list[str] | None:
    meta = nb.metadata.get("course", {}) if isinstance(nb.metadata, dict) else {}
    got = meta.get("assignment", {}).get("exercises") if isinstance(meta, dict) else None
    return [str(x) for x in got] if isinstance(got, list) else None


def _choose(paths: list[Path], registry, sg: StudentGrade) -> dict:
    """stem -> (path, notebook): one file a course notebook, the course-named one where there are copies."""
    found: dict[str, list] = {}
    for path in paths:
        try:
            nb = read_notebook(path)
        except ValueError as e:
            sg.notes.append(str(e))
            continue
        stem = identify(nb, path, registry)
        if stem is None:
            sg.notes.append(f"{path.name} is not a notebook of this course (no exercise cells, unknown name): "
                            "not graded.")
            continue
        found.setdefault(stem, []).append((path, nb))
    chosen = {}
    for stem, copies in found.items():
        named = [c for c in copies if c[0].name == f"{stem}.ipynb"]
        pick = named[0] if named else copies[0]
        chosen[stem] = pick
        others = [c[0].name for c in copies if c is not pick]
        if others:
            why = ("the file with the course's name" if named else
                   "no copy has the course's name, so the first in alphabetical order")
            sg.notes.append(f"Several copies of {stem}: graded {pick[0].name} ({why}); ignored "
                            + ", ".join(others) + ".")
    return chosen


def grade_student(student: str, paths: list[Path], exercises: list[str] | None = None,
                  limits: Limits | None = None, fast: bool = True,
                  expected_files: dict[str, str] | None = None) -> StudentGrade:
    """Grade one student's notebooks in one kernel; never raises for a bad submission.

    ``fast`` runs only the cells the answers need (see the module docstring);
    ``expected_files`` are the check machinery's file hashes the grader trusts (default:
    as found just before this student's run; after it they must be unchanged).
    """
    limits = limits or Limits()
    registry = _registry()
    t0 = time.monotonic()
    sg = StudentGrade(student, [p.name for p in paths], mode="fast" if fast else "full")
    if not paths:
        sg.notes.append("No notebook (.ipynb) found in this submission.")
    chosen = _choose(paths, registry, sg)
    sg.notebooks = sorted(chosen)
    books = []
    for stem, (path, nb) in sorted(chosen.items()):
        of_nb = [e.id for e in registry.values() if e.notebook == stem]
        if exercises is not None:
            ids = [i for i in of_nb if i in exercises]
        else:
            assigned = _assigned(nb)
            ids = [i for i in of_nb if i in assigned] if assigned else of_nb
        if ids:
            books.append(_Notebook(stem, path.name, nb, ids))
    if books:
        try:
            _grade_books(sg, books, registry, limits, fast, expected_files)
        except Exception as e:  # never lose a student to a grader bug: record it and go on
            sg.flag = ERROR
            for b in books:
                for i in b.ids:
                    sg.results[i] = ExerciseGrade(i, registry[i].title, FAILED, 0.0, float(registry[i].points),
                                                  f"Grading error: {type(e).__name__}: {e}")
            sg.notes.append(f"Grading error ({type(e).__name__}): {e}")
    for i in exercises or []:
        if i not in sg.results:
            ex = registry[i]
            sg.results[i] = ExerciseGrade(i, ex.title, NOT_ATTEMPTED, 0.0, float(ex.points),
                                          f"Notebook {ex.notebook} was not in the submission.")
    sg.seconds = time.monotonic() - t0
    return sg


def _session(books: list[_Notebook], registry, limits: Limits, fast: bool, expected: dict | None) -> dict:
    """Plan and run ``books`` in one kernel; the session's record (set-ups, errors, file hashes)."""
    with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
        tmp = Path(tmp)
        results = tmp / "results"
        results.mkdir()
        for b in books:
            work = tmp / "work" / b.stem
            work.mkdir(parents=True)
            nbformat.write(b.nb, work / f"{b.stem}.ipynb")  # the copy the kernel runs beside
            _plan(b, work, results, registry, fast)
        before = course_files()
        expected = before if expected is None else expected
        if before != expected:
            raise GradingEnvironmentError("the course files on this machine differ from the grader's ("
                                          + ", ".join(_differs(before, expected)[:6]) + "): restore them "
                                          "(git status) or install the same version of the course")
        session: dict = {}
        _run_student(books, results, limits, session)
        session["files_changed"] = _differs(course_files(), expected)
    return session


def _stable_session(books: list[_Notebook], registry, limits: Limits, fast: bool, expected: dict | None):
    """Run ``books``; (session, the genuine fingerprints of the files the kernel loaded). If the
    course package was edited during the run (a maintainer at work), run once more."""
    for attempt in range(2):
        key = _package_files()
        genuine = _genuine(key)
        for b in books:  # a fresh start
            b.__init__(b.stem, b.file, b.nb, b.ids)
        session = _session(books, registry, limits, fast, expected)
        if attempt or _package_files() == key:
            return session, genuine


def _grade_books(sg: StudentGrade, books: list[_Notebook], registry, limits: Limits, fast: bool,
                 expected_files: dict | None) -> None:
    expected = dict(expected_files) if expected_files is not None else None
    session, genuine = _stable_session(books, registry, limits, fast, expected)
    if session.get("error"):
        raise RuntimeError(session["error"])
    results = {b.stem: _collect(b, registry, limits) for b in books}
    affected, tamper_notes = _tamper(books, session, genuine)
    if fast and not session["files_changed"] and not affected:
        again = [b for b in books if _name_error(b, results[b.stem])]
        if again:  # a dependency the static analysis missed: those notebooks with every cell
            redo = [_Notebook(b.stem, b.file, b.nb, b.ids) for b in again]
            s2, genuine = _stable_session(redo, registry, limits, False, expected)
            if s2.get("error"):
                raise RuntimeError(s2["error"])
            a2, n2 = _tamper(redo, s2, genuine)
            affected.update(a2)
            tamper_notes += n2
            session["files_changed"] = s2["files_changed"]
            for b in redo:
                results[b.stem] = _collect(b, registry, limits)
                b.notes.append("graded again with every cell: the fast run raised a NameError")
            books = [next((r for r in redo if r.stem == b.stem), b) for b in books]
    for b in books:
        sg.results.update(results[b.stem])
        info = f"{b.stem}: ran in {b.seconds:.0f} s" + (f" ({b.skipped_cells} code cells skipped)." if fast and
                                                         b.skipped_cells else ".")
        sg.notes += [n if n.startswith(b.stem) else f"{b.file}: {n}" for n in b.notes] + [info]
    if session["files_changed"]:
        for b in books:
            for i in b.ids:
                affected.setdefault(i, "course files on disk")
        tamper_notes.append("The course's files were modified during the run: "
                            + ", ".join(session["files_changed"][:8]) + ".")
    if affected or tamper_notes:
        sg.flag = TAMPERED
        for i, what in affected.items():
            r = sg.results[i]
            r.message = (f"0 points: the course's check machinery was modified when this exercise was checked "
                         f"({what}). The check reported: {r.status}.")
            r.status, r.points = FAILED, 0.0
        zeroed = _order(affected)
        sg.notes.insert(0, "TAMPERING DETECTED: the check machinery was modified"
                        + (f"; exercises {', '.join(zeroed)} get 0 points." if zeroed else
                           " after the last check (no score affected).")
                        + (" " + " ".join(tamper_notes) if tamper_notes else ""))


def _name_error(book: _Notebook, results: dict[str, ExerciseGrade]) -> bool:
    if any("NameError" in r.message for r in results.values()):
        return True
    return any(isinstance(ev, str) and ev.startswith("NameError") for ev in book.events.values())


def grade_notebook(nb, stem: str, ids: list[str], limits: Limits, registry=None,
                   fast: bool = True) -> tuple[dict[str, ExerciseGrade], list[str]]:
    """Grade the exercises ``ids`` (all of notebook ``stem``) in the notebook ``nb`` (one kernel)."""
    registry = registry or _registry()
    sg = StudentGrade("notebook")
    _grade_books(sg, [_Notebook(stem, f"{stem}.ipynb", nb, list(ids))], registry, limits, fast, None)
    return sg.results, sg.notes
