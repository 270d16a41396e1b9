"""lectures/ is exactly what `make lectures` generates from solutions/."""
from __future__ import annotations

import nbformat
import pytest

from tools.course.lectures import LECTURES, SOLUTIONS, MarkerError, expected_lectures, strip_solutions


def test_same_notebooks_in_both_folders():
    assert sorted(p.name for p in SOLUTIONS.glob("*.ipynb")) == sorted(p.name for p in LECTURES.glob("*.ipynb"))


@pytest.mark.parametrize("name", sorted(expected_lectures()))
def test_lecture_is_generated_from_solution(name):
    want = expected_lectures()[name]
    assert (LECTURES / name).read_text() == want, f"lectures/{name} is stale: run `make lectures`"


def test_names_follow_NN_topic():
    import re
    for p in SOLUTIONS.glob("*.ipynb"):
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", p.name), p.name


def test_strip_keeps_indentation_and_everything_else():
    src = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n# after"
    assert strip_solutions(src) == ("def f(x):\n    y = 1\n    # YOUR CODE HERE\n"
                                    "    raise NotImplementedError()\n# after")


@pytest.mark.parametrize("src", ["### BEGIN SOLUTION\nx", "x\n### END SOLUTION",
                                 "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"])
def test_bad_markers_are_errors(src):
    with pytest.raises(MarkerError):
        strip_solutions(src)


@pytest.mark.parametrize("name", sorted(expected_lectures()))
def test_solutions_are_executed_and_lectures_are_clean(name):
    sol = nbformat.read(SOLUTIONS / name, as_version=4)
    codes = [c for c in sol.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in codes]
    assert counts == list(range(1, len(codes) + 1)), f"solutions/{name} was not run top to bottom once"
    lec = nbformat.read(LECTURES / name, as_version=4)
    assert all(not c.outputs and c.execution_count is None for c in lec.cells if c.cell_type == "code")
    assert not any("### BEGIN SOLUTION" in c.source for c in lec.cells)
