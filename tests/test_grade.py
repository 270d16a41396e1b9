"""The autograder: official checks, answer cells found by metadata, bad submissions handled, tampering.

Fixture submissions are generated here from the real notebooks (00 and 01, the
fastest) in tmp_path: honest full-marks and partial ones, each kind of bad
submission the grader must survive, and students who patch the check machinery.
All of them are graded in one run, fast (the default), on a local Dask cluster of
two workers (``jobs=2``).
"""
from __future__ import annotations

import csv
import hashlib
import json

import nbformat
import pytest

from tools.grading import grade as G, plan
from tools.grading.assignment import fill_solution
from tools.course.lectures import LECTURES, SOLUTIONS, make_lecture
from tools.course.nbcells import course_meta, exercise_cells
from utils.checks import exercises

NB0, NB1 = "00_welcome", "01_change_of_variables"
# generous for cells (the machine may be loaded), short for checks: the infinite loop is in a check
LIMITS = G.Limits(cell_timeout=120, check_timeout=4, notebook_timeout=300, interrupt_grace=2,
                  max_output_bytes=500_000)


# ----------------------------------------------------------------------------- fixture builders

def lecture(stem):
    return nbformat.read(LECTURES / f"{stem}.ipynb", as_version=4)


def cell_of(nb, id, role):
    return nb.cells[exercise_cells(nb)[id][role][0]]


def solved(stem, ids=None):
    """The lecture with the official solutions typed into the answer cells (``ids``: all when None)."""
    nb, sol = lecture(stem), nbformat.read(SOLUTIONS / f"{stem}.ipynb", as_version=4)
    for id in exercise_cells(nb):
        if ids is None or id in ids:
            cell_of(nb, id, "answer").source = fill_solution(cell_of(sol, id, "answer").source)
    return nb


def answer(nb, id, source):
    cell_of(nb, id, "answer").source = source
    return nb


def insert_code(nb, at, source):
    nb.cells.insert(at, nbformat.v4.new_code_cell(source))
    return nb


def save(nb, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


PF_ALT = """import torch

def pushforward_log_prob(x, base_log_prob, f_inv, f_inv_deriv):
    # written differently from the reference: the product inside the log
    return base_log_prob(f_inv(x)) + torch.log(f_inv_deriv(x).abs().prod(dim=1))
"""
RAISES = """def log_abs_det_jacobian(f, x):
    raise RuntimeError("my bug")
"""
LOOP = """def log_abs_det_jacobian(f, x):
    while True:
        pass
"""
CRASH = """import os

def pushforward_log_prob(x, base_log_prob, f_inv, f_inv_deriv):
    os._exit(3)
"""
STUCK = """import signal

def log_abs_det_jacobian(f, x):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # deaf to interrupts, as a bare except in a loop can be
    while True:
        pass
"""
FLOOD = """def pushforward_log_prob(x, base_log_prob, f_inv, f_inv_deriv):
    for i in range(20_000):
        print("debug", i)
    return base_log_prob(f_inv(x)) + torch.log(my_abs(f_inv_deriv(x))).sum(-1)
"""
# the student's own cell, without metadata, that the answer above needs: fast grading runs it
FLOOD_HELPER = """for i in range(60_000):
    print('spam spam spam', i)

def my_abs(v):
    return torch.abs(v)
"""
# tampering: patch the grader's run_check, replace a registered check, patch torch.allclose
PATCH_RUN_CHECK = """import utils.checks as uc
from utils.checks.core import Result
uc.run_check = lambda id, answer: Result(id, "", "passed", points=1.0)

def pushforward_log_prob(x, base_log_prob, f_inv, f_inv_deriv):
    return x.sum(-1)
"""
PATCH_REGISTRY = """import dataclasses
from utils.checks import REGISTRY
REGISTRY["1.2"] = dataclasses.replace(REGISTRY["1.2"], check=lambda answer: None)

def log_abs_det_jacobian(f, x):
    return x.sum(-1) * 0
"""
PATCH_TORCH = """torch.allclose = lambda *args, **kwargs: True

def affine_log_prob(x, A, b):
    return x.sum(-1)
"""


def make_submissions(root):
    subs = root / "submissions"
    # honest, full marks: one folder, both notebooks
    save(solved(NB0), subs / "alice" / f"{NB0}.ipynb")
    save(solved(NB1), subs / "alice" / f"{NB1}.ipynb")
    # honest, partial: a right answer written differently, an answer that raises when
    # called, and an answer cell with a syntax error (0.1, not submitted: not attempted)
    nb = answer(lecture(NB1), "1.1", PF_ALT)
    answer(nb, "1.2", RAISES)
    answer(nb, "1.3", "def affine_log_prob(x, A, b)\n    return x")
    save(nb, subs / "bob" / "my_copy_of_01.ipynb")
    # malformed JSON
    subs.mkdir(exist_ok=True)
    (subs / "carol.ipynb").write_text(nbformat.writes(solved(NB1))[:500])
    # a notebook from another course
    other = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Week 3: sorting"),
                                            nbformat.v4.new_code_cell("print(sorted([3, 1, 2]))")])
    save(other, subs / "dave.ipynb")
    # missing and reordered cells: check cells deleted or edited, 1.2's answer deleted,
    # 1.3's answer moved up, 1.1's answer cell re-created without metadata
    nb = solved(NB1)
    cells = exercise_cells(nb)
    cell_of(nb, "1.1", "check").source = "pushforward_log_prob = lambda *args: 'I passed!'"
    drop = {cells["1.2"]["check"][0], cells["1.3"]["check"][0], cells["1.2"]["answer"][0]}
    a13 = cells["1.3"]["answer"][0]
    cell_of(nb, "1.1", "answer").metadata = {}
    kept = [c for i, c in enumerate(nb.cells) if i not in drop and i != a13]
    kept.insert(2, nb.cells[a13])  # right after the imports
    nb.cells = kept
    save(nb, subs / "erin.ipynb")
    # a kernel crash while checking 1.1, a loop that ignores interrupts in 1.2's check, 1.3 right
    save(answer(answer(solved(NB1), "1.1", CRASH), "1.2", STUCK), subs / "gina.ipynb")
    # output floods (a cell printing megabytes, an answer printing during its check) and
    # an infinite loop in 1.2's check; 1.3 right
    nb = answer(solved(NB1), "1.1", FLOOD)
    answer(nb, "1.2", LOOP)
    insert_code(nb, 2, FLOOD_HELPER)
    save(nb, subs / "hank.ipynb")
    # two copies of one notebook: the course-named one is graded, the other ignored (and said so)
    save(answer(lecture(NB1), "1.1", RAISES), subs / "ivan" / f"{NB1} (1).ipynb")
    save(solved(NB1), subs / "ivan" / f"{NB1}.ipynb")
    # tampering, each with wrong answers the patch would let through
    save(answer(solved(NB1), "1.1", PATCH_RUN_CHECK), subs / "mallory.ipynb")
    save(answer(solved(NB1), "1.2", PATCH_REGISTRY), subs / "oscar.ipynb")
    save(answer(solved(NB1), "1.3", PATCH_TORCH), subs / "trudy.ipynb")
    return subs


def digest(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grade")
    subs = make_submissions(root)
    before = digest(subs)
    grades = G.grade(subs, root / "out", limits=LIMITS, jobs=2, log=lambda *a: None)
    return root, {g.student: g for g in grades}, before, subs


def status(g, id):
    return g.results[id].status


# ----------------------------------------------------------------------------- tests

def test_the_metadata_the_grader_relies_on_is_written_by_make_lectures():
    """Every registered exercise has, in lectures/, one answer code cell marked by metadata that
    defines the answer's name, and make_lecture copies the course metadata of every cell."""
    for ex in exercises():
        for folder in (SOLUTIONS, LECTURES):
            if not (folder / f"{ex.notebook}.ipynb").exists():
                continue  # a notebook being written: tests/test_exercise_registry.py requires it
            nb = nbformat.read(folder / f"{ex.notebook}.ipynb", as_version=4)
            roles = exercise_cells(nb).get(ex.id, {})
            assert len(roles.get("answer", [])) == 1, (folder.name, ex.id)
            cell = nb.cells[roles["answer"][0]]
            assert cell.cell_type == "code" and plan._defines(cell.source, ex.answer), (folder.name, ex.id)
            assert len(roles.get("check", [])) == 1, (folder.name, ex.id)
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        sol = nbformat.read(path, as_version=4)
        lec = make_lecture(sol, path.name)
        assert [course_meta(c) for c in lec.cells] == [course_meta(c) for c in sol.cells]


def test_full_marks(graded):
    _, g, _, _ = graded
    assert {k: r.status for k, r in g["alice"].results.items()} == dict.fromkeys(["0.1", "1.1", "1.2", "1.3"], "passed")
    assert g["alice"].total() == 4
    assert g["alice"].mode == "fast" and "code cells skipped" in " ".join(g["alice"].notes)
    honest = [s for s in g if s not in ("mallory", "oscar", "trudy")]
    assert {s: g[s].flag for s in honest} == dict.fromkeys(honest, ""), "an honest student was flagged"


def test_tampering_is_detected_and_scores_zero_for_the_exercises_it_touched(graded):
    _, g, _, _ = graded
    mallory, oscar, trudy = g["mallory"], g["oscar"], g["trudy"]
    # run_check replaced in 1.1's answer cell: every check after that is void
    assert mallory.flag == "tampered" and mallory.total() == 0
    assert "utils.checks" in mallory.results["1.1"].message and "0 points" in mallory.results["1.1"].message
    # the registered check of 1.2 replaced: 1.1, checked before, keeps its point
    assert oscar.flag == "tampered" and oscar.results["1.1"].points == 1 and oscar.total() == 1
    assert "utils.checks.REGISTRY" in oscar.results["1.2"].message
    # torch.allclose patched in 1.3's answer cell
    assert trudy.flag == "tampered" and trudy.total() == 2 and "torch" in trudy.results["1.3"].message
    for s in (mallory, oscar, trudy):
        assert s.notes[0].startswith("TAMPERING DETECTED")


def test_several_copies_of_a_notebook_grade_the_course_named_one(graded):
    _, g, _, _ = graded
    ivan = g["ivan"]
    assert ivan.total() == 3 and ivan.flag == ""
    assert f"graded {NB1}.ipynb" in " ".join(ivan.notes) and f"ignored {NB1} (1).ipynb" in " ".join(ivan.notes)


def test_partial_and_exercises_that_raise(graded):
    _, g, _, _ = graded
    bob = g["bob"]
    assert status(bob, "0.1") == "not attempted"
    assert status(bob, "1.1") == "passed"  # identified by metadata although the file was renamed
    assert status(bob, "1.2") == "failed" and "RuntimeError" in bob.results["1.2"].message
    assert "my bug" in bob.results["1.2"].message
    assert status(bob, "1.3") == "failed" and "SyntaxError" in bob.results["1.3"].message
    assert bob.total() == 1


def test_malformed_json_and_other_course_get_a_clear_row(graded):
    _, g, _, _ = graded
    assert g["carol"].total() == 0 and "not valid notebook JSON" in " ".join(g["carol"].notes)
    assert "line" in " ".join(g["carol"].notes) and "at at" not in " ".join(g["carol"].notes)
    assert all(r.status == "not attempted" for r in g["carol"].results.values())
    assert g["dave"].total() == 0 and "not a notebook of this course" in " ".join(g["dave"].notes)


def test_official_checks_and_answer_cells_found_when_cells_are_missing_or_moved(graded):
    _, g, _, _ = graded
    erin = g["erin"]
    assert status(erin, "1.1") == "passed"  # found by name: its metadata was lost
    assert "lost its metadata" in " ".join(erin.notes)
    assert status(erin, "1.2") == "not attempted" and "No answer cell" in erin.results["1.2"].message
    assert status(erin, "1.3") == "passed"


def test_infinite_loop_is_stopped_and_the_rest_graded(graded):
    _, g, _, _ = graded
    hank = g["hank"]
    assert status(hank, "1.2") == "failed" and "did not finish" in hank.results["1.2"].message
    assert status(hank, "1.3") == "passed"


def test_kernel_crash_and_a_loop_deaf_to_interrupts_are_survived(graded):
    """Both need a kernel restart; the notebook is rerun without the offending check."""
    _, g, _, _ = graded
    gina = g["gina"]
    assert status(gina, "1.1") == "failed" and "crashed" in gina.results["1.1"].message
    assert status(gina, "1.2") == "failed" and "did not finish" in gina.results["1.2"].message
    assert status(gina, "1.3") == "passed"


def test_output_flood_is_truncated_and_graded(graded):
    _, g, _, _ = graded
    hank = g["hank"]
    assert status(hank, "1.1") == "passed"
    assert "Cell 3 printed more than 500000 bytes" in " ".join(hank.notes)


def test_gradebook_and_feedback_files(graded):
    root, g, before, subs = graded
    out = root / "out"
    rows = list(csv.DictReader(open(out / "grades.csv")))
    assert [r["student"] for r in rows] == sorted(g)
    assert list(rows[0]) == ["student", "0.1", "1.1", "1.2", "1.3", "total", "max", "flag", "notes"]
    by = {r["student"]: r for r in rows}
    assert by["alice"]["total"] == "4" and by["alice"]["max"] == "4"
    assert (by["bob"]["1.1"], by["bob"]["1.2"], by["bob"]["total"]) == ("1", "0", "1")
    assert "JSON" in by["carol"]["notes"] and "course" in by["dave"]["notes"]
    # the notes column always carries the reason, not only the feedback file
    assert "Exercise 1.1: the student's code crashed the kernel during the check" in by["gina"]["notes"]
    assert "Exercise 1.2: the check did not finish" in by["gina"]["notes"]
    assert "Exercise 1.2: the check did not finish" in by["hank"]["notes"]
    assert f"ignored {NB1} (1).ipynb" in by["ivan"]["notes"]
    assert (by["mallory"]["flag"], by["oscar"]["flag"], by["alice"]["flag"]) == ("tampered", "tampered", "")
    assert "TAMPERING DETECTED" in by["mallory"]["notes"] and "Tampering detected" in (out / "feedback" / "mallory.md").read_text()
    for student in g:
        text = (out / "feedback" / f"{student}.md").read_text()
        assert f"Feedback: {student}" in text and "Exercise 1.1" in text
    assert "my bug" in (out / "feedback" / "bob.md").read_text()
    data = json.loads((out / "grades.json").read_text())
    assert data["max"] == 4 and len(data["students"]) == len(g)
    assert digest(subs) == before, "grading modified a submission"


def test_cli(tmp_path):
    """The command line (`python -m tools.grading.grade SUBMISSIONS OUT`) writes the gradebook; bad arguments exit 2."""
    subs = tmp_path / "subs"
    save(nbformat.v4.new_notebook(), subs / "yan.ipynb")
    (subs / "zoe").mkdir()
    assert G.main([str(subs), str(tmp_path / "out"), "--exercises", "1.1 1.3", "--jobs", "1"]) == 0  # `python -m`
    rows = {row["student"]: row for row in csv.DictReader(open(tmp_path / "out" / "grades.csv"))}
    assert list(rows["zoe"]) == ["student", "1.1", "1.3", "total", "max", "flag", "notes"]
    assert rows["zoe"]["total"] == rows["yan"]["total"] == "0" and rows["zoe"]["max"] == "2"
    assert "No notebook" in rows["zoe"]["notes"] and "not a notebook of this course" in rows["yan"]["notes"]
    assert G.main([str(subs), str(tmp_path / "o2"), "--exercises", "9.9"]) == 2
    assert G.main([str(tmp_path / "nowhere"), str(tmp_path / "o3")]) == 2
