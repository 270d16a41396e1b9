"""Device, seeds, progress bars and timing: what every notebook sets up (introduced in 00).

A GPU is used when present and never required. Progress lines are shown to
people and silenced when the environment variable ``COURSE_QUIET=1`` is set
(tests, ``make solutions``), so stored outputs stay clean and comparable. They
are plain text updated in place, so they stay readable after a cell finishes
and when a saved notebook is reopened.
"""
from __future__ import annotations

import os
import random
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterable, Iterator

import numpy as np
import torch

__all__ = ["get_device", "seed_everything", "course_seed", "progress", "stages", "Progress", "timer", "quiet",
           "in_background"]


def get_device() -> torch.device:
    """CUDA if available, else Apple's MPS if available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, numpy and torch; return a torch generator seeded the same way.

    With ``COURSE_SEED`` set (:func:`course_seed`) the seed is shifted first.
    """
    seed = course_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    _TORCH["manual_seed"](seed)
    return _TorchGenerator.manual_seed(torch.Generator(), seed)  # already shifted: the base class's seeding


# ---------------------------------------------------------------------- another run of the course: COURSE_SEED
# ``COURSE_SEED=k`` (a whole number) reruns any notebook on another random stream without editing it: every
# seed it or utils sets (seed_everything, torch.manual_seed, torch.Generator().manual_seed) becomes
# course_seed(seed). 0 or unset is the course's own run. The benchmark's seed sweep uses it
# (tools/bench/claims_seeds.py): training noise, data samples, evaluation noise and references all change.
SEED_STRIDE = 1_000_003  # a prime: shifted seeds of one run never meet another seed of the same run
_TorchGenerator = torch._C.Generator
# torch's own seeding, kept in a dict: a module-level alias of a torch builtin would be fingerprinted by the
# grader's tamper check (tools/grading/kernel.py), whose fingerprint of a builtin differs between processes.
_TORCH = {"manual_seed": torch.manual_seed}


def seed_shift() -> int:
    """The run's ``COURSE_SEED`` (0 when unset: the course's run)."""
    raw = os.environ.get("COURSE_SEED", "").strip()
    if not raw:
        return 0
    try:
        k = int(raw)
    except ValueError:
        raise ValueError(f"COURSE_SEED must be a whole number >= 0 (0 is the course's run), got {raw!r}.") from None
    if k < 0:
        raise ValueError(f"COURSE_SEED must be a whole number >= 0 (0 is the course's run), got {k}.")
    return k


def course_seed(seed: int) -> int:
    """``seed`` itself in the course's run; with ``COURSE_SEED=k`` another seed, the same for the same pair."""
    k = seed_shift()
    return int(seed) if k == 0 else (int(seed) + SEED_STRIDE * k) % 2**32  # numpy takes seeds below 2**32


class _AnyGenerator(type(_TorchGenerator)):
    def __instancecheck__(cls, obj) -> bool:  # isinstance(g, torch.Generator) stays true for every generator
        return isinstance(obj, _TorchGenerator)


class _ShiftedGenerator(_TorchGenerator, metaclass=_AnyGenerator):
    """torch.Generator whose ``manual_seed(s)`` seeds ``course_seed(s)`` (installed only with COURSE_SEED)."""

    def manual_seed(self, seed):
        return super().manual_seed(course_seed(seed))


def _shifted_manual_seed(seed):
    return _TORCH["manual_seed"](course_seed(seed))


def _shift_seeds_if_asked() -> None:
    """With ``COURSE_SEED`` other than 0, shift every seed torch is given in this process."""
    if seed_shift():
        torch.Generator = _ShiftedGenerator
        torch.manual_seed = _shifted_manual_seed
        torch.random.manual_seed = _shifted_manual_seed


_shift_seeds_if_asked()


_POOL: ThreadPoolExecutor | None = None


def in_background(fn, *args) -> Future:
    """Run ``fn(*args)`` on a worker thread, one a core (at most 4); ``.result()`` waits for its value.

    For work that releases Python's lock while it computes (scipy's assignment solver, torch's
    kernels): a W2 solved while the next sample is drawn, a batch's OT pairing solved while the previous
    batch trains. Results are those of calling ``fn(*args)`` directly.
    """
    global _POOL
    if _POOL is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        _POOL = ThreadPoolExecutor(max_workers=max(1, min(4, cores)), thread_name_prefix="course")
    return _POOL.submit(fn, *args)


def quiet() -> bool:
    """True when progress output should be suppressed (tests and stored solutions)."""
    return os.environ.get("COURSE_QUIET", "") not in ("", "0")


def _in_kernel() -> bool:
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


class _Line:
    """One line of text that is rewritten in place: a text output updated through a display handle
    in a Jupyter kernel (plain text: it stays readable after the run and when the saved notebook is
    reopened, with no widget to lose), else a line on stderr rewritten with a carriage return."""

    def __init__(self, lines: bool = False):
        self.handle, self.width = None, 0
        self.kernel = _in_kernel()
        self.lines = lines  # outside a kernel: one new line per write (overall lines, between inner bars)

    def write(self, text: str, final: bool = False) -> None:
        if self.kernel:
            bundle = {"text/plain": text}
            if self.handle is None:
                from IPython.display import display

                self.handle = display(bundle, raw=True, display_id=True)
            else:
                self.handle.update(bundle, raw=True)
        else:
            import sys

            if self.lines:
                sys.stderr.write(text + "\n")
            else:
                sys.stderr.write("\r" + text.ljust(self.width) + ("\n" if final else ""))
                self.width = len(text)
            sys.stderr.flush()


class Progress:
    """An iterable with a progress line (see :func:`progress`)."""

    every = 0.2  # seconds between rewrites of the line

    def __init__(self, iterable: Iterable, desc: str = "", total: int | None = None):
        self.iterable, self.desc = iterable, desc
        if total is None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.total = total

    def __len__(self) -> int:
        if self.total is None:
            raise TypeError("this progress has no total")
        return self.total

    def _text(self, n: int, elapsed: float, item=None, state: str = "") -> str:
        from tqdm.std import tqdm

        if isinstance(item, str) and self.total:  # an overall line: "model 3 of 6: OT-CFM"
            head = f"{self.desc} {min(n + 1, self.total)} of {self.total}: {item}" if not state else \
                f"{self.desc}: {state}"
            bar = tqdm.format_meter(n, self.total, elapsed, ncols=40, bar_format="|{bar}| [{elapsed}]")
            return f"{head} {bar}"
        prefix = self.desc + (f" ({state})" if state and state != "done" else "")
        return tqdm.format_meter(n, self.total, elapsed, ncols=100, prefix=prefix)

    def __iter__(self):
        line, start = None, time.monotonic()
        last, n, item = float("-inf"), 0, None
        finished = False
        try:
            for item in self.iterable:
                now = time.monotonic()
                if line is None:
                    line = _Line(lines=isinstance(item, str) and bool(self.total))
                if now - last >= self.every or line.lines:
                    line.write(self._text(n, now - start, item))
                    last = now
                yield item
                n += 1
            finished = True
        finally:
            elapsed = time.monotonic() - start
            line = line or _Line()
            if isinstance(item, str) and self.total:
                state = f"{n} of {self.total} done" if finished else f"stopped in {self.desc} {n + 1}"
            else:
                state = "done" if finished else f"stopped at {n}"
            line.write(self._text(n, elapsed, item, state), final=True)


def progress(iterable: Iterable, desc: str = "", total: int | None = None) -> Iterable:
    """Show progress while iterating; the plain iterable when quiet (``COURSE_QUIET=1``).

    ``for step in progress(range(600), desc="training")`` shows one line,
    ``training: 45%|████▌     | 270/600 [00:02<00:03, 120.50it/s]``, rewritten in place about five
    times a second, that stays after the loop ends. In a notebook it is a plain text output, so a
    saved notebook reopens showing the last state of every bar (no widget, no "model not found").
    Over names it is an overall line: ``for name in progress(["FM", "I-CFM", "OT-CFM"], desc="model")``
    shows ``model 2 of 3: I-CFM |███▎      | [00:14]`` above the bars of the loop's body (nest them).
    """
    if quiet():
        return iterable
    return Progress(iterable, desc=desc, total=total)


class stages:
    """An overall line for a cell that runs a few long steps which are not a loop:

        with stages(3, "showdown") as stage:
            stage("training the score model")   # showdown 1 of 3: training the score model
            ...
            stage("sampling")                   # showdown 2 of 3: sampling

    Each step's own progress lines appear below it; at the end it reads ``showdown: 3 of 3 done``.
    Silent when quiet.
    """

    def __init__(self, n: int, desc: str = "stage"):
        self.n, self.desc, self.k = int(n), desc, 0
        self.start = time.monotonic()
        self.line = None if quiet() else _Line(lines=True)
        self.progress = Progress([], desc=desc, total=self.n)

    def __call__(self, label: str) -> None:
        if self.line is not None:
            self.line.write(self.progress._text(self.k, time.monotonic() - self.start, label))
        self.k += 1

    def __enter__(self) -> "stages":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self.line is not None:
            done = self.k if exc_type is None else self.k - 1
            state = f"{done} of {self.n} done" if exc_type is None else f"stopped in {self.desc} {self.k}"
            self.line.write(self.progress._text(done, time.monotonic() - self.start, "", state), final=True)


@contextmanager
def timer(label: str = "") -> Iterator[dict]:
    """Time a block: ``with timer("training") as t: ...``; prints "training took 1.2 s".

    Under a second it prints milliseconds ("took 12 ms", never "took 0.0 s"). The printed time
    varies from run to run; the test suite's nbval sanitiser replaces "took <number> s" and
    "took <number> ms" so stored outputs still compare.
    """
    out: dict = {}
    start = time.perf_counter()
    yield out
    out["seconds"] = seconds = time.perf_counter() - start
    took = f"{seconds:.1f} s" if seconds >= 1.0 else f"{max(1, round(seconds * 1000))} ms"
    print(f"{label + ' ' if label else ''}took {took}")


def _check_figures_if_asked() -> None:
    """With COURSE_CHECK_FIGURES=1 (set by the test run), every figure a kernel shows is checked
    for overlapping text (:func:`utils.plotting.install_figure_check`)."""
    if os.environ.get("COURSE_CHECK_FIGURES", "") in ("", "0"):
        return
    from .plotting import install_figure_check

    install_figure_check()


_check_figures_if_asked()


# ---------------------------------------------------------------------- an answer cell that does not compile
ANSWER_DID_NOT_RUN = "your answer cell did not run: fix its error; the notebook goes on with the reference"


class AnswerDidNotRun:
    """What an exercise's name holds when its answer cell had a syntax error (see
    :func:`install_answer_guard`): the check cell then says so in one line instead of a NameError."""

    def __init__(self, name: str, error: str):
        self.name, self.error = name, error
        self.did_not_run = f"{ANSWER_DID_NOT_RUN[0].upper()}{ANSWER_DID_NOT_RUN[1:]} ({error})."

    def __call__(self, *args, **kwargs):
        raise NameError(f"`{self.name}` is not defined: {self.did_not_run}")

    def __repr__(self) -> str:
        return f"<answer `{self.name}` did not run: {self.error}>"


def answer_did_not_run(names: list[str], error: str) -> None:
    """Run instead of an answer cell that does not compile: say so where the student looks (the cell
    itself), and bind each exercise name it defines to :class:`AnswerDidNotRun` for the check cell."""
    import sys

    from IPython import get_ipython

    shell = get_ipython()
    for name in names:
        shell.user_ns[name] = AnswerDidNotRun(name, error)
    print(f"✗ This answer cell did not run: {error}. Fix it and run it again; the check below says so, and "
          "the notebook goes on with the reference.", file=sys.stderr)


def _answer_names(source: str) -> list[str]:
    """The exercises' answer names a cell defines at top level (``def name(`` or ``name =``)."""
    import re

    from .checks import load_all

    answers = {ex.answer for ex in load_all().values()}
    found = re.findall(r"^(?:def\s+(\w+)\s*\(|(\w+)\s*=(?!=))", source, flags=re.M)
    return list(dict.fromkeys(n for pair in found for n in pair if n in answers))


def _guard_answer_cell(lines: list[str]) -> list[str]:
    """IPython input transformer: an answer cell (it defines an exercise's answer) with a syntax
    error becomes a call of :func:`answer_did_not_run`. Without it the SyntaxError stopped Run All
    silently at that cell and the check cell showed a raw NameError (walk-through 3, m1)."""
    source = "".join(lines)
    try:
        compile(source, "<cell>", "exec")
        return lines
    except SyntaxError as err:
        try:
            names = _answer_names(source)
        except Exception:  # never let the guard itself break a cell
            return lines
        if not names:
            return lines
        what = f"{type(err).__name__} at line {err.lineno}: {err.msg}"
        return [f"__import__('utils.runtime').runtime.answer_did_not_run({names!r}, {what!r})\n"]


def install_answer_guard(shell=None) -> bool:
    """Install :func:`_guard_answer_cell` in a Jupyter kernel (done by ``import utils``)."""
    if shell is None:
        if not _in_kernel():
            return False
        from IPython import get_ipython

        shell = get_ipython()
    if _guard_answer_cell not in shell.input_transformers_post:
        shell.input_transformers_post.append(_guard_answer_cell)
    return True


install_answer_guard()
