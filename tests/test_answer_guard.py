"""An answer cell with a syntax error (walk-through 3, m1): the lecture still runs to the end under
Run All, the answer cell says it did not run, and the check cell gives the course's one-line message
instead of a raw NameError. utils.runtime installs the guard in every kernel that imports utils."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from utils.runtime import ANSWER_DID_NOT_RUN, AnswerDidNotRun, _guard_answer_cell

ROOT = Path(__file__).resolve().parents[1]
LECTURE = ROOT / "lectures" / "01_change_of_variables.ipynb"


def _cell(nb, exercise, role):
    return next(c for c in nb.cells if c.get("metadata", {}).get("course", {}).get("exercise") == exercise
                and c["metadata"]["course"].get("role") == role)


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    nb = nbformat.read(LECTURE, as_version=4)
    answer = _cell(nb, "1.1", "answer")
    assert "raise NotImplementedError()" in answer.source
    answer.source = answer.source.replace("raise NotImplementedError()", "return torch.exp((x")  # unclosed (
    env = dict(os.environ, COURSE_QUIET="1")
    env.pop("COURSE_CHECK_FIGURES", None)
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        # allow_errors=False is Run All: the first error stops the run (CellExecutionError)
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(LECTURE.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def _text(cell):
    return "".join(o.get("text", "") or "".join(o.get("data", {}).get("text/plain", ""))
                   for o in cell.get("outputs", []))


def test_run_all_goes_on_past_an_answer_with_a_syntax_error(broken_run):
    nb = broken_run
    errors = [(i, o.get("ename")) for i, c in enumerate(nb.cells) for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a cell below the broken answer did not run"
    said = _text(_cell(nb, "1.1", "answer"))
    assert "This answer cell did not run: SyntaxError at line" in said and "was never closed" in said


def test_the_check_cell_gives_the_one_line_message(broken_run):
    said = _text(_cell(broken_run, "1.1", "check"))
    assert ANSWER_DID_NOT_RUN[1:] in said, said
    assert "NameError" not in said and "Traceback" not in said
    line = next(l for l in said.splitlines() if ANSWER_DID_NOT_RUN[1:] in l)
    assert "SyntaxError at line" in line  # one line: what, where, and what happens next


def test_the_guard_leaves_other_cells_alone():
    ok = ["def pushforward_log_prob(x):\n", "    return x\n"]
    assert _guard_answer_cell(ok) is ok
    not_an_answer = ["def helper(:\n"]
    assert _guard_answer_cell(not_an_answer) is not_an_answer  # a plain cell keeps its SyntaxError
    broken = _guard_answer_cell(["def pushforward_log_prob(x):\n", "    return (x\n"])
    assert len(broken) == 1 and "answer_did_not_run(['pushforward_log_prob']" in broken[0]
    compile(broken[0], "<cell>", "exec")


def test_check_reports_an_answer_that_did_not_run():
    from utils.checks import check, run_check

    res = run_check("1.1", AnswerDidNotRun("pushforward_log_prob", "SyntaxError at line 3: '(' was never closed"))
    assert res.status == "failed" and ANSWER_DID_NOT_RUN[1:] in res.message and "\n" not in res.message
    ref = check("1.1", AnswerDidNotRun("pushforward_log_prob", "SyntaxError at line 3: oops"), quiet=True)
    assert callable(ref) and not isinstance(ref, AnswerDidNotRun)
