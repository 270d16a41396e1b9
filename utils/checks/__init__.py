"""Exercise checks, one module a notebook (``nb01`` holds the checks of notebook 01).

``core`` holds the registry and runs checks; ``expect`` the helpers checks are written with.

``check(id, answer)`` is what notebooks call; ``REGISTRY`` lists every exercise
(id, title, notebook, answer name, points, check, reference) for the
instructor tooling. How checks behave is explained in notebook 00.
"""
from __future__ import annotations

import importlib
import pkgutil

from .core import REGISTRY, CheckFailure, Exercise, Result, check, exercise, get_exercise, run_check
from .expect import call, close, expect_cases, expect_close, expect_tensor, fmt, fmt_pair

__all__ = ["REGISTRY", "CheckFailure", "Exercise", "Result", "call", "check", "close", "exercise",
           "expect_cases", "expect_close", "expect_tensor", "fmt", "fmt_pair", "get_exercise", "run_check",
           "load_all", "exercises"]

_loaded = False


def load_all() -> dict[str, Exercise]:
    """Import every ``nbXX`` module of this package, filling the registry."""
    global _loaded
    if not _loaded:
        for mod in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("nb")):
            importlib.import_module(f"{__name__}.{mod}")
        _loaded = True
    return REGISTRY


def exercises() -> list[Exercise]:
    """Every registered exercise, in course order."""
    load_all()
    key = lambda e: tuple(int(p) for p in e.id.split("."))
    return sorted(REGISTRY.values(), key=key)
