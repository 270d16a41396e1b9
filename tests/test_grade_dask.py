"""Grading on a real Dask cluster: a scheduler and two workers, separate processes on 127.0.0.1.

One worker is killed (its whole process group, SIGKILL) while it grades a
student; the scheduler reruns that task on the other worker, and grades.csv is
complete and identical to a local run. Then ``--resume`` regrades nobody, and
only the student whose record was removed.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.test_grade import NB1, PF_ALT, RAISES, answer, lecture, save, solved
from tools.grading import grade as G

distributed = pytest.importorskip("distributed")
DASK = Path(sys.executable).parent / "dask"
LIMITS = G.Limits(cell_timeout=180, check_timeout=60, notebook_timeout=600)


def make_class(root):
    subs = root / "subs"
    save(solved(NB1), subs / "ann.ipynb")
    save(answer(answer(lecture(NB1), "1.1", PF_ALT), "1.2", RAISES), subs / "ben.ipynb")
    save(lecture(NB1), subs / "cat.ipynb")
    save(solved(NB1, ["1.2", "1.3"]), subs / "dan.ipynb")
    save(solved(NB1), subs / "eve.ipynb")
    return subs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(*args):
    return subprocess.Popen([str(DASK), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, cwd=Path(__file__).resolve().parents[1])


def _stop(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait(timeout=30)


def _rows(out):
    return (out / "grades.csv").read_text()


@pytest.mark.skipif(not DASK.exists(), reason="no dask command in this environment")
def test_a_killed_worker_changes_nothing_and_resume_regrades_nobody(tmp_path):
    subs = make_class(tmp_path)
    local = G.grade(subs, tmp_path / "local", limits=LIMITS, jobs=1, log=lambda *a: None)
    assert [g.student for g in local] == ["ann", "ben", "cat", "dan", "eve"]
    assert [g.total() for g in local] == [3, 1, 0, 2, 3]

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = {"scheduler": _start("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")}
    try:
        for name in ("w1", "w2"):
            procs[name] = _start("worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                                 "--name", name, "--host", "127.0.0.1")
        from distributed import Client

        watcher = Client(address, timeout="60s")
        watcher.wait_for_workers(2, timeout=120)
        out = tmp_path / "cluster"
        box = {}
        run = threading.Thread(target=lambda: box.setdefault("g", G.grade(
            subs, out, limits=LIMITS, scheduler=address, log=lambda *a: None)))
        run.start()
        killed = None
        deadline = time.monotonic() + 600
        while killed is None and time.monotonic() < deadline and run.is_alive():
            busy = {a: ks for a, ks in watcher.processing().items() if ks}
            names = {a: w["name"] for a, w in watcher.scheduler_info(n_workers=-1)["workers"].items()}
            # once one student is written, kill a worker that is grading another one
            if (out / "grades.csv").exists() and busy:
                killed = names[next(iter(busy))]
                _stop(procs[killed])
            time.sleep(0.5)
        run.join(timeout=900)
        assert killed is not None, "no worker was busy to kill"
        assert not run.is_alive() and "g" in box
        assert len(watcher.scheduler_info(n_workers=-1)["workers"]) == 1  # the other worker did the rest
        watcher.close()
    finally:
        for p in procs.values():
            _stop(p)
    assert _rows(out) == _rows(tmp_path / "local")
    assert [g.flag for g in box["g"]] == [""] * 5

    # resume: every student already graded with the same files: nobody regraded
    t0 = time.monotonic()
    log = []
    again = G.grade(subs, out, limits=LIMITS, jobs=1, resume=True, log=log.append)
    assert any("5 student(s) already graded" in line for line in log) and not any("graded ann" in x for x in log)
    assert _rows(out) == _rows(tmp_path / "local") and time.monotonic() - t0 < 30
    # a student whose record is gone (an interrupted run) is graded; the others are kept
    (out / ".grading" / "cat.json").unlink()
    log.clear()
    G.grade(subs, out, limits=LIMITS, jobs=1, resume=True, log=log.append)
    assert [x.split(":")[0] for x in log if x.startswith("graded ")] == ["graded cat"]
    assert _rows(out) == _rows(tmp_path / "local") and len(again) == 5
    shutil.rmtree(out)
