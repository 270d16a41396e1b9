"""The autograder's side inside the student's kernel (used by ``tools.grading.grade``; not for notebooks).

``tools.grading.grade`` sends one-line cells that call these functions:

- :func:`setup` once a kernel: loads the exercise registry and reports the
  fingerprints of the check machinery before any student code has run;
- :func:`begin` before each notebook: an empty namespace, the notebook's folder,
  torch's defaults (several notebooks share one kernel);
- :func:`grade` after an answer cell: the OFFICIAL check of the registry on the
  object the answer cell defined, with every random generator seeded, and the
  fingerprints just before and just after it; a failed answer is replaced by the
  reference, as ``check()`` does in the notebook;
- :func:`verify` after each notebook: the fingerprints in full.

Fingerprints (:func:`fingerprints`): every function and class of every loaded
``utils`` module (and of this module), by code object, defaults and name; the
exercise registry (each check and reference); and the callables of a few
libraries the checks rely on (builtins, math, numpy, torch, ``torch.Tensor``,
``torch.nn.functional``, ``torch.linalg``, ``torch.autograd``). The grader compares
them, outside the kernel, with the genuine course's (computed in a fresh
process from the installed files, :func:`genuine`) and with the libraries' own
at setup. Each result is written to a file the grader reads (and deletes) as
soon as the cell has run.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil
import sys
import types

COURSE = ("utils", "tools.grading.kernel")
LIBRARIES = ("builtins", "math", "numpy", "torch", "torch.Tensor", "torch.nn.functional", "torch.linalg",
             "torch.autograd")
REGISTRY_KEY = "utils.checks.REGISTRY"
_state: dict = {}
_MISSING = object()


# ----------------------------------------------------------------------------- fingerprints

def _const(c, h) -> None:
    if isinstance(c, types.CodeType):
        _code(c, h)
    elif isinstance(c, (tuple, list)):
        h.update(b"(")
        for x in c:
            _const(x, h)
        h.update(b")")
    elif isinstance(c, frozenset):  # iteration order depends on the hash seed
        h.update(repr(sorted(repr(x) for x in c)).encode())
    else:
        h.update(repr(c).encode()[:2000])
        h.update(b"|")


def _code(code: types.CodeType, h) -> None:
    h.update(code.co_code)
    h.update(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars, code.co_argcount,
                   code.co_kwonlyargcount, code.co_flags)).encode())
    for c in code.co_consts:
        _const(c, h)


def _simple(v) -> str:
    if v is None or isinstance(v, (bool, int, float, str, bytes)):
        return repr(v)[:200]
    if isinstance(v, (tuple, list)):
        return "(" + ",".join(_simple(x) for x in v) + ")"
    return type(v).__name__


_cache: dict = {}


def _key(v):
    """What identifies a function's or class's current definition in this process (for the cache)."""
    if isinstance(v, types.FunctionType):
        cells = []
        for cell in v.__closure__ or ():
            try:
                cells.append(id(cell.cell_contents))
            except ValueError:
                cells.append(None)
        return (id(v), id(v.__code__), id(v.__defaults__), repr(v.__kwdefaults__), tuple(cells))
    if isinstance(v, type):
        return (id(v), tuple((k, id(a)) for k, a in vars(v).items()))
    return None


def fp(v, depth: int = 0) -> str:
    """A short fingerprint of a function, class or other callable (stable across processes)."""
    if isinstance(v, (staticmethod, classmethod)):
        v = v.__func__
    if isinstance(v, types.MethodType):
        v = v.__func__
    if isinstance(v, property):
        return "prop:" + ",".join(fp(f, depth) for f in (v.fget, v.fset, v.fdel) if f is not None)
    key = _key(v)
    if key is not None and (key, depth) in _cache:
        return _cache[key, depth]
    name = f"{getattr(v, '__module__', None)}.{getattr(v, '__qualname__', getattr(v, '__name__', None))}"
    if isinstance(v, types.FunctionType):
        h = hashlib.sha256()
        _code(v.__code__, h)
        h.update(_simple(v.__defaults__).encode())
        h.update(_simple(sorted((v.__kwdefaults__ or {}).items())).encode())
        for cell in v.__closure__ or ():
            try:
                c = cell.cell_contents
            except ValueError:
                continue
            h.update((fp(c, depth + 1) if callable(c) and depth < 2 else _simple(c)).encode())
        out = f"fn:{name}:{h.hexdigest()[:16]}"
    elif isinstance(v, type):
        if depth > 0:
            out = f"cls:{name}"
        else:
            parts = []
            for k, a in sorted(vars(v).items()):
                if isinstance(a, (types.FunctionType, staticmethod, classmethod, property)):
                    parts.append(f"{k}={fp(a, depth + 1)}")
            out = f"cls:{name}:{hashlib.sha256(';'.join(parts).encode()).hexdigest()[:16]}"
    else:
        out = f"{type(v).__module__}.{type(v).__qualname__}:{name}"
    if key is not None:
        _cache[key, depth] = out
    return out


def _ident(v) -> str:
    """A library callable's identity in this kernel (compared with the same kernel's at setup)."""
    if isinstance(v, types.MethodType):
        return f"m{id(v.__func__)}:{id(v.__self__)}"
    return f"{type(v).__name__}:{id(v)}"


def _namespace(obj) -> dict:
    return {k: fp(v) for k, v in list(vars(obj).items())
            if callable(v) and not isinstance(v, types.ModuleType) and not k.startswith("__")}


def _course_modules() -> list[str]:
    return sorted(m for m in list(sys.modules) if sys.modules[m] is not None
                  and any(m == p or m.startswith(p + ".") for p in COURSE))


def _registry() -> dict:
    from utils.checks.core import REGISTRY

    return {id: f"{e.answer}|{e.notebook}|{e.points}|{fp(e.check)}|{fp(e.reference)}"
            for id, e in sorted(REGISTRY.items())}


def _lib(name: str):
    if name == "torch.Tensor":
        return getattr(sys.modules.get("torch"), "Tensor", None)
    return sys.modules.get(name)


def course_fingerprints() -> dict[str, dict[str, str]]:
    """module -> attribute -> fingerprint, for every loaded course module, and the registry."""
    out = {m: _namespace(sys.modules[m]) for m in _course_modules()}
    if "utils.checks.core" in sys.modules:
        out[REGISTRY_KEY] = _registry()
    return out


def library_fingerprints(keys: dict | None = None) -> dict[str, dict[str, str]]:
    """module -> attribute -> identity of the callables of LIBRARIES (torch.Tensor: every method,
    inherited ones included); with ``keys``, exactly those attributes (as at setup)."""
    out = {}
    for name in LIBRARIES:
        obj = _lib(name)
        if obj is None:
            continue
        if keys is not None:
            names = keys.get(name, [])
        elif name == "torch.Tensor":
            names = [k for k in dir(obj) if k not in ("__class__", "__init_subclass__", "__subclasshook__")]
        else:
            names = [k for k in vars(obj) if not k.startswith("__") or k in ("__import__", "__build_class__")]
        got = {}
        for k in names:
            v = getattr(obj, k, _MISSING)
            if v is _MISSING:
                got[k] = "<deleted>"
            elif keys is not None or (callable(v) and not isinstance(v, (types.ModuleType, type))):
                got[k] = _ident(v)  # classes are left out: torch.set_default_dtype rebinds torch.Storage
        out[name] = got
    return out


def digest(table: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(table, sort_keys=True).encode()).hexdigest()[:16]


def fingerprints(detail: bool = False) -> dict:
    """Digests (or, with ``detail``, everything) of the course and library fingerprints now."""
    course = course_fingerprints()
    libs = library_fingerprints(_state.get("lib_keys"))
    if detail:
        return {"course": course, "lib": libs}
    return {"course": {m: digest(t) for m, t in course.items()}, "lib": {m: digest(t) for m, t in libs.items()}}


def genuine() -> dict[str, dict[str, str]]:
    """The course's fingerprints in this (fresh, untouched) process: every utils module imported."""
    import utils
    from utils.checks import load_all

    for m in pkgutil.walk_packages(utils.__path__, "utils."):
        try:
            importlib.import_module(m.name)
        except Exception:  # a module that needs something absent here is simply not compared
            pass
    load_all()
    importlib.import_module(__name__)
    return course_fingerprints()


# ----------------------------------------------------------------------------- steps

def _write(path: str, data: dict) -> None:
    with open(path, "w") as f:
        json.dump(data, f)


def setup(path: str) -> None:
    """Load the registry; report the fingerprints before any student code has run."""
    import math  # noqa: F401 (the libraries whose callables are fingerprinted)

    import numpy  # noqa: F401
    import torch.autograd  # noqa: F401
    import torch.linalg  # noqa: F401
    import torch.nn.functional  # noqa: F401

    try:  # importing torch._dynamo wraps torch.manual_seed (the first optimizer step imports it)
        import torch._dynamo  # noqa: F401
    except Exception:
        pass
    from utils.checks import load_all

    load_all()
    libs = library_fingerprints()
    _state["lib_keys"] = {m: sorted(t) for m, t in libs.items()}
    _write(path, {"course": course_fingerprints(), "lib": libs})


def begin(workdir: str) -> None:
    """Before a notebook: an empty namespace in its folder and torch's default settings."""
    import random

    import numpy as np
    import torch

    ip = get_ipython()  # noqa: F821 (an IPython kernel)
    ip.reset(new_session=False)
    os.chdir(workdir)
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)
    torch.manual_seed(torch.initial_seed())  # as a fresh process: torch's fixed default seed
    np.random.seed(None)
    random.seed()
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def grade(id: str, path: str) -> None:
    """Run the official check of exercise ``id`` on the answer defined in the kernel; write the result."""
    import contextlib
    import io
    import random

    import numpy as np
    import torch

    from utils.checks import get_exercise, run_check

    class _Capped(io.StringIO):  # what the student's code prints during the check, capped
        def write(self, s):
            if self.tell() < 10000:
                super().write(s[:10000])
            return len(s)

    g = get_ipython().user_ns  # noqa: F821
    ex = get_exercise(id)
    out = {"id": id, "status": "missing", "message": "", "points": 0.0, "before": fingerprints()}
    try:
        if ex.answer in g:
            np_state, py_state = np.random.get_state(), random.getstate()
            try:
                with torch.random.fork_rng(devices=[]), contextlib.redirect_stdout(_Capped()), \
                        contextlib.redirect_stderr(_Capped()):
                    torch.manual_seed(0)  # checks (and answers) see the same random state in every run
                    np.random.seed(0)
                    random.seed(0)
                    res = run_check(id, g[ex.answer])
            finally:
                np.random.set_state(np_state)
                random.setstate(py_state)
            out.update(status=res.status, message=res.message, points=float(res.points))
        out["after"] = fingerprints()
        _write(path, out)
    finally:
        if out["status"] != "passed":
            g[ex.answer] = ex.reference  # as check() does: the cells below run with the reference


def reference(id: str) -> None:
    """Bind the reference answer of ``id`` (a check that crashed or hung is skipped on a rerun)."""
    from utils.checks import get_exercise

    ex = get_exercise(id)
    get_ipython().user_ns[ex.answer] = ex.reference  # noqa: F821


def verify(path: str) -> None:
    """After a notebook: the fingerprints in full."""
    _write(path, fingerprints(detail=True))


if __name__ == "__main__":  # python -m tools.grading.kernel: the genuine fingerprints, as JSON
    json.dump(genuine(), sys.stdout)
