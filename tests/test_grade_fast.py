"""Fast grading gives exactly the grades of running every cell.

1. The reference solutions, graded fast (all notebooks, one kernel), pass every
   exercise with exactly the message their full, top-to-bottom run printed
   (the check cells' stored outputs in solutions/, which nbval keeps current).
2. A fixture class built here from the lectures and solutions (full marks,
   unsolved, mixed, faulty), graded fast and full: the same statuses, points,
   messages, flags and notes (notes about cells fast grading did not run aside).
"""
from __future__ import annotations

import re

import nbformat
import pytest

from tests.test_grade import PF_ALT, RAISES, answer, cell_of, insert_code, lecture, save, solved
from tools.grading import grade as G, gradebook
from tools.course.lectures import SOLUTIONS
from tools.course.nbcells import exercise_cells
from utils.checks import exercises

LIMITS = G.Limits(cell_timeout=180, check_timeout=60, notebook_timeout=600)
NB0, NB1, NB3 = "00_welcome", "01_change_of_variables", "03_continuous_flows"


def _stored_report(nb, id):
    cell = cell_of(nb, id, "check")
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_reference_solutions_fast_equal_their_full_run(tmp_path):
    paths, expected = [], {}
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        stem = path.stem
        sol = nbformat.read(path, as_version=4)
        found = exercise_cells(sol)
        for ex in exercises():
            if ex.notebook == stem and "answer" in found.get(ex.id, {}) and "check" in found[ex.id]:
                expected[ex.id] = _stored_report(sol, ex.id)
        save(solved(stem), tmp_path / f"{stem}.ipynb")
        paths.append(tmp_path / f"{stem}.ipynb")
    seconds, g = G.time_one_student(paths, fast=True, limits=LIMITS)
    print(f"fast grading of the reference solutions: {seconds:.1f} s for {len(expected)} exercises")
    assert g.flag == "", g.notes
    for id, stored in expected.items():
        r = g.results[id]
        report = f"✔ Exercise {id} ({r.title}): passed." + (f" {r.message}" if r.message else "")
        assert r.status == "passed" and report in stored, (id, r.message, stored)


MIDPOINT_AS_RK4 = """def rk4_step(u, x, t, dt):
    k1 = u(x, t)
    return x + dt * u(x + 0.5 * dt * k1, t + 0.5 * dt)
"""
READS_A_DEMO = "seen = len(samples)  # the student peeks at a demonstration's data\n" + PF_ALT
OWN_HELPER = "def my_solve(A, y):\n    return torch.linalg.solve(A, y)\n"
USES_HELPER = """def affine_log_prob(x, A, b):
    z = my_solve(A, (x - b).T).T
    return standard_normal_log_prob(z) - torch.linalg.slogdet(A).logabsdet
"""


def make_class(root):
    subs = root / "subs"
    for stem in (NB0, NB1, NB3):  # full marks
        save(solved(stem), subs / "full" / f"{stem}.ipynb")
    for stem in (NB0, NB1):  # nothing solved
        save(lecture(stem), subs / "unsolved" / f"{stem}.ipynb")
    nb = answer(solved(NB1, ["1.1"]), "1.2", RAISES)  # mixed: right, raises, not attempted
    save(nb, subs / "mixed" / f"{NB1}.ipynb")
    save(answer(solved(NB3, ["3.1", "3.3"]), "3.2", MIDPOINT_AS_RK4), subs / "mixed" / f"{NB3}.ipynb")
    # faulty: an answer that reads a demonstration's name, a helper cell of the student's own
    # (no metadata), a broken extra cell, a global setting changed in an extra cell
    nb = answer(solved(NB1), "1.1", READS_A_DEMO)
    answer(nb, "1.3", USES_HELPER)
    at = exercise_cells(nb)["1.3"]["answer"][0]
    insert_code(nb, at, OWN_HELPER)
    insert_code(nb, 2, "this is not python")
    insert_code(nb, 2, "torch.set_default_dtype(torch.float64)")
    save(nb, subs / "faulty" / f"{NB1}.ipynb")
    save(answer(solved(NB0), "0.1", "def sample_pushforward(f, n, d, generator):\n    while True:\n        pass\n"),
         subs / "faulty" / f"{NB0}.ipynb")
    return subs


def _comparable(g):
    results = {k: (r.status, r.points, r.message) for k, r in g.results.items()}
    notes = [re.sub(r"\d+ s\b.*", "", n) for n in g.notes if gradebook._is_problem(n) and not n.startswith("Cell ")]
    return results, g.flag, notes


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("fastfull")
    subs = make_class(root)
    limits = G.Limits(cell_timeout=180, check_timeout=8, notebook_timeout=600, interrupt_grace=2)
    fast = {g.student: g for g in G.grade(subs, root / "fast", limits=limits, jobs=2, log=lambda *a: None)}
    full = {g.student: g for g in G.grade(subs, root / "full", limits=limits, jobs=2, log=lambda *a: None, fast=False)}
    return fast, full


def test_fixture_class_fast_equals_full(both):
    fast, full = both
    assert sorted(fast) == sorted(full) == ["faulty", "full", "mixed", "unsolved"]
    for s in fast:
        assert _comparable(fast[s]) == _comparable(full[s]), s
        assert fast[s].mode == "fast" and full[s].mode == "full"


def test_fixture_class_grades(both):
    fast, _ = both
    assert all(r.status == "passed" for r in fast["full"].results.values())
    assert all(r.status == "not attempted" for r in fast["unsolved"].results.values())
    mixed = {k: r.status for k, r in fast["mixed"].results.items()}
    assert (mixed["1.1"], mixed["1.2"], mixed["1.3"], mixed["3.1"], mixed["3.2"]) == (
        "passed", "failed", "not attempted", "passed", "failed")
    faulty = fast["faulty"]
    # the answer that reads a demo's name and the one that uses the student's helper both pass:
    # fast grading ran the cells they need (no NameError, no full rerun)
    assert faulty.results["1.1"].status == "passed" and faulty.results["1.3"].status == "passed"
    assert not any("graded again with every cell" in n for n in faulty.notes)
    assert faulty.results["0.1"].status == "failed" and "did not finish" in faulty.results["0.1"].message


def test_grading_says_what_it_does_at_least_every_five_seconds():
    """Walk-through 3, point 3: one student takes about 13 s, which must not look like a hang. The heartbeat
    logs the status every HEARTBEAT_S seconds while grading runs, and stops with it."""
    import time

    lines = []
    with G._heartbeat(lines.append, lambda: f"tick {len(lines)}", every=0.05):
        time.sleep(0.32)
    after = len(lines)
    time.sleep(0.15)
    assert after >= 4 and lines[0] == "tick 0" and len(lines) == after, lines
    assert G.HEARTBEAT_S <= 5
