"""Tamper detection: the course files' hashes, the genuine fingerprints of the check machinery
(computed in a fresh process), and what differed from them while each exercise was checked."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from tools.grading.plan import _Notebook
from tools.grading.records import ROOT
from tools.grading.run import _KERNEL_ENV


def course_files() -> dict[str, str]:
    """sha256 of every file of the installed check machinery (``utils/checks``, ``utils/errors.py``)
    and of ``tools/grading/kernel.py``."""
    import tools.grading.kernel
    import utils

    base = Path(utils.__file__).resolve().parent
    out = {}
    for p in sorted([*(base / "checks").rglob("*.py"), base / "errors.py"]):
        if "__pycache__" not in p.parts:
            out[f"utils/{p.relative_to(base).as_posix()}"] = hashlib.sha256(p.read_bytes()).hexdigest()
    gk = Path(tools.grading.kernel.__file__)
    out["tools/grading/kernel.py"] = hashlib.sha256(gk.read_bytes()).hexdigest()
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
        done = subprocess.run([sys.executable, "-m", "tools.grading.kernel"], cwd=cwd, capture_output=True, text=True,
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
    from tools.grading.kernel import digest

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
