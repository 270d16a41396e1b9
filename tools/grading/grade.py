"""Autograde a folder of student notebooks with the course's official checks (``make grade``).

``python -m tools.grading.grade SUBMISSIONS OUT [--exercises "1.1 1.3"]`` (or
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
  ``{"course": {"grade": "needed"}}`` (``python -m tools.grading.deps``), and the
  cells the student's own answers need by the same static analysis, done on
  the student's notebook. Demonstrations and training are skipped. If an answer
  then fails with a NameError, that notebook is graded again in full.
- The student's check cells are not run. Right after each answer cell the
  grader runs the OFFICIAL check from the registry (``tools.grading.kernel``)
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
import hashlib
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import nbformat

from tools.course.nbcells import check_known, exercise_cells, parse_ids
from tools.grading.gradebook import _Store, _safe, discover
from tools.grading.plan import _registry
from tools.grading.records import ERROR, Limits, StudentGrade
from tools.grading.student import grade_student
from tools.grading.tamper import course_files, genuine_fingerprints


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

def _local_jobs(jobs: int | None) -> int:
    return max(1, jobs or os.cpu_count() or 1)


HEARTBEAT_S = 5.0  # a progress line at least this often: one student takes about 13 s


@contextmanager
def _heartbeat(log, status, every: float = HEARTBEAT_S):
    """Call ``log(status())`` every ``every`` seconds while the block runs, so that grading never goes silent
    for longer (walk-through 3: a phase over 5 s says what it does)."""
    stop = threading.Event()

    def beat():
        while not stop.wait(every):
            log(status())
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


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

    finished, start = [], time.monotonic()

    def done(g: StudentGrade) -> None:
        store.add(g)
        finished.append(g.student)
        log(f"graded {g.student}: {g.total():g} points ({g.seconds:.0f} s){' ' + g.flag.upper() if g.flag else ''}"
            f" [{len(finished)} of {len(todo)}]")

    def status() -> str:
        return f"  ... grading: {len(finished)} of {len(todo)} student(s) done, {time.monotonic() - start:.0f} s"

    with _heartbeat(log, status):
        if todo and scheduler is None and _local_jobs(jobs) == 1:
            for k, (s, p) in enumerate(todo, 1):
                log(f"grading {s} ({k} of {len(todo)}): running its notebooks in a fresh kernel")
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
    from tools.grading.assignment import fill_solution
    from tools.course.lectures import LECTURES, SOLUTIONS

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
    ap.add_argument("--challenge", default=None, help="grade a challenge's submissions (tools.grading.challenge)")
    args = ap.parse_args(argv)
    if args.challenge:
        from tools.grading.challenge import main as challenge
        return challenge(["grade", str(args.submissions), str(args.out), "--challenge", args.challenge]
                         + (["--jobs", str(args.jobs)] if args.jobs else []))
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
