"""`make nbgrader`: an nbgrader course whose autograde scores equal our autograder's.

nbgrader is pinned in requirements.in (it fits the other pins unchanged), so
this test runs nbgrader's own `generate_assignment` and `autograde` on the
export, on fixture submissions made from nbgrader's released notebook, and
compares the scores with `tools.grading.grade` on the very same files.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.test_grade import PF_ALT, RAISES
from tools.grading import grade as G
from tools.course.lectures import LECTURES, SOLUTIONS
from tools.course.nbcells import exercise_cells
from tools.grading.nbgrader_export import autograded_check_source, main, write_course
from utils.checks import exercises, load_all

nbgrader = pytest.importorskip("nbgrader", reason="nbgrader is pinned in requirements.in: run `make setup`")
from nbgrader.api import Gradebook  # noqa: E402
from nbgrader.nbgraderformat import MetadataValidator  # noqa: E402

NB1 = "01_change_of_variables"


def nbg(course: Path, *args, wait=True):
    """Run the nbgrader command line of this environment in the course folder."""
    env = dict(os.environ, COURSE_QUIET="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "nbgrader", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=course, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    r = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_export_has_nbgrader_metadata_for_every_exercise(tmp_path):
    written = write_course(tmp_path)
    assert (tmp_path / "nbgrader_config.py").exists()
    registry = load_all()
    by_nb = {}
    for e in exercises():
        by_nb.setdefault(e.notebook, []).append(e)
    for stem, exs in by_nb.items():
        if not (SOLUTIONS / f"{stem}.ipynb").exists():
            continue  # a notebook being written
        assert written[stem] == [f"{stem}.ipynb"]
        nb = nbformat.read(tmp_path / "source" / stem / f"{stem}.ipynb", as_version=4)
        MetadataValidator().validate_nb(nb)  # nbgrader's own validation
        cells = exercise_cells(nb)
        for e in exs:
            a = nb.cells[cells[e.id]["answer"][0]]
            c = nb.cells[cells[e.id]["check"][0]]
            assert a.metadata["nbgrader"]["solution"] and not a.metadata["nbgrader"]["grade"]
            assert "### BEGIN SOLUTION" in a.source and "### END SOLUTION" in a.source
            assert c.metadata["nbgrader"]["grade"] and c.metadata["nbgrader"]["locked"]
            assert c.metadata["nbgrader"]["points"] == registry[e.id].points
            assert c.source == autograded_check_source(registry[e.id])
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_subset_export_fills_in_the_other_exercises(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--exercises", "1.2", "--name", "hw1"]) == 0
    nb = nbformat.read(tmp_path / "source" / "hw1" / f"{NB1}.ipynb", as_version=4)
    cells = exercise_cells(nb)
    graded = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert graded == ["check_1_2"]
    given = nb.cells[cells["1.1"]["answer"][0]]
    assert "nbgrader" not in given.metadata and "NotImplementedError" not in given.source
    assert main(["--out", str(tmp_path), "--exercises", "4.04"]) == 2


def _release_submissions(course: Path, assignment: str) -> dict[str, Path]:
    """From nbgrader's released notebook, a partial submission in submitted/ (one is enough: it has a
    passed, a failed and a not-attempted exercise, and an edited test cell; full marks are tested in test_grade)."""
    release = nbformat.read(course / "release" / assignment / f"{NB1}.ipynb", as_version=4)
    lec = nbformat.read(LECTURES / f"{NB1}.ipynb", as_version=4)
    cells = exercise_cells(release)
    for id, roles in cells.items():  # nbgrader's student cell is the lecture's
        assert release.cells[roles["answer"][0]].source == lec.cells[exercise_cells(lec)[id]["answer"][0]].source
    partial = nbformat.from_dict(release)
    partial.cells[cells["1.1"]["answer"][0]].source = PF_ALT
    partial.cells[cells["1.2"]["answer"][0]].source = RAISES
    partial.cells[cells["1.2"]["check"][0]].source = "pass  # the student 'fixed' the test"  # both graders ignore this
    paths = {}
    for student, nb in [("bob", partial)]:
        paths[student] = course / "submitted" / student / assignment / f"{NB1}.ipynb"
        paths[student].parent.mkdir(parents=True)
        nbformat.write(nb, paths[student])
    return paths


def test_nbgrader_autograde_agrees_with_our_autograder(tmp_path):
    course, assignment = tmp_path / "course", "hw"
    write_course(course, "1.1 1.2 1.3", assignment)
    nbg(course, "generate_assignment", assignment, "--force")
    _release_submissions(course, assignment)
    running = nbg(course, "autograde", assignment, "--force", wait=False)  # nbgrader and ours side by side
    ours = {g.student: g for g in G.grade(course / "submitted", tmp_path / "ours", jobs=1, log=lambda *a: None,
                                          limits=G.Limits(cell_timeout=120, check_timeout=60))}
    out, _ = running.communicate(timeout=600)
    assert running.returncode == 0, out
    theirs = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in ("bob",):
            for id in ("1.1", "1.2", "1.3"):
                grade = gb.find_grade(f"check_{id.replace('.', '_')}", NB1, assignment, student)
                theirs[student, id] = grade.score
    mine = {("bob", id): ours["bob"].results[id].points for id in ("1.1", "1.2", "1.3")}
    assert mine == theirs
    assert [ours["bob"].results[i].status for i in ("1.1", "1.2", "1.3")] == ["passed", "failed", "not attempted"]
    assert [mine["bob", i] for i in ("1.1", "1.2", "1.3")] == [1, 0, 0]
