"""`make assignment`: only the chosen exercises are open, the others filled in, lecture rules otherwise."""
from __future__ import annotations

import json
import nbformat
import pytest

from tools.grading import assignment
from tools.grading import grade as G
from tools.grading.assignment import GIVEN_NOTE, fill_solution, make_assignment, write_assignment
from tools.course.lectures import LECTURES, SOLUTIONS, MarkerError, make_lecture
from tools.course.nbcells import course_meta, exercise_cells

NB1 = "01_change_of_variables"


def read(folder, stem=NB1):
    return nbformat.read(folder / f"{stem}.ipynb", as_version=4)


def test_every_exercise_open_is_the_lecture():
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        sol = nbformat.read(path, as_version=4)
        ids = list(exercise_cells(sol))
        got, want = make_assignment(sol, ids, path.name), make_lecture(sol, path.name)
        assert got.cells == want.cells, path.name
        assert got.metadata["course"] == {"assignment": {"exercises": ids}}


def test_only_the_chosen_exercises_are_open(tmp_path):
    manifest = write_assignment("1.3 1.1", tmp_path)
    assert manifest["exercises"] == ["1.1", "1.3"] and manifest["notebooks"] == [f"{NB1}.ipynb"]
    assert json.loads((tmp_path / "assignment.json").read_text()) == manifest
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [f"{NB1}.ipynb"]
    got, lec, sol = read(tmp_path), read(LECTURES), read(SOLUTIONS)
    assert got.metadata["course"]["assignment"]["exercises"] == ["1.1", "1.3"]
    assert len(got.cells) == len(lec.cells)
    given = exercise_cells(got)["1.2"]
    for i, (g, l, s) in enumerate(zip(got.cells, lec.cells, sol.cells)):
        assert course_meta(g) == course_meta(l)
        if i == given["answer"][0]:
            assert g.source == fill_solution(s.source) and "NotImplementedError" not in g.source
            assert "### BEGIN SOLUTION" not in g.source and "torch.linalg.slogdet" in g.source
        elif i == given["exercise"][0]:
            assert g.source == l.source + GIVEN_NOTE
        else:
            assert g.source == l.source, i
        if g.cell_type == "code":
            assert g.outputs == [] and g.execution_count is None


def test_unknown_exercise_and_bad_markers(tmp_path, capsys):
    with pytest.raises(ValueError, match="Unknown exercise"):
        write_assignment("1.1 7.77", tmp_path)
    with pytest.raises(ValueError, match="at least one"):
        write_assignment("", tmp_path)
    with pytest.raises(MarkerError):
        fill_solution("### BEGIN SOLUTION\nx = 1")
    assert assignment.main(["7.77", "--out", str(tmp_path)]) == 2
    assert "Unknown exercise" in capsys.readouterr().err


def test_assignment_runs_and_is_graded_on_its_open_exercises(tmp_path):
    """The assignment runs top to bottom in a kernel; the grader grades its open exercises only."""
    write_assignment("1.2 1.3", tmp_path / "handout")
    nb = read(tmp_path / "handout")
    sol = read(SOLUTIONS)
    a13 = exercise_cells(nb)["1.3"]["answer"][0]
    nb.cells[a13].source = fill_solution(sol.cells[a13].source)  # the student solves 1.3 only
    nbformat.write(nb, tmp_path / "zoe.ipynb")
    g = G.grade_student("zoe", [tmp_path / "zoe.ipynb"], None, G.Limits(cell_timeout=120, check_timeout=60))
    assert {k: r.status for k, r in g.results.items()} == {"1.2": "not attempted", "1.3": "passed"}
    assert not [n for n in g.notes if "ran in" not in n], g.notes
