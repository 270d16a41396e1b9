"""Running a student: the planned steps of their notebooks in one kernel, restarts after crashes
and cells that will not stop, and the results read back from the kernel."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from tools.grading.client import _Client
from tools.grading.plan import _Notebook, _call
from tools.grading.records import ExerciseGrade, FAILED, Limits, NOT_ATTEMPTED, PASSED


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
