"""The check machinery: three outcomes, messages without tracebacks, the reference as fallback."""
from __future__ import annotations

import torch

from utils import changevars as cv
from utils.checks import check, expect_close, run_check
from utils.checks.core import CheckFailure, call, expect_tensor


def test_passed_keeps_the_answer(capsys):
    assert check("1.3", cv.affine_log_prob) is cv.affine_log_prob
    assert "✅ Exercise 1.3" in capsys.readouterr().out


def test_not_attempted_falls_back_to_reference_and_says_so(capsys):
    def unsolved(x, A, b):
        raise NotImplementedError()
    assert check("1.3", unsolved) is cv.affine_log_prob
    out = capsys.readouterr().out
    assert "not attempted" in out and "reference" in out and "Traceback" not in out


def test_failure_falls_back_and_tells_what_is_wrong(capsys):
    def wrong(x, A, b):
        return torch.zeros(x.shape[0], dtype=x.dtype)
    assert check("1.3", wrong) is cv.affine_log_prob
    out = capsys.readouterr().out
    assert "❌" in out and "should be" in out and "Fix yours" in out


def test_student_exception_names_the_line_not_utils():
    def broken(x, A, b):
        return x.no_such_method()
    res = run_check("1.3", broken)
    assert res.status == "failed"
    assert "AttributeError" in res.message and "x.no_such_method()" in res.message
    assert "utils/" not in res.message and "Traceback" not in res.message


def test_unknown_exercise_and_non_callable(capsys):
    assert check("9.99", 3) == 3
    assert "no exercise '9.99'" in capsys.readouterr().out
    res = run_check("1.3", 42)
    assert res.status == "failed" and "function" in res.message


def test_none_and_ellipsis_are_not_attempted():
    assert run_check("1.1", None).status == "not attempted"
    assert run_check("1.1", ...).status == "not attempted"


def test_expect_helpers_messages():
    import pytest
    with pytest.raises(CheckFailure, match="Wrong type"):
        expect_tensor([1, 2], (2,))
    with pytest.raises(CheckFailure, match="Wrong shape.*forget to sum"):
        expect_tensor(torch.zeros(3, 2), (3,))
    with pytest.raises(CheckFailure, match="Wrong dtype"):
        expect_tensor(torch.zeros(3, dtype=torch.int64), (3,), dtype=torch.float32)
    with pytest.raises(CheckFailure, match="1 NaN"):
        expect_tensor(torch.tensor([0.0, float("nan")]), (2,))
    with pytest.raises(CheckFailure, match="Wrong sign"):
        expect_close(-torch.ones(3), torch.ones(3))
    with pytest.raises(CheckFailure, match="named mistake"):
        expect_close(torch.zeros(3), torch.ones(3), mistakes=[(torch.zeros(3), "named mistake")])
    with pytest.raises(CheckFailure, match=r"at x = \[2, 3\].*should be 5.*got 0"):
        expect_close(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 5.0]),
                     inputs=torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
    expect_close(torch.ones(3), torch.ones(3) + 1e-7)  # passes silently
    with pytest.raises(CheckFailure, match="raised ZeroDivisionError"):
        call(lambda: 1 / 0)
