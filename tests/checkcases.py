"""Shared test machinery for exercise checks.

Each ``tests/test_checks_nbXX.py`` defines
    CORRECT = {"1.1": [answer, ...]}           # at least 2 differently written correct answers
    WRONG = {"1.1": [(answer, "words the message must contain"), ...]}  # at least 6 plausible mistakes
and ends with
    test_accepts, test_rejects = checkcases.parametrize_cases(CORRECT, WRONG)
``tests/test_exercise_registry.py`` requires every registered exercise to have both. The words asserted
for a wrong answer should be those that name its mistake (or, where no message can name it, the
precise description of the failing test case), so that a message naming another mistake fails.
"""
from __future__ import annotations

import pytest

from utils.checks import run_check


def parametrize_cases(correct: dict, wrong: dict):
    acc = [(i, f) for i, fs in correct.items() for f in fs]
    rej = [(i, f, m) for i, cases in wrong.items() for f, m in cases]

    @pytest.mark.parametrize("id,answer", acc, ids=[f"{i}-{getattr(f, '__name__', k)}" for k, (i, f) in enumerate(acc)])
    def test_accepts(id, answer):
        res = run_check(id, answer)
        assert res.passed, res.message

    @pytest.mark.parametrize("id,answer,words", rej, ids=[f"{i}-{getattr(f, '__name__', k)}" for k, (i, f, _) in enumerate(rej)])
    def test_rejects(id, answer, words):
        res = run_check(id, answer)
        assert res.status == "failed", f"a wrong answer to {id} was {res.status}"
        assert words.lower() in res.message.lower(), f"message lacks {words!r}: {res.message}"
        assert "Traceback" not in res.message and 'File "' not in res.message

    return test_accepts, test_rejects
