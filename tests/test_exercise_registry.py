"""Every exercise is registered once, tested with right and wrong answers, and sits in its notebook."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import nbformat
import pytest

from utils.checks import exercises, run_check

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = exercises()


def _cases():
    correct, wrong = {}, {}
    for path in sorted(Path(__file__).parent.glob("test_checks_nb*.py")):
        mod = importlib.import_module(f"tests.{path.stem}")
        for k, v in getattr(mod, "CORRECT", {}).items():
            correct.setdefault(k, []).extend(v)
        for k, v in getattr(mod, "WRONG", {}).items():
            wrong.setdefault(k, []).extend(v)
    return correct, wrong


@pytest.mark.parametrize("ex", EXERCISES, ids=[e.id for e in EXERCISES])
def test_every_check_is_tested_with_two_right_and_six_wrong_answers(ex):
    """Issues 15, 20: >= 2 differently written correct answers, >= 6 wrong ones, each with its message asserted."""
    correct, wrong = _cases()
    assert len(correct.get(ex.id, [])) >= 2, f"exercise {ex.id} needs >= 2 correct answers in tests"
    assert len(set(map(id, correct[ex.id]))) == len(correct[ex.id]), f"exercise {ex.id}: a correct answer twice"
    cases = wrong.get(ex.id, [])
    assert len(cases) >= 6, f"exercise {ex.id} needs >= 6 wrong answers in tests, has {len(cases)}"
    assert len({id(f) for f, _ in cases}) == len(cases), f"exercise {ex.id}: a wrong answer listed twice"
    for f, words in cases:
        assert isinstance(words, str) and len(words.strip()) >= 3, \
            f"exercise {ex.id}: {getattr(f, '__name__', f)} needs a message fragment to assert"


@pytest.mark.parametrize("ex", EXERCISES, ids=[e.id for e in EXERCISES])
def test_reference_passes_and_metadata_complete(ex):
    assert ex.title and ex.answer.isidentifier() and ex.points > 0 and ex.minutes > 0 and ex.practises
    assert (ROOT / "solutions" / f"{ex.notebook}.ipynb").exists(), f"{ex.id}: no notebook {ex.notebook}"
    assert ex.id.split(".")[0] == str(int(ex.notebook[:2])), f"{ex.id} is numbered by another notebook"
    res = run_check(ex.id, ex.reference)
    assert res.passed, res.message


def test_not_attempted_is_reported_not_failed():
    for ex in EXERCISES:
        def unsolved(*args, **kwargs):
            raise NotImplementedError()
        assert run_check(ex.id, unsolved).status == "not attempted", ex.id


def _course(cell):
    return cell.get("metadata", {}).get("course", {})


@pytest.mark.parametrize("ex", EXERCISES, ids=[e.id for e in EXERCISES])
def test_exercise_cells_in_order(ex):
    """exercise markdown, hint, answer (with solution markers), then at once the check cell."""
    nb = nbformat.read(ROOT / "solutions" / f"{ex.notebook}.ipynb", as_version=4)
    roles = [(i, _course(c).get("role")) for i, c in enumerate(nb.cells) if _course(c).get("exercise") == ex.id]
    assert [r for _, r in roles] == ["exercise", "hint", "answer", "check"], roles
    idx = [i for i, _ in roles]
    assert idx == list(range(idx[0], idx[0] + 4)), "exercise cells must be consecutive"
    exercise_md, hint, answer, check_cell = (nb.cells[i] for i in idx)
    assert f"Exercise {ex.id}" in exercise_md.source
    assert "### BEGIN SOLUTION" in answer.source and "### END SOLUTION" in answer.source
    assert re.search(rf"\b{ex.answer}\b", answer.source), f"answer cell must define {ex.answer}"
    assert check_cell.source.strip() == f'{ex.answer} = check("{ex.id}", {ex.answer})'


def test_every_exercise_in_a_notebook_is_registered():
    ids = {e.id for e in EXERCISES}
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for c in nb.cells:
            for m in re.finditer(r'check\("([\d.]+)"', c.source if c.cell_type == "code" else ""):
                assert m.group(1) in ids, f"{path.name} checks unknown exercise {m.group(1)}"
