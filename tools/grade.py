"""Autograde a folder of student notebooks with the course's official checks (``make grade``).

``python -m tools.grade SUBMISSIONS OUT [--exercises "1.1 1.3"]`` (or
``make grade SUBMISSIONS=dir OUT=dir EXERCISES="1.1 1.3"``) grades every
submission in SUBMISSIONS: a notebook file is one student (named after the
file), a folder is one student (named after the folder) with any of the
course's notebooks inside. It writes ``OUT/grades.csv`` (one row a student, one
column an exercise, a total, a flag and notes), ``OUT/grades.json`` (every
result) and ``OUT/feedback/<student>.md`` (every check's message), updated as
each student finishes; ``--resume`` skips the students already graded there.

Where: by default on a Dask ``LocalCluster``, one worker process a core
(``--jobs N`` for N; ``--jobs 1`` grades in this process); ``--scheduler
tcp://host:8786`` sends the same work to a running Dask scheduler. Each task
grades one student, in one kernel; a task on a worker that dies is rerun
elsewhere.

How a student is graded
- Each notebook is read from a copy in a fresh temporary folder; the
  submission itself is never modified. One kernel process (nbclient) runs the
  student's notebooks one after the other, each in an emptied namespace.
- Each exercise's answer cell is found by its cell metadata
  (``{"course": {"role": "answer", "exercise": "1.2"}}``, written by
  ``make lectures``; kept when the student edits the cell's text). Failing
  that, by the cell that defines the answer's name.
- Fast grading (the default; ``--full`` runs every cell): only the cells the
  answers need run: the answer cells, the cells marked
  ``{"course": {"grade": "needed"}}`` (``python -m tools.grade_deps``), and the
  cells the student's own answers need by the same static analysis, done on
  the student's notebook. Demonstrations and training are skipped. If an answer
  then fails with a NameError, that notebook is graded again in full.
- The student's check cells are not run. Right after each answer cell the
  grader runs the OFFICIAL check from the registry (``tools.grade_kernel``)
  inside the kernel, on the object the answer cell defined, with every random
  generator seeded, and reads the result back at once. As ``check()`` does in
  the notebook, a failed answer is then replaced by the reference.
- Tampering: before and after every check, and after each notebook, the
  kernel reports fingerprints of the check machinery (the code objects of every
  function of the loaded ``utils`` modules, the exercise registry, and the
  callables of torch, numpy, math and builtins); the grader compares them
  with the genuine course's (computed in a fresh process) and with the
  libraries' own at the start. After the run it hashes the installed course
  files again. Any difference marks the row ``tampered`` and gives 0 for the
  exercises checked while it held (all of them, if files changed).
- Limits: a time limit a cell (``--cell-timeout``), a check
  (``--check-timeout``) and a notebook (``--notebook-timeout``), and a cap on
  each cell's stored output (output floods). A cell that runs too long is
  interrupted; if the kernel does not respond, or crashes, it is restarted and
  the notebook rerun without the offending cell, so every other exercise is
  still graded.
- Which exercises: ``--exercises`` if given; otherwise those recorded by
  ``make assignment`` in the notebook's metadata; otherwise every exercise
  of the notebooks submitted.

Trust model: see INSTRUCTORS.md. Student code runs with your permissions; the
tamper checks catch a student who patches the checks from the notebook, not an
attacker who studies the grader. Run it on a machine (or container) you are
happy to run student code on.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import nbformat
import nbformat.reader
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from tools.grade_deps import ALWAYS, NEEDED, import_cells, needed_cells
from tools.nbcells import check_known, course_meta, exercise_cells, parse_ids

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"
TAMPERED, ERROR = "tampered", "error"
ROOT = Path(__file__).resolve().parents[1]


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
    flag: str = ""  # "tampered", "error" (the grading itself failed) or ""
    mode: str = "fast"  # "fast" or "full"

    def total(self, ids=None) -> float:
        return sum(r.points for k, r in self.results.items() if ids is None or k in ids)

    @classmethod
    def from_dict(cls, d: dict) -> "StudentGrade":
        d = dict(d)
        d.pop("total", None)
        d["results"] = {k: ExerciseGrade(**v) for k, v in d.get("results", {}).items()}
        return cls(**d)


# ----------------------------------------------------------------------------- the kernel client

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


# ----------------------------------------------------------------------------- planning a notebook

_K = "from tools.grade_kernel import {fn} as __course_grader__\n__course_grader__({args})\ndel __course_grader__"


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
    needed in the metadata, and what those need by the static analysis of ``tools.grade_deps`` on
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


# ----------------------------------------------------------------------------- running a student

def _error_of(cell) -> str | None:
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return f"{o.get('ename', 'Error')}: {o.get('evalue', '')}".strip().rstrip(":")
    return None


def _read_result(path: str | None):
    """What the kernel wrote for a step (read at once, then deleted: later cells cannot rewrite it)."""
    if not path:
        return None
    try:
        with open(path) as f:
            got = json.load(f)
        os.unlink(path)
        return got
    except (OSError, ValueError):
        return None


_KERNEL_ENV = {"COURSE_QUIET": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


def _run_student(books: list[_Notebook], results: Path, limits: Limits, session: dict) -> None:
    """Run the notebooks' steps in one kernel; on a crash or a cell that will not stop, restart
    the kernel and rerun that notebook without the offending step.

    ``session["setup"]`` gets the kernel's fingerprints before any student code ran (the
    last setup, after restarts: each new kernel is fingerprinted afresh) and
    ``session["error"]`` a grading error that stopped everything.
    """
    env = dict(os.environ, **_KERNEL_ENV)
    i = 0
    while i < len(books):
        setup_path = str(results / f"setup-{len(session.setdefault('setups', []))}.json")
        cells = [nbformat.v4.new_code_cell(_call("setup", setup_path))]
        for b in books:
            for k, s in enumerate(b.steps):
                src = s.source
                if k in b.skip:  # a step that crashed or hung: the notebook goes on with the reference
                    src = _call("reference", s.ex) if s.kind == "grade" else ""
                cells.append(nbformat.v4.new_code_cell(src))
        offset = {}
        n = 1
        for b in books:
            offset[id(b)] = n
            n += len(b.steps)
        nb = nbformat.v4.new_notebook(cells=cells)
        client = _Client(nb, kernel_name="python3", allow_errors=True, shutdown_kernel="immediate",
                         record_timing=False, interrupt_on_timeout=True, startup_timeout=120,
                         error_on_timeout={"ename": "TimeoutError", "evalue": "the cell timed out", "traceback": []},
                         resources={"metadata": {"path": str(results)}},
                         max_output_bytes=limits.max_output_bytes)
        try:
            with client.setup_kernel(env=env, stderr=subprocess.DEVNULL):
                client.timeout = max(60, int(limits.cell_timeout))
                client.execute_cell(nb.cells[0], 0)
                setup = _read_result(setup_path)
                if setup is None:
                    err = _error_of(nb.cells[0]) or "no fingerprints written"
                    session["error"] = f"the grader's set-up in the kernel failed ({err})"
                    return
                session["setups"].append(setup)
                while i < len(books):
                    kernel_no = len(session["setups"]) - 1
                    if _run_book(client, nb, books[i], offset[id(books[i])], limits, kernel_no) == "restart":
                        books[i].attempts += 1
                        if books[i].attempts > limits.max_restarts:
                            books[i].notes.append(
                                f"The kernel was restarted {limits.max_restarts} times (crashes or cells that would "
                                "not stop): grading of this notebook stopped there.")
                            books[i].reached = books[i].reached if books[i].reached is not None else 0
                            i += 1
                        break  # a new kernel, from this notebook on
                    i += 1
        except (CellTimeoutError, DeadKernelError):
            books[i].attempts += 1  # the set-up or a probe died: try again with a new kernel
            if books[i].attempts > limits.max_restarts:
                books[i].reached = 0
                i += 1
        except Exception as e:  # the kernel could not start, or nbclient failed: grading error
            session["error"] = f"{type(e).__name__}: {e}"
            return


def _run_book(client, nb, book: _Notebook, offset: int, limits: Limits, kernel_no: int = 0) -> str:
    """Run one notebook's steps (cells offset.. of ``nb``); "restart" when the kernel must be replaced."""
    t0 = time.monotonic()
    deadline = t0 + limits.notebook_timeout - book.seconds  # restarts count against the notebook's time
    try:
        for k, step in enumerate(book.steps):
            cell = nb.cells[offset + k]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                book.notes.append(f"The notebook ran past its time limit of {limits.notebook_timeout:g} s: "
                                  "the cells after that were not run.")
                book.reached = k
                return "done"
            limit = limits.check_timeout if step.kind == "grade" else limits.cell_timeout
            client.timeout = max(1, int(min(limit, remaining)))
            client.timed_out = False
            try:
                client.execute_cell(cell, offset + k)
            except CellTimeoutError:  # not expected (nbclient interrupts), but to be safe
                client.timed_out = True
            except DeadKernelError:
                book.events[k] = "crash"
                book.skip.add(k)
                return "restart"
            if step.path:
                got = _read_result(step.path)
                if got is not None:
                    got["_kernel"] = kernel_no
                    book.stored[step.ex or step.kind] = got
            if client.timed_out:
                book.events[k] = "timeout"
                if not _responsive(client, offset + k, limits):
                    book.skip.add(k)
                    return "restart"
                continue
            err = _error_of(cell)
            if err and k not in book.skip:
                book.events[k] = err
            if (offset + k) in client.truncated:
                book.events.setdefault(("flood", k), True)
        return "done"
    finally:
        book.seconds += time.monotonic() - t0


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


def _collect(book: _Notebook, registry, limits: Limits) -> dict[str, ExerciseGrade]:
    """Each exercise's grade from what happened in the kernel; the reasons also go to the notes."""
    steps = book.steps
    step_of = {s.ex: k for k, s in enumerate(steps) if s.kind == "grade"}
    code_step = {s.cell: k for k, s in enumerate(steps) if s.kind == "code"}
    reached = book.reached if book.reached is not None else len(steps)
    out = {}
    for id in book.ids:
        ex = registry[id]
        res = ExerciseGrade(id, ex.title, FAILED, 0.0, float(ex.points))
        out[id] = res
        cell = book.answer_at.get(id)
        if cell is None:
            res.status = NOT_ATTEMPTED
            res.message = (f"No answer cell found for exercise {id}: the cell that defines `{ex.answer}` "
                           "was deleted (or renamed).")
            continue
        where = f"your answer cell (cell {cell + 1})"
        answer_ev = book.events.get(code_step[cell])
        gk = step_of[id]
        got = book.stored.get(id)
        reason = None  # for the notes column: why grading could not judge the answer itself
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
                reason = f"the answer cell {_describe_step_event(answer_ev)}"
            else:
                res.message = (f"{where.capitalize()} ran but did not define `{ex.answer}`: keep the name "
                               "the exercise asks for.")
        elif book.events.get(gk) == "timeout":
            res.message = (f"The check did not finish within {limits.check_timeout:g} s: does your code loop "
                           "forever (or is it far too slow)?")
            reason = f"the check did not finish within {limits.check_timeout:g} s (a hang or a loop)"
        elif book.events.get(gk) == "crash":
            res.message = "Your code crashed the Python kernel while it was being checked."
            reason = "the student's code crashed the kernel during the check"
        elif gk >= reached:
            res.message = "Not graded: the notebook ran past its time limit (or the kernel kept failing) before this exercise."
            reason = "not graded: time limit or repeated kernel failures before it"
        else:
            err = book.events.get(gk)
            res.message = f"Grading error: the check could not run{f' ({err})' if err else ''}."
            reason = f"grading error, the check could not run{f' ({err})' if err else ''}"
        if reason:
            book.notes.append(f"Exercise {id}: {reason}.")
    for k, ev in book.events.items():
        if isinstance(k, tuple) and k[0] == "flood":
            book.notes.append(f"Cell {steps[k[1]].cell + 1} printed more than {limits.max_output_bytes} bytes: "
                              "its output was truncated.")
        elif isinstance(k, int) and steps[k].kind == "code" and ev in ("timeout", "crash"):
            book.notes.append(f"Cell {steps[k].cell + 1} {_describe_step_event(ev)}"
                              + (" and was skipped on a rerun." if ev == "crash" else "."))
    return out


# ----------------------------------------------------------------------------- tamper detection

def course_files() -> dict[str, str]:
    """sha256 of every file of the installed check machinery (``utils/checks``, ``utils/errors.py``)
    and of ``tools/grade_kernel.py``."""
    import tools.grade_kernel
    import utils

    base = Path(utils.__file__).resolve().parent
    out = {}
    for p in sorted([*(base / "checks").rglob("*.py"), base / "errors.py"]):
        if "__pycache__" not in p.parts:
            out[f"utils/{p.relative_to(base).as_posix()}"] = hashlib.sha256(p.read_bytes()).hexdigest()
    gk = Path(tools.grade_kernel.__file__)
    out["tools/grade_kernel.py"] = hashlib.sha256(gk.read_bytes()).hexdigest()
    return out


def _package_files() -> tuple:
    import utils

    base = Path(utils.__file__).resolve().parent
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(base.rglob("*.py")))


def genuine_fingerprints() -> dict:
    """The check machinery's fingerprints in a fresh process started from the installed files
    (computed again only when a file of the course package changes)."""
    return _genuine(_package_files())


@lru_cache(maxsize=1)
def _genuine(_files: tuple) -> dict:
    with tempfile.TemporaryDirectory(prefix="course-genuine-") as cwd:
        done = subprocess.run([sys.executable, "-m", "tools.grade_kernel"], cwd=cwd, capture_output=True, text=True,
                              env=dict(os.environ, **_KERNEL_ENV, PYTHONPATH=str(ROOT)), timeout=600)
    if done.returncode:
        raise RuntimeError(f"could not fingerprint the course: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


class GradingEnvironmentError(RuntimeError):
    """The grader cannot trust this machine's course (files or kernel differ from the expected)."""


def _differs(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _tamper(books: list[_Notebook], session: dict, genuine: dict) -> tuple[dict[str, str], list[str]]:
    """(exercise id -> what was modified while it was checked, notes naming every modification)."""
    from tools.grade_kernel import digest

    gen = {m: digest(t) for m, t in genuine.items()}
    setups = session.get("setups", [])
    for s in setups:  # before any student code: must be the genuine course, else the set-up is wrong
        bad = [m for m, t in s.get("course", {}).items() if m in gen and digest(t) != gen[m]]
        if bad:
            names = "; ".join(f"{m}: {', '.join(_differs(s['course'][m], genuine[m])[:5])}" for m in bad)
            raise GradingEnvironmentError("the kernel's course modules differ from the installed files before any "
                                          f"student code ran ({names}): is the kernel another environment?")
    base = [{m: digest(t) for m, t in s.get("lib", {}).items()} for s in setups]

    def diff(snap: dict, k: int) -> set[str]:
        got = {m for m, d in snap.get("course", {}).items() if m in gen and d != gen[m]}
        lib = base[k] if k < len(base) else {}
        return got | {m for m, d in snap.get("lib", {}).items() if m in lib and d != lib[m]}

    affected, notes = {}, []
    for b in books:
        for id, got in b.stored.items():
            if id == "verify":
                continue
            if "before" not in got or "after" not in got:
                affected[id] = "the grader's check step itself was replaced"
                continue
            k = got.get("_kernel", 0)
            mods = diff(got["before"], k) | diff(got["after"], k)
            if mods:
                affected[id] = ", ".join(sorted(mods))
        v = b.stored.get("verify")
        if v:
            k = v.get("_kernel", 0)
            lib = setups[k]["lib"] if k < len(setups) else {}
            what = []
            for m, t in sorted(v.get("course", {}).items()):
                if m in genuine and digest(t) != gen[m]:
                    what.append(f"{m} ({', '.join(_differs(t, genuine[m])[:6])})")
            for m, t in sorted(v.get("lib", {}).items()):
                if m in lib and t != lib[m]:
                    what.append(f"{m} ({', '.join(_differs(t, lib[m])[:6])})")
            if what:
                notes.append(f"{b.file}: after the notebook ran, these differed from the genuine ones: "
                             + "; ".join(what) + ".")
    return affected, notes


# ----------------------------------------------------------------------------- one student

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


_INFO = re.compile(r": ran in \d+ s\b|: graded again with every cell")


def _is_problem(note: str) -> bool:
    return not _INFO.search(note)


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
    lines = [f"# Feedback: {sg.student}", ""]
    if sg.flag == TAMPERED:
        lines += ["**Tampering detected: the course's check machinery was modified during grading. "
                  "The exercises checked while it was modified get 0 points (see the notes below).**", ""]
    lines += [f"**Total: {sg.total(ids):g} / {max_total:g} points.** Files: {', '.join(sg.files) or 'none'}.", ""]
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


def _digest_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0")
        try:
            h.update(p.read_bytes())
        except OSError:
            h.update(b"<unreadable>")
    return h.hexdigest()[:20]


def grade_submission(student: str, files: list[tuple[str, bytes]], exercises: list[str] | None,
                     limits: Limits, fast: bool, expected_files: dict[str, str] | None) -> dict:
    """One Dask task: grade a student from the notebooks' bytes (workers need not share a disk).

    Returns ``asdict(StudentGrade)``. The files are written to a temporary folder
    under their own names; ``expected_files`` are the course files' hashes on the
    machine that submitted the work.
    """
    with tempfile.TemporaryDirectory(prefix="course-submission-") as tmp:
        paths = []
        for k, (name, data) in enumerate(files):
            p = Path(tmp) / str(k) / Path(name).name
            p.parent.mkdir(parents=True)
            p.write_bytes(data)
            paths.append(p)
        return asdict(grade_student(student, paths, exercises, limits, fast, expected_files))


class _Store:
    """``OUT``: grades written as each student finishes; ``OUT/.grading/`` keeps one record a student."""

    def __init__(self, out: Path, subs: list[tuple[str, list[Path]]], exercises, fast: bool, registry):
        self.out, self.exercises, self.fast, self.registry = Path(out), exercises, fast, registry
        self.dir = self.out / ".grading"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.out / "feedback").mkdir(exist_ok=True)
        self.order = [s for s, _ in subs]
        self.digest = {s: _digest_files(p) for s, p in subs}
        self.names: dict[str, str] = {}
        used: set[str] = set()
        for s in self.order:  # feedback file names, fixed before anyone finishes
            name = _safe(s)
            while name in used:
                name += "_"
            used.add(name)
            self.names[s] = name
        self.done: dict[str, StudentGrade] = {}

    def _record(self, student: str) -> Path:
        return self.dir / f"{self.names[student]}.json"

    def resume(self) -> list[str]:
        """Load the students already graded with the same files, exercises and mode; their names."""
        kept = []
        for s in self.order:
            p = self._record(s)
            try:
                rec = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            if (rec.get("student") == s and rec.get("digest") == self.digest[s] and rec.get("exercises") == self.exercises
                    and rec.get("fast") == self.fast and rec["grade"].get("flag") != ERROR):
                self.done[s] = StudentGrade.from_dict(rec["grade"])
                kept.append(s)
        return kept

    def add(self, g: StudentGrade) -> None:
        self.done[g.student] = g
        rec = {"student": g.student, "digest": self.digest.get(g.student), "exercises": self.exercises,
               "fast": self.fast, "grade": asdict(g)}
        tmp = self._record(g.student).with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, ensure_ascii=False))
        os.replace(tmp, self._record(g.student))
        self.write()

    def grades(self) -> list[StudentGrade]:
        return [self.done[s] for s in self.order if s in self.done]

    def write(self) -> list[str]:
        grades = self.grades()
        ids = self.exercises or _order({i for g in grades for i in g.results})
        for g in grades:  # a column the student has no notebook for
            for i in ids:
                if i not in g.results:
                    ex = self.registry[i]
                    why = (f"Not graded: exercise {i} was not part of this student's assignment."
                           if ex.notebook in g.notebooks else f"Notebook {ex.notebook} was not in the submission.")
                    g.results[i] = ExerciseGrade(i, ex.title, NOT_ATTEMPTED, 0.0, float(ex.points), why)
        write(grades, ids, self.out, names=self.names)
        return ids


def _local_jobs(jobs: int | None) -> int:
    return max(1, jobs or os.cpu_count() or 1)


def grade(submissions: Path, out: Path, exercises=None, limits: Limits | None = None,
          jobs: int | None = 1, log=print, scheduler: str | None = None, resume: bool = False,
          fast: bool = True) -> list[StudentGrade]:
    """Grade every submission; write grades.csv, grades.json and feedback/<student>.md to ``out``.

    ``jobs=1`` and no ``scheduler``: one student after the other in this process.
    Otherwise on Dask: ``scheduler`` an address (``tcp://host:8786``) or None/"local"
    for a LocalCluster of ``jobs`` worker processes (None: one a core). Results are
    written as each student finishes; ``resume`` keeps those already in ``out``.
    """
    limits = limits or Limits()
    registry = _registry()
    exercises = parse_ids(exercises)
    if exercises:
        check_known(exercises)
    subs = discover(Path(submissions))
    store = _Store(Path(out), subs, exercises, fast, registry)
    if resume:
        kept = store.resume()
        if kept:
            log(f"resuming: {len(kept)} student(s) already graded in {out}")
    todo = [(s, p) for s, p in subs if s not in store.done]
    # on other machines (a scheduler) the workers' course must be this one; on this machine the
    # files are the same ones, checked before and after each student
    expected = course_files() if scheduler not in (None, "", "local") else None

    def done(g: StudentGrade) -> None:
        store.add(g)
        log(f"graded {g.student}: {g.total():g} points ({g.seconds:.0f} s){' ' + g.flag.upper() if g.flag else ''}")

    if todo and scheduler is None and _local_jobs(jobs) == 1:
        for s, p in todo:
            done(grade_student(s, p, exercises, limits, fast))
    elif todo:
        _on_dask(todo, exercises, limits, fast, expected, jobs, scheduler, done, log)
    store.write()
    return store.grades()


def _on_dask(todo, exercises, limits, fast, expected, jobs, scheduler, done, log) -> None:
    """Grade ``todo`` on a Dask cluster, calling ``done`` as each student finishes."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - dask is in requirements
        raise SystemExit("error: parallel grading needs dask[distributed] (pip install -r requirements.txt)")
    cluster = None
    if scheduler in (None, "", "local"):
        cluster = LocalCluster(n_workers=_local_jobs(jobs), threads_per_worker=1, processes=True,
                               dashboard_address=None, memory_limit=0, silence_logs=40)
        client = Client(cluster)
    else:
        client = Client(scheduler, timeout="60s")
    log(f"grading {len(todo)} student(s) on {'a local Dask cluster' if cluster else scheduler} "
        f"({len(client.scheduler_info(n_workers=-1)['workers'])} workers)")
    try:
        futures = {}
        for s, paths in todo:
            files = [(p.name, p.read_bytes()) for p in paths]
            f = client.submit(grade_submission, s, files, exercises, limits, fast, expected,
                              key=f"grade-{_safe(s)}-{hashlib.sha1(s.encode()).hexdigest()[:8]}", pure=False)
            futures[f] = (s, paths)
        for f in as_completed(list(futures)):
            s, paths = futures[f]
            try:
                g = StudentGrade.from_dict(f.result())
            except Exception as e:  # the task failed on every worker it was tried on
                g = StudentGrade(s, [p.name for p in paths], flag=ERROR,
                                 notes=[f"Grading error: the task failed ({type(e).__name__}: {e}); "
                                        "run again with --resume to retry this student."])
            done(g)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def write(grades: list[StudentGrade], ids: list[str], out: Path, names: dict[str, str] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "feedback").mkdir(exist_ok=True)
    from utils.checks import load_all

    registry = load_all()
    max_total = sum(registry[i].points for i in ids)
    tmp = out / "grades.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", *ids, "total", "max", "flag", "notes"])
        for g in grades:
            cells = [f"{g.results[i].points:g}" if i in g.results else "0" for i in ids]
            problems = [n for n in g.notes if _is_problem(n)]
            w.writerow([g.student, *cells, f"{g.total(ids):g}", f"{max_total:g}", g.flag, " | ".join(problems)])
    os.replace(tmp, out / "grades.csv")
    used: set[str] = set()
    for g in grades:
        name = names[g.student] if names and g.student in names else _safe(g.student)
        if not names:
            while name in used:
                name += "_"
            used.add(name)
        (out / "feedback" / f"{name}.md").write_text(feedback(g, ids))
    tmp = out / "grades.json.tmp"
    tmp.write_text(json.dumps(
        {"exercises": ids, "max": max_total,
         "students": [{**asdict(g), "total": g.total(ids)} for g in grades]}, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, out / "grades.json")


def time_one_student(paths: list[Path], fast: bool = True, limits: Limits | None = None) -> tuple[float, StudentGrade]:
    """Seconds to grade one student's notebooks (for ``make bench``), and the grade.

    The course's genuine fingerprints are computed first and not counted (once a
    grading process, not once a student).
    """
    genuine_fingerprints()
    t0 = time.perf_counter()
    g = grade_student("bench", [Path(p) for p in paths], None, limits, fast)
    return time.perf_counter() - t0, g


def reference_submission(folder: Path) -> list[Path]:
    """Write a student who solved everything: each lecture with the solutions typed into its
    answer cells (as a student would submit it). Returns the notebooks' paths."""
    from tools.assignment import fill_solution
    from tools.lectures import LECTURES, SOLUTIONS

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for sol_path in sorted(SOLUTIONS.glob("*.ipynb")):
        lec_path = LECTURES / sol_path.name
        if not lec_path.exists():
            continue
        sol, nb = nbformat.read(sol_path, as_version=4), nbformat.read(lec_path, as_version=4)
        sol_cells, cells = exercise_cells(sol), exercise_cells(nb)
        for id, roles in cells.items():
            if roles.get("answer") and sol_cells.get(id, {}).get("answer"):
                nb.cells[roles["answer"][0]].source = fill_solution(sol.cells[sol_cells[id]["answer"][0]].source)
        nbformat.write(nb, folder / sol_path.name)
        paths.append(folder / sol_path.name)
    return paths


def bench_student(fast: bool = True, limits: Limits | None = None) -> tuple[float, StudentGrade]:
    """``make bench``'s grading row: seconds to grade one student who solved every exercise of
    every notebook (one kernel), fast by default; and the grade."""
    with tempfile.TemporaryDirectory(prefix="course-bench-") as tmp:
        return time_one_student(reference_submission(Path(tmp)), fast=fast, limits=limits)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("submissions", type=Path, help="a folder: one notebook or one folder a student")
    ap.add_argument("out", type=Path, help="where grades.csv, grades.json and feedback/ go")
    ap.add_argument("--exercises", default=None, help='exercise ids to grade, e.g. "1.1 1.3"')
    ap.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout)
    ap.add_argument("--check-timeout", type=float, default=Limits.check_timeout)
    ap.add_argument("--notebook-timeout", type=float, default=Limits.notebook_timeout)
    ap.add_argument("--max-output-bytes", type=int, default=Limits.max_output_bytes)
    ap.add_argument("--jobs", type=int, default=None,
                    help="worker processes of the local Dask cluster (default: one a core; 1: no Dask)")
    ap.add_argument("--scheduler", default=None, help="address of a running Dask scheduler, e.g. tcp://host:8786")
    ap.add_argument("--resume", action="store_true", help="keep the students already graded in OUT")
    ap.add_argument("--full", action="store_true", help="run every cell, not only those the answers need")
    args = ap.parse_args(argv)
    if not args.submissions.exists():
        print(f"error: {args.submissions} does not exist", file=sys.stderr)
        return 2
    limits = Limits(cell_timeout=args.cell_timeout, check_timeout=args.check_timeout,
                    notebook_timeout=args.notebook_timeout, max_output_bytes=args.max_output_bytes)
    try:
        grades = grade(args.submissions, args.out, args.exercises, limits, args.jobs, scheduler=args.scheduler,
                       resume=args.resume, fast=not args.full)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    flagged = Counter(g.flag for g in grades if g.flag)
    print(f"wrote {args.out / 'grades.csv'} ({len(grades)} students"
          + "".join(f", {n} {k}" for k, n in sorted(flagged.items())) + f") and {args.out / 'feedback'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
