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
    "06": {"0.1"},  # sigma of the straight couplings (also a threshold the claims print)
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


# ---------------------------------------------------------------------- where the student works (issue 24, M1)
def _make_work_dir() -> str:
    """The folder ``make lab`` opens JupyterLab on: the Makefile's WORK, which must be the lab's root."""
    makefile = (ROOT / "Makefile").read_text()
    m = re.search(r"^WORK \?= (\S+)$", makefile, flags=re.M)
    assert m, "Makefile: no `WORK ?= folder` line"
    assert "--ServerApp.root_dir=$(WORK)" in makefile, "Makefile: `make lab` must open JupyterLab on $(WORK)"
    return m.group(1)


# "lectures/ holds the notebooks you work in", "jupyter lab lectures/": the course as shipped named as
# the place to work
LECTURES_AS_WORKPLACE = re.compile(
    r"`lectures/`[^.;:\n]*\b(?:you work|work in|work there|your (?:copy|answers|notebooks))"
    r"|jupyter[ -]lab\s+lectures/?", flags=re.I)


def where_the_student_works_problems(notebook_00: str, readme: str, work: str) -> list[str]:
    problems = []
    for name, text in (("notebook 00", notebook_00), ("README.md", readme)):
        for m in LECTURES_AS_WORKPLACE.finditer(text):
            problems.append(f"{name} says the student works in lectures/: {m.group(0)!r}")
    if not re.search(rf"[Yy]ou work in `{re.escape(work)}/`", notebook_00):
        problems.append(f"notebook 00 must say \"You work in `{work}/`\" (where `make lab` opens JupyterLab)")
    section = readme.split("## Where your work goes", 1)[-1].split("\n## ", 1)[0]
    if "## Where your work goes" not in readme or f"`{work}/`" not in section or "Work there" not in section:
        problems.append(f"README.md's 'Where your work goes' must name `{work}/` and say \"Work there\"")
    return problems


def test_notebook_00_the_readme_and_make_lab_agree_on_where_the_student_works():
    work = _make_work_dir()
    from tools.course import workspace

    assert workspace.sync.__defaults__[-1] == work, "tools.course.workspace's default folder is not the Makefile's WORK"
    nb = nbformat.read(ROOT / "solutions" / "00_welcome.ipynb", as_version=4)
    text_00 = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    problems = where_the_student_works_problems(text_00, (ROOT / "README.md").read_text(), work)
    assert not problems, "\n".join(problems)


def test_the_old_notebook_00_sentence_is_caught():
    old = "- `lectures/` holds the notebooks you work in; `solutions/` holds the same notebooks, solved and run."
    readme = "## Where your work goes\n\n`make lab` copies into `my-work/`. Work there.\n\n## Next\n"
    assert any("lectures/" in p for p in where_the_student_works_problems(old, readme, "my-work"))
    assert where_the_student_works_problems("You work in `my-work/`: ...", readme, "my-work") == []
    conda = readme + "conda env create -f environment.yml && jupyter lab lectures/\n"
    assert where_the_student_works_problems("You work in `my-work/`.", conda, "my-work")
