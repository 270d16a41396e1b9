"""Device, seeds, progress bars and timing: what every notebook sets up (introduced in 00).

A GPU is used when present and never required. Progress bars are shown to
people and silenced when the environment variable ``COURSE_QUIET=1`` is set
(tests, ``make solutions``), so stored outputs stay clean and comparable.
"""
from __future__ import annotations

import os
import random
import time
from contextlib import contextmanager
from typing import Iterable, Iterator

import numpy as np
import torch

__all__ = ["get_device", "seed_everything", "progress", "timer", "quiet"]


def get_device() -> torch.device:
    """CUDA if available, else Apple's MPS if available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, numpy and torch; return a torch generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def quiet() -> bool:
    """True when progress output should be suppressed (tests and stored solutions)."""
    return os.environ.get("COURSE_QUIET", "") not in ("", "0")


def progress(iterable: Iterable, desc: str = "", total: int | None = None) -> Iterable:
    """A tqdm progress bar for training loops; the plain iterable when quiet."""
    if quiet():
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


@contextmanager
def timer(label: str = "") -> Iterator[dict]:
    """Time a block: ``with timer("training") as t: ...``; prints "training took 1.2 s".

    The printed time varies from run to run; the test suite's nbval sanitiser
    replaces "took <number> s" so stored outputs still compare.
    """
    out: dict = {}
    start = time.perf_counter()
    yield out
    out["seconds"] = time.perf_counter() - start
    print(f"{label + ' ' if label else ''}took {out['seconds']:.1f} s")


def _check_figures_if_asked() -> None:
    """With COURSE_CHECK_FIGURES=1 (set by the test run), every figure a kernel shows is checked
    for overlapping text (:func:`utils.plotting.install_figure_check`)."""
    if os.environ.get("COURSE_CHECK_FIGURES", "") in ("", "0"):
        return
    from .plotting import install_figure_check

    install_figure_check()


_check_figures_if_asked()
