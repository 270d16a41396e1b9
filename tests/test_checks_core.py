"""The check machinery: three outcomes, messages without tracebacks, the reference as fallback."""
from __future__ import annotations

import torch

from utils import changevars as cv
from utils.checks import check, expect_close, run_check
from utils.checks.core import CheckFailure
from utils.checks.expect import call, expect_tensor


def test_passed_keeps_the_answer(capsys):
    assert check("1.3", cv.affine_log_prob) is cv.affine_log_prob
    assert "✔ Exercise 1.3" in capsys.readouterr().out


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
    assert "✘" in out and "should be" in out and "Fix yours" in out


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
    with pytest.raises(CheckFailure, match=r"at row 1 \(x = \[2, 3\]\).*should be 5, got 0"):
        expect_close(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 5.0]),
                     inputs=torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
    expect_close(torch.ones(3), torch.ones(3) + 1e-7)  # passes silently
    with pytest.raises(CheckFailure, match="raised ZeroDivisionError"):
        call(lambda: 1 / 0)


def test_messages_show_the_difference_at_the_tolerance():
    """Issue 15: "should be 0.4632, got 0.4632" against a 1e-9 tolerance; names are not capitalised."""
    import pytest
    from utils.checks.expect import fmt_pair
    a, b = torch.tensor([0.46321, 1.0], dtype=torch.float64), torch.tensor([0.46321 + 3e-9, 1.0], dtype=torch.float64)
    with pytest.raises(CheckFailure) as e:
        expect_close(b, a, "log|det J| for the swap", atol=1e-9, rtol=0.0)
    msg = str(e.value)
    want, got = fmt_pair(a[0], b[0])
    assert want != got and f"should be {want}, got {got}" in msg
    assert "tolerance 1e-09" in msg and "row 0" in msg and "1 of 2 entries" in msg
    with pytest.raises(CheckFailure) as e:
        expect_tensor(torch.tensor([float("nan")]), (1,), "log|det J| of f")
    assert str(e.value).startswith("Log|det J| of f contains 1 NaN")
    assert fmt_pair(1.0, 1.0 + 1e-12) == ("1", "1.000000000001")


def test_expect_cases_names_a_mistake_only_when_it_fits_every_case():
    import pytest
    from utils.checks.expect import expect_cases
    want = [torch.ones(3), torch.full((3,), 2.0)]
    wrong_on_first_only = [torch.zeros(3), torch.full((3,), 5.0)]
    got = [torch.zeros(3), torch.full((3,), 7.0)]  # equals the mistake on case 1, not on case 2
    with pytest.raises(CheckFailure) as e:
        expect_cases(got, want, ["case one", "case two"], atol=1e-6, mistakes=[(wrong_on_first_only, "NAMED")])
    assert "NAMED" not in str(e.value) and "case one" in str(e.value)
    got = [torch.zeros(3), torch.full((3,), 5.0)]
    with pytest.raises(CheckFailure, match="NAMED"):
        expect_cases(got, want, ["case one", "case two"], atol=1e-6, mistakes=[(wrong_on_first_only, "NAMED")])
    with pytest.raises(CheckFailure, match="NAMED"):  # None: that case cannot tell
        expect_cases(got, want, ["one", "two"], atol=1e-6, mistakes=[([torch.zeros(3), None], "NAMED")])
    expect_cases([w + 1e-9 for w in want], want, ["one", "two"], atol=1e-6)  # passes


def test_call_explain_names_a_mistake_behind_an_exception():
    import pytest

    def broken(x):
        return x + torch.ones(5)
    with pytest.raises(CheckFailure, match="the named cause"):
        call(broken, torch.ones(3), explain=lambda e: "the named cause" if isinstance(e, RuntimeError) else None)
    with pytest.raises(CheckFailure, match="raised RuntimeError"):
        call(broken, torch.ones(3), explain=lambda e: None)


def test_a_nan_is_matched_to_the_mistake_that_makes_it():
    import pytest
    wrong = torch.tensor([1.0, float("nan")])
    with pytest.raises(CheckFailure, match="no absolute value"):
        expect_close(torch.tensor([1.0, float("nan")]), torch.tensor([1.0, 2.0]),
                     mistakes=[(wrong, "no absolute value")])
    with pytest.raises(CheckFailure, match="1 NaN"):  # NaN elsewhere: not that mistake
        expect_close(torch.tensor([float("nan"), 2.0]), torch.tensor([1.0, 2.0]),
                     mistakes=[(wrong, "no absolute value")])


def test_every_check_function_is_named_after_its_exercise():
    """Issue 25 item 4: the check of exercise N.M is ``check_N_M``, in the module of notebook N."""
    from utils.checks import exercises

    for ex in exercises():
        major = ex.id.split(".")[0]
        assert ex.check.__name__ == "check_" + ex.id.replace(".", "_"), \
            f"exercise {ex.id} is checked by {ex.check.__name__}"
        assert ex.check.__module__ == f"utils.checks.nb{int(major):02d}", \
            f"exercise {ex.id} is checked in {ex.check.__module__}"


def test_feedback_is_deterministic_and_leaves_the_global_rng_alone():
    """Issue 20 item 7: the same answer gets the same message every run, whatever the global RNG state was."""
    import random

    import numpy as np

    def noisy(x, A, b):  # a wrong answer whose values depend on the global generator
        return cv.affine_log_prob(x, A, b) + 0.1 * torch.randn(x.shape[0], dtype=x.dtype)

    messages = set()
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        messages.add(run_check("1.3", noisy).message)
    assert len(messages) == 1, messages
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    want = (torch.rand(3), np.random.rand(), random.random())
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    run_check("1.3", noisy)
    run_check("2.1", __import__("utils.flows", fromlist=["AffineCoupling"]).AffineCoupling)
    got = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(got[0], want[0]) and got[1:] == want[1:]


def test_status_marks_need_no_emoji_font():
    """Walk-through 3, p5: ✅ ❌ ⏳ showed as empty boxes where no emoji font is installed. The marks of the three
    outcomes (and of the claims) must be glyphs of DejaVu Sans, the font matplotlib ships and most desktops have."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    from utils.checks.core import FAILED, NOT_ATTEMPTED, PASSED, Result

    font = FT2Font(font_manager.findfont("DejaVu Sans", fallback_to_default=False))
    marks = {Result("1.3", "t", status).report()[0] for status in (PASSED, FAILED, NOT_ATTEMPTED)} | {"✔", "✘"}
    assert len(marks) == 3, marks  # three outcomes, three different marks; the claims use the same ✔ and ✘
    missing = [m for m in marks if font.get_char_index(ord(m)) == 0]
    assert not missing, f"marks without a DejaVu Sans glyph: {missing}"
    for emoji in "✅❌⏳":  # and the test can fail: the emoji marks have no glyph there
        assert font.get_char_index(ord(emoji)) == 0
