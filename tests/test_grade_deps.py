"""Fast grading's cell selection (tools.grading.deps): the static analysis, and the marks in the notebooks.

The analysis is tested on small notebooks written here (no kernel). That the
selection gives the same grades as running every cell is tested on real
notebooks in tests/test_grade_fast.py.
"""
from __future__ import annotations

import nbformat

from tools.grading import deps as D
from tools.grading.plan import cells_to_run
from tools.course.lectures import SOLUTIONS, make_lecture
from tools.course.nbcells import course_meta


def nb_of(*cells):
    """Cells given as source strings; ("answer", src) / ("check", src) get the course roles."""
    out = []
    for c in cells:
        role, src = c if isinstance(c, tuple) else (None, c)
        cell = nbformat.v4.new_code_cell(src) if role != "md" else nbformat.v4.new_markdown_cell(src)
        if role in ("answer", "check"):
            cell.metadata["course"] = {"role": role, "exercise": "9.1"}
        out.append(cell)
    return nbformat.v4.new_notebook(cells=out)


def test_cell_names_scoping():
    n = D.cell_names("import torch as T\nfrom a.b import c\n\ndef f(x, y=K):\n    z = x + helper(y)\n"
                     "    return [w * SCALE for w in z]\n\nclass M(Base):\n    n = N\n\nv = f(1)\nv += 2\n")
    assert n.binds == {"T", "c", "f", "M", "v"}
    assert n.uses == {"K", "helper", "SCALE", "Base", "N"}  # x, y, z, w are local; f and v are the cell's own
    assert n.defs == {"T", "c", "f", "M"}
    assert D.cell_names("x += 1").uses == {"x"}  # an augmented assignment reads the old value
    assert D.cell_names("data.append(3)\nd['k'] = 1\nm.w = 2").touches == {"data", "d", "m"}
    assert D.cell_names("%matplotlib inline\nimport math").binds == {"math"}  # magics are translated
    assert not D.cell_names("def broken(:\n").parsed
    assert D.cell_names("torch.set_default_dtype(torch.float64)").setter
    assert not D.cell_names("torch.set_num_threads(1)").setter


def test_needed_cells_follow_names_transitively_and_skip_the_rest():
    nb = nb_of(
        "import torch\nimport math",                                    # 0 imports: needed
        "SCALE = 2.0",                                                  # 1 used by helper: needed
        "def helper(v):\n    return SCALE * v",                         # 2 used by the answer: needed
        "model = train(torch.nn.Linear(2, 2), steps=10_000)",           # 3 training: skipped
        "fig = plot(model)",                                            # 4 demonstration: skipped
        "table = []\ntable.append(math.pi)",                             # 5 builds `table`: needed
        "table.append(1.0)",                                            # 6 changes `table`: needed
        ("answer", "def f(x):\n    return helper(x) + table[0]"),       # 7
        ("check", "f = check('9.1', f)"),                               # 8 never run
        "SCALE = 3.0",                                                  # 9 after the answer: skipped
    )
    answers, checks = D.anchors_and_checks(nb)
    assert (answers, checks) == ([7], {8})
    assert D.needed_cells(nb.cells, answers, skip=checks) == {0, 1, 2, 5, 6, 7}
    assert cells_to_run(nb, answers, fast=True) == {0, 1, 2, 5, 6, 7}
    assert cells_to_run(nb, answers, fast=False) == {0, 1, 2, 3, 4, 5, 6, 7, 9}
    marked = D.mark(nb)
    assert [course_meta(c).get("grade") for c in marked.cells] == (
        ["needed", "needed", "needed", "skip", "skip", "needed", "needed", "needed", "needed", "skip"])


def test_global_settings_and_pins_are_kept():
    nb = nb_of("import torch", "torch.set_default_dtype(torch.float64)", "x = expensive()", "import math",
               ("answer", "def f(x):\n    return torch.zeros(1)"))
    assert D.needed_cells(nb.cells, [4]) == {0, 1, 4}
    assert D.import_cells(nb.cells) == [0, 3]  # the first code cell and imports-only cells always run
    assert cells_to_run(nb, [4]) == {0, 1, 3, 4}
    nb.cells[2].metadata["course"] = {"grade": "always"}  # pinned by hand: kept, never rewritten
    assert D.marks(nb)[2] == "always"
    assert cells_to_run(D.mark(nb), [4]) == {0, 1, 2, 3, 4}


def test_a_student_answer_that_reads_a_demo_variable_runs_that_demo():
    """The marks come from the solution; the grader reruns the analysis on the student's own cells."""
    nb = D.mark(nb_of("import torch", "grid = torch.linspace(0, 1, 5)", ("answer", "def f(x):\n    return x")))
    assert cells_to_run(nb, [2]) == {0, 2}
    nb.cells[2].source = "def f(x):\n    return x + 0 * grid.sum()"  # the student's version
    assert cells_to_run(nb, [2]) == {0, 1, 2}
    nb.cells.insert(2, nbformat.v4.new_code_cell("def mine(v):\n    return v * grid.max()"))  # their own helper
    nb.cells[3].source = "def f(x):\n    return mine(x)"
    assert cells_to_run(nb, [3]) == {0, 1, 2, 3}


def test_grading_marks_in_solutions_are_current():
    """Fails until `python -m tools.grading.deps` (then `make lectures`) is run after editing a notebook."""
    assert D.stale(sorted(SOLUTIONS.glob("*.ipynb"))) == [], "run: python -m tools.grading.deps && make lectures"


def test_lectures_carry_the_grading_marks():
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        sol = nbformat.read(path, as_version=4)
        lec = make_lecture(D.mark(sol), path.name)
        assert [course_meta(c) for c in lec.cells] == [course_meta(c) for c in D.mark(sol).cells]
