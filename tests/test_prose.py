"""Prose never outruns the numbers: no measured number typed into markdown, no hint that gives the answer.

1. A decimal number in a markdown cell of ``solutions/`` that also appears in
   the same notebook's text outputs is a measured number copied into prose
   (it goes stale the day the run changes). It is flagged unless it is an input
   (a hyperparameter, a constant) on the short allow-list below. Readings of
   results are printed by ``utils.claims.claim`` instead.
2. Hints come in two levels. The first level names the idea or the API; only
   the nested ``<details>`` may hold code. For every exercise the answer's
   normalised code lines must not all appear in the first-level hint.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "solutions").glob("*.ipynb"))

# Inputs that may be named in prose and also be printed: hyperparameters and constants, per notebook
# (file-name prefix). Keep this short; a measured number never belongs here.
ALLOWED_INPUTS: dict[str, set[str]] = {
    "00": set(),
    "01": set(),
    "02": set(),
    "03": set(),
    "04": set(),
    "05": set(),
    "06": set(),
    "07": set(),
}

DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")
# exercise ids ("Exercise 5.1", "exercises 1.1 to 1.3", check("5.1", ...)) are names, not numbers
EXERCISE_REF = re.compile(r"([Ee]xercises?\s+|check\(\"|\b(?:and|to|or),?\s+(?=\d\.\d+\b(?!\s*(?:s|%))))\d+\.\d+")


def _numbers(text: str) -> list[str]:
    return DECIMAL.findall(EXERCISE_REF.sub(" ", text))


def _text_outputs(nb) -> str:
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream":
                parts.append(o.get("text", ""))
            elif "data" in o and "text/plain" in o["data"]:
                parts.append(o["data"]["text/plain"])
    return "\n".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_measured_number_in_markdown(path):
    nb = nbformat.read(path, as_version=4)
    printed = set(_numbers(_text_outputs(nb)))
    allowed = ALLOWED_INPUTS.get(path.name[:2], set())
    hits = []
    for i, c in enumerate(nb.cells):
        if c.cell_type != "markdown":
            continue
        for num in _numbers(c.source):
            if num in printed and num not in allowed:
                hits.append(f"cell {i}: {num}")
    assert not hits, (f"{path.name}: measured numbers typed into markdown (print them, or check the reading "
                      f"with utils.claims.claim; an input goes on ALLOWED_INPUTS): {hits}")


def _course(cell):
    return cell.get("metadata", {}).get("course", {})


def first_level(hint: str) -> str:
    """The hint without its nested <details> blocks (the second level)."""
    body = re.sub(r"^\s*<details>\s*<summary>.*?</summary>", "", hint, count=1, flags=re.S)
    body = re.sub(r"</details>\s*$", "", body.strip())
    out, depth, i = [], 0, 0
    for tok in re.split(r"(<details>|</details>)", body):
        if tok == "<details>":
            depth += 1
        elif tok == "</details>":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(tok)
    return "".join(out)


def _normalise(line: str) -> str:
    """Whitespace removed, and a leading ``return`` (a hint that gives the expression gives the line)."""
    return re.sub(r"^return", "", re.sub(r"\s+", "", line))


def answer_lines(answer: str) -> list[str]:
    m = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", answer, flags=re.S)
    body = m.group(1) if m else ""
    return [_normalise(l) for l in body.splitlines() if l.strip() and not l.strip().startswith("#")]


def _exercises():
    out = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        cells = {}
        for c in nb.cells:
            meta = _course(c)
            if meta.get("exercise") and meta.get("role") in ("hint", "answer"):
                cells.setdefault(meta["exercise"], {})[meta["role"]] = c.source
        out += [(ex, d.get("hint", ""), d.get("answer", "")) for ex, d in sorted(cells.items())]
    return out


EXERCISE_HINTS = _exercises()


@pytest.mark.parametrize("ex,hint,answer", EXERCISE_HINTS, ids=[e[0] for e in EXERCISE_HINTS])
def test_first_level_hint_does_not_give_the_answer(ex, hint, answer):
    lines = answer_lines(answer)
    assert lines, f"exercise {ex}: no solution block"
    top = _normalise(first_level(hint))
    assert not all(l in top for l in lines), (
        f"exercise {ex}: the first-level hint contains the whole answer; move code into a nested "
        "<details><summary>…</summary> … </details> and let the first level name the idea or the API")


@pytest.mark.parametrize("ex,hint,answer", EXERCISE_HINTS, ids=[e[0] for e in EXERCISE_HINTS])
def test_hint_has_two_levels(ex, hint, answer):
    assert hint.count("<details>") >= 2, f"exercise {ex}: the hint needs a nested second level <details>"
    assert first_level(hint).strip(), f"exercise {ex}: the first level of the hint is empty"


def test_first_level_strips_nested_details():
    hint = ("<details><summary><b>Hint</b></summary>\n\nUse `torch.func.jacrev`.\n\n"
            "<details><summary>Show code</summary>\n\n```python\nreturn x + 1\n```\n\n</details>\n</details>")
    assert "jacrev" in first_level(hint) and "return" not in first_level(hint)
