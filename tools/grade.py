"""Autograde a folder of student notebooks with the course's official checks (``make grade``).

``python -m tools.grade SUBMISSIONS OUT [--exercises "1.1 1.3"]`` (or
``make grade SUBMISSIONS=dir OUT=dir EXERCISES="1.1 1.3"``) grades every
submission in SUBMISSIONS: a notebook file is one student (named after the
file), a folder is one student (named after the folder) with any of the
course's notebooks inside. It writes ``OUT/grades.csv`` (one row a student, one
column an exercise, a total and notes), ``OUT/grades.json`` (every result) and
``OUT/feedback/<student>.md`` (every check's message).

How a notebook is graded
- It is read from a copy in a fresh temporary folder, in its own kernel
  process (nbclient); the submission itself is never modified.
- Each exercise's answer cell is found by its cell metadata
  (``{"course": {"role": "answer", "exercise": "1.2"}}``, written by
  ``make lectures``; kept when the student edits the cell's text). Failing
  that, by the cell that defines the answer's name.
- The student's check cells are not run. Right after each answer cell the
  grader runs the OFFICIAL check from the registry (``utils.checks.run_check``)
  inside the kernel, on the object the answer cell defined, and writes its
  result to a JSON file that the grader reads back. As ``check()`` does in the
  notebook, a failed answer is then replaced by the reference, so the cells
  below run as they did for the student.
- Limits: a time limit a cell (``--cell-timeout``), a check
  (``--check-timeout``) and a notebook (``--notebook-timeout``), and a cap on
  each cell's stored output (output floods). A cell that runs too long is interrupted; if the kernel does not
  respond, or crashes, it is restarted and the notebook rerun without the
  offending cell, so every other exercise is still graded.
- Which exercises: ``--exercises`` if given; otherwise those recorded by
  ``make assignment`` in the notebook's metadata; otherwise every exercise
  of the notebooks submitted.

Trust model: this guards against mistakes and accidents (loops, crashes,
floods, broken files), not against a student deliberately attacking the
grader. Student code runs with your permissions: run it on a machine (or
container) you are happy to run student code on.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
import nbformat.reader
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from tools.nbcells import check_known, course_meta, exercise_cells, parse_ids

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"


@dataclass
class Limits:
    cell_timeout: float = 120.0  # seconds a cell of the student's notebook
    check_timeout: float = 60.0  # seconds an official check (it calls the student's code)
    notebook_timeout: float = 600.0  # seconds a notebook, kernel restarts included
    max_output_bytes: int = 2_000_000  # output kept a cell (figures included); the rest is dropped
    interrupt_grace: float = 5.0  # seconds a timed-out cell gets to stop after an interrupt
    max_restarts: int = 3  # kernel restarts a notebook (after crashes or unstoppable cells)


@dataclass
class ExerciseGrade:
    id: str
    title: str
    status: str
    points: float
    max_points: float
    message: str = ""


@dataclass
class StudentGrade:
    student: str
    files: list[str] = field(default_factory=list)
    notebooks: list[str] = field(default_factory=list)  # the course notebooks recognised
    results: dict[str, ExerciseGrade] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def total(self, ids=None) -> float:
        return sum(r.points for k, r in self.results.items() if ids is None or k in ids)


# ----------------------------------------------------------------------------- in the kernel

_SETUP = r'''
def __course_grade__(id, path):
    """Run the official check of exercise `id` on the answer defined in this kernel (tools.grade)."""
    import contextlib, io, json
    from utils.checks import get_exercise, run_check

    class _Capped(io.StringIO):  # what the student's code prints during the check, capped
        def write(self, s):
            if self.tell() < 10000:
                super().write(s[:10000])
            return len(s)

    ex = get_exercise(id)
    g = globals()
    out = {"id": id, "status": "missing", "message": "", "points": 0.0}
    try:
        if ex.answer in g:
            with contextlib.redirect_stdout(_Capped()), contextlib.redirect_stderr(_Capped()):
                res = run_check(id, g[ex.answer])
            out.update(status=res.status, message=res.message, points=float(res.points))
        with open(path, "w") as f:
            json.dump(out, f)
    finally:
        if out["status"] != "passed":
            g[ex.answer] = ex.reference  # as check() does: the cells below run with the reference


def __course_reference__(id):
    from utils.checks import get_exercise
    ex = get_exercise(id)
    globals()[ex.answer] = ex.reference
'''


class _Client(NotebookClient):
    """nbclient with a cap on the output kept a cell (a guard against output floods)."""

    def __init__(self, *args, max_output_bytes: int = 2_000_000, **kwargs):
        super().__init__(*args, **kwargs)
        self._max_out = max_output_bytes
        self._out_bytes: Counter = Counter()
        self.truncated: set[int] = set()
        self.timed_out = False

    async def _async_handle_timeout(self, timeout, cell=None):
        # nbclient interrupts the kernel and, with error_on_timeout, ends the cell as an error
        # while still collecting (then cancelling) its outputs: no stray reader is left behind
        self.timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        if msg.get("msg_type") == "error":
            content["traceback"] = content.get("traceback", [])[-20:]
            return super().output(outs, msg, display_id, cell_index)
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        self._out_bytes[cell_index] += size
        if self._out_bytes[cell_index] > self._max_out:
            if cell_index not in self.truncated:
                self.truncated.add(cell_index)
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr",
                    text=f"\n[grader: output truncated after {self._max_out} bytes]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


# ----------------------------------------------------------------------------- one notebook

@dataclass
class _Step:
    kind: str  # "setup", "code" (a student cell), "grade" (the official check of `ex`)
    source: str
    cell: int | None = None  # index of the student's cell
    ex: str | None = None


def _registry():
    from utils.checks import exercises, load_all

    load_all()
    return {e.id: e for e in exercises()}


def _defines(source: str, name: str) -> bool:
    return re.search(rf"^\s*(def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*(:[^=]*)?=[^=]",
                     source, re.M) is not None


def _plan(nb, stem: str, results_dir: Path, registry) -> tuple[list[_Step], dict[str, int | None], list[str]]:
    """The steps to run: the student's cells minus check cells, the official check after each answer."""
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
    after = {i: ex for ex, i in answer_at.items() if i is not None}
    steps = [_Step("setup", _SETUP)]
    for i, c in enumerate(cells):
        if c.cell_type != "code" or course_meta(c).get("role") == "check":
            continue
        steps.append(_Step("code", c.source, cell=i))
        if i in after:
            ex = after[i]
            path = results_dir / f"{ex}.json"
            steps.append(_Step("grade", f"__course_grade__({ex!r}, {str(path)!r})", cell=i, ex=ex))
    return steps, answer_at, notes


def _error_of(cell) -> str | None:
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return f"{o.get('ename', 'Error')}: {o.get('evalue', '')}".strip().rstrip(":")
    return None


def _run(steps: list[_Step], workdir: Path, limits: Limits, events: dict, notes: list[str]) -> None:
    """Run the steps in a kernel; on a crash or a cell that will not stop, restart without it.

    ``events[step index]`` gets "timeout", "crash" or the error a step raised.
    """
    start = time.monotonic()
    deadline = start + limits.notebook_timeout
    skip: set[int] = set()
    env = dict(os.environ, COURSE_QUIET="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    for attempt in range(limits.max_restarts + 1):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s.source) for s in steps])
        for k in skip:  # a grade step that crashed or hung: the notebook goes on with the reference
            nb.cells[k].source = f"__course_reference__({steps[k].ex!r})" if steps[k].kind == "grade" else ""
        client = _Client(nb, kernel_name="python3", allow_errors=True, shutdown_kernel="immediate",
                         record_timing=False, interrupt_on_timeout=True, startup_timeout=120,
                         error_on_timeout={"ename": "TimeoutError", "evalue": "the cell timed out", "traceback": []},
                         resources={"metadata": {"path": str(workdir)}},
                         max_output_bytes=limits.max_output_bytes)
        restart = False
        try:
            with client.setup_kernel(env=env):
                for k, cell in enumerate(nb.cells):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        notes.append(f"The notebook ran past its time limit of {limits.notebook_timeout:g} s: "
                                     "the cells after that were not run.")
                        events["deadline"] = k
                        return
                    limit = limits.check_timeout if steps[k].kind == "grade" else limits.cell_timeout
                    client.timeout = max(1, int(min(limit, remaining)))
                    client.timed_out = False
                    try:
                        client.execute_cell(cell, k)
                    except CellTimeoutError:  # not expected (nbclient interrupts), but to be safe
                        client.timed_out = True
                    except DeadKernelError:
                        events[k] = "crash"
                        skip.add(k)
                        restart = True
                        break
                    if client.timed_out:
                        events[k] = "timeout"
                        if not _responsive(client, k, limits):
                            skip.add(k)
                            restart = True
                            break
                        continue
                    err = _error_of(cell)
                    if err and k not in skip:
                        events[k] = err
                    if k in client.truncated:
                        events.setdefault(("flood", k), True)
        except (CellTimeoutError, DeadKernelError):
            restart = True
        except Exception as e:  # the kernel could not start, or nbclient failed: grading error
            notes.append(f"Grading error: {type(e).__name__}: {e}")
            events["deadline"] = -1
            return
        if not restart:
            return
    notes.append(f"The kernel was restarted {limits.max_restarts} times (crashes or cells that would not stop): "
                 "grading stopped there.")
    events["deadline"] = -1


def _responsive(client, k, limits: Limits) -> bool:
    """After a timed-out cell was interrupted: True if the kernel answers within the grace period."""
    client.interrupt_on_timeout = False  # a probe that times out raises: the kernel is stuck
    try:
        client.timeout = max(1, int(limits.interrupt_grace))
        client.execute_cell(nbformat.v4.new_code_cell("pass"), k)
        return True
    except Exception:  # CellTimeoutError, DeadKernelError
        return False
    finally:
        client.interrupt_on_timeout = True


def _describe_step_event(ev) -> str:
    return {"timeout": "did not finish within the time limit", "crash": "crashed the Python kernel"}.get(
        ev, f"raised {ev}")


def grade_notebook(nb, stem: str, ids: list[str], limits: Limits, registry=None) -> tuple[dict[str, ExerciseGrade], list[str]]:
    """Grade the exercises ``ids`` (all of notebook ``stem``) in the notebook ``nb``."""
    registry = registry or _registry()
    with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
        tmp = Path(tmp)
        work, results_dir = tmp / "work", tmp / "results"
        work.mkdir()
        results_dir.mkdir()
        nbformat.write(nb, work / f"{stem}.ipynb")  # the copy the kernel runs beside
        steps, answer_at, notes = _plan(nb, stem, results_dir, registry)
        events: dict = {}
        t0 = time.monotonic()
        _run(steps, work, limits, events, notes)
        seconds = time.monotonic() - t0
        stored = {}
        for p in results_dir.glob("*.json"):
            try:
                stored[p.stem] = json.loads(p.read_text())
            except (OSError, ValueError):
                pass
    step_of = {(s.kind, s.ex): k for k, s in enumerate(steps) if s.kind == "grade"}
    code_step = {s.cell: k for k, s in enumerate(steps) if s.kind == "code"}
    reached = events.get("deadline", len(steps))
    out = {}
    for id in ids:
        ex = registry[id]
        res = ExerciseGrade(id, ex.title, FAILED, 0.0, float(ex.points))
        out[id] = res
        cell = answer_at.get(id)
        if cell is None:
            res.status = NOT_ATTEMPTED
            res.message = (f"No answer cell found for exercise {id}: the cell that defines `{ex.answer}` "
                           "was deleted (or renamed).")
            continue
        where = f"your answer cell (cell {cell + 1})"
        answer_ev = events.get(code_step[cell])
        gk = step_of[("grade", id)]
        got = stored.get(id)
        if got is not None and got.get("status") in (PASSED, FAILED, NOT_ATTEMPTED):
            res.status, res.message = got["status"], str(got.get("message", ""))
            res.points = float(ex.points) if res.status == PASSED else 0.0
            if answer_ev and res.status != PASSED:
                res.message = (f"Note: {where} {_describe_step_event(answer_ev)}.\n" + res.message).strip()
        elif got is not None:  # the answer's name was not defined after its cell ran
            if answer_ev and str(answer_ev).startswith("NotImplementedError"):
                res.status = NOT_ATTEMPTED
            elif answer_ev:
                res.message = f"{where.capitalize()} {_describe_step_event(answer_ev)}, so `{ex.answer}` was not defined."
            else:
                res.message = (f"{where.capitalize()} ran but did not define `{ex.answer}`: keep the name "
                               "the exercise asks for.")
        elif events.get(gk) == "timeout":
            res.message = (f"The check did not finish within {limits.check_timeout:g} s: does your code loop "
                           "forever (or is it far too slow)?")
        elif events.get(gk) == "crash":
            res.message = "Your code crashed the Python kernel while it was being checked."
        elif gk >= reached:
            res.message = "Not graded: the notebook ran past its time limit (or the kernel kept failing) before this exercise."
        else:
            err = events.get(gk)
            res.message = f"Grading error: the check could not run{f' ({err})' if err else ''}."
    for k, ev in events.items():
        if isinstance(k, tuple) and k[0] == "flood":
            notes.append(f"Cell {steps[k[1]].cell + 1} printed more than {limits.max_output_bytes} bytes: "
                         "its output was truncated.")
        elif isinstance(k, int) and steps[k].kind == "code" and ev in ("timeout", "crash"):
            notes.append(f"Cell {steps[k].cell + 1} {_describe_step_event(ev)}"
                         + (" and was skipped on a rerun." if ev == "crash" else "."))
    notes.append(f"{stem}: ran in {seconds:.0f} s.")
    return out, notes


# ----------------------------------------------------------------------------- one student

def read_notebook(path: Path):
    """The notebook at ``path``, or raise ValueError with a message for the gradebook."""
    try:
        nb = nbformat.read(path, as_version=4)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as e:
        cause = e if isinstance(e, json.JSONDecodeError) else e.__context__
        where = f" ({cause.msg} at line {cause.lineno})" if isinstance(cause, json.JSONDecodeError) else ""
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


def grade_student(student: str, paths: list[Path], exercises: list[str] | None = None,
                  limits: Limits | None = None) -> StudentGrade:
    """Grade one student's notebooks; never raises for a bad submission."""
    limits = limits or Limits()
    registry = _registry()
    t0 = time.monotonic()
    sg = StudentGrade(student, [p.name for p in paths])
    if not paths:
        sg.notes.append("No notebook (.ipynb) found in this submission.")
    chosen: dict[str, tuple[Path, object]] = {}
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
        if stem in chosen:
            prev = chosen[stem][0]
            if path.stem == stem and prev.stem != stem:  # prefer the file named like the course's
                sg.notes.append(f"{prev.name} is another copy of {stem}: graded {path.name} only.")
            else:
                sg.notes.append(f"{path.name} is another copy of {stem}: graded {prev.name} only.")
                continue
        chosen[stem] = (path, nb)
    sg.notebooks = sorted(chosen)
    for stem, (path, nb) in sorted(chosen.items()):
        of_nb = [e.id for e in registry.values() if e.notebook == stem]
        if exercises is not None:
            ids = [i for i in of_nb if i in exercises]
        else:
            assigned = _assigned(nb)
            ids = [i for i in of_nb if i in assigned] if assigned else of_nb
        if not ids:
            continue
        try:
            res, notes = grade_notebook(nb, stem, ids, limits, registry)
        except Exception as e:  # never lose a student to a grader bug: record it and go on
            res = {i: ExerciseGrade(i, registry[i].title, FAILED, 0.0, float(registry[i].points),
                                    f"Grading error: {type(e).__name__}: {e}") for i in ids}
            notes = [f"{path.name}: grading error {type(e).__name__}: {e}"]
        sg.results.update(res)
        sg.notes += [n if n.startswith(stem) else f"{path.name}: {n}" for n in notes]
    for i in exercises or []:
        if i not in sg.results:
            ex = registry[i]
            sg.results[i] = ExerciseGrade(i, ex.title, NOT_ATTEMPTED, 0.0, float(ex.points),
                                          f"Notebook {ex.notebook} was not in the submission.")
    sg.seconds = time.monotonic() - t0
    return sg


# ----------------------------------------------------------------------------- a class

def discover(submissions: Path) -> list[tuple[str, list[Path]]]:
    """(student, notebooks): a notebook file is a student, a folder is a student."""
    submissions = Path(submissions)
    if submissions.is_file():
        return [(submissions.stem, [submissions])]
    out = []
    for p in sorted(submissions.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            nbs = sorted(q for q in p.rglob("*.ipynb")
                         if ".ipynb_checkpoints" not in q.parts and not any(x.startswith(".") for x in q.relative_to(p).parts))
            out.append((p.name, nbs))
        elif p.suffix == ".ipynb":
            out.append((p.stem, [p]))
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "student"


def _order(ids):
    return sorted(ids, key=lambda i: tuple(int(p) if p.isdigit() else 0 for p in i.split(".")))


def feedback(sg: StudentGrade, ids: list[str]) -> str:
    max_total = sum(sg.results[i].max_points for i in ids if i in sg.results)
    lines = [f"# Feedback: {sg.student}", "",
             f"**Total: {sg.total(ids):g} / {max_total:g} points.** Files: {', '.join(sg.files) or 'none'}.", ""]
    icon = {PASSED: "✅", FAILED: "❌", NOT_ATTEMPTED: "⏳"}
    for i in ids:
        r = sg.results.get(i)
        if r is None:
            continue
        lines += [f"## {icon[r.status]} Exercise {r.id}: {r.title} ({r.status}, {r.points:g} / {r.max_points:g})", ""]
        if r.message:
            lines += ["```", r.message, "```", ""]
        elif r.status == NOT_ATTEMPTED:
            lines += ["The answer still raises NotImplementedError.", ""]
    if sg.notes:
        lines += ["## Notes from the grader", ""] + [f"- {n}" for n in sg.notes] + [""]
    return "\n".join(lines)


def grade(submissions: Path, out: Path, exercises=None, limits: Limits | None = None,
          jobs: int = 1, log=print) -> list[StudentGrade]:
    """Grade every submission; write grades.csv, grades.json and feedback/<student>.md to ``out``."""
    limits = limits or Limits()
    registry = _registry()
    exercises = parse_ids(exercises)
    if exercises:
        check_known(exercises)
    subs = discover(Path(submissions))
    grades: list[StudentGrade] = []
    if jobs > 1 and len(subs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(grade_student, s, p, exercises, limits) for s, p in subs]
            for f in futures:
                grades.append(f.result())
                log(f"graded {grades[-1].student}: {grades[-1].total():g} points ({grades[-1].seconds:.0f} s)")
    else:
        for s, p in subs:
            grades.append(grade_student(s, p, exercises, limits))
            log(f"graded {s}: {grades[-1].total():g} points ({grades[-1].seconds:.0f} s)")
    ids = exercises or _order({i for g in grades for i in g.results})
    for g in grades:  # a column the student has no notebook for
        for i in ids:
            if i not in g.results:
                ex = registry[i]
                why = (f"Not graded: exercise {i} was not part of this student's assignment."
                       if ex.notebook in g.notebooks else f"Notebook {ex.notebook} was not in the submission.")
                g.results[i] = ExerciseGrade(i, ex.title, NOT_ATTEMPTED, 0.0, float(ex.points), why)
    write(grades, ids, Path(out))
    return grades


def write(grades: list[StudentGrade], ids: list[str], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "feedback").mkdir(exist_ok=True)
    from utils.checks import load_all

    registry = load_all()
    max_total = sum(registry[i].points for i in ids)
    with open(out / "grades.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", *ids, "total", "max", "notes"])
        for g in grades:
            cells = [f"{g.results[i].points:g}" if i in g.results else "0" for i in ids]
            problems = [n for n in g.notes if not re.search(r": ran in \d+ s\.$", n)]
            w.writerow([g.student, *cells, f"{g.total(ids):g}", f"{max_total:g}", " | ".join(problems)])
    used: set[str] = set()
    for g in grades:
        name = _safe(g.student)
        while name in used:
            name += "_"
        used.add(name)
        (out / "feedback" / f"{name}.md").write_text(feedback(g, ids))
    (out / "grades.json").write_text(json.dumps(
        {"exercises": ids, "max": max_total,
         "students": [{**asdict(g), "total": g.total(ids)} for g in grades]}, indent=1, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("submissions", type=Path, help="a folder: one notebook or one folder a student")
    ap.add_argument("out", type=Path, help="where grades.csv, grades.json and feedback/ go")
    ap.add_argument("--exercises", default=None, help='exercise ids to grade, e.g. "1.1 1.3"')
    ap.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout)
    ap.add_argument("--check-timeout", type=float, default=Limits.check_timeout)
    ap.add_argument("--notebook-timeout", type=float, default=Limits.notebook_timeout)
    ap.add_argument("--max-output-bytes", type=int, default=Limits.max_output_bytes)
    ap.add_argument("--jobs", type=int, default=1, help="students graded at once (one kernel each)")
    args = ap.parse_args(argv)
    if not args.submissions.exists():
        print(f"error: {args.submissions} does not exist", file=sys.stderr)
        return 2
    limits = Limits(cell_timeout=args.cell_timeout, check_timeout=args.check_timeout,
                    notebook_timeout=args.notebook_timeout, max_output_bytes=args.max_output_bytes)
    try:
        grades = grade(args.submissions, args.out, args.exercises, limits, args.jobs)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out / 'grades.csv'} ({len(grades)} students) and {args.out / 'feedback'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
