"""No overlapping text in figures (utils.plotting.check_text_overlap), checked on every figure a
notebook shows when COURSE_CHECK_FIGURES=1; progress lines that survive a saved notebook."""
from __future__ import annotations

import matplotlib

matplotlib.use("agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from utils.plotting import FigureTextOverlap, check_text_overlap, text_overlaps  # noqa: E402
from utils.runtime import progress, stages  # noqa: E402


def test_overlapping_titles_are_named():
    fig, (a, b) = plt.subplots(1, 2, figsize=(4, 2))
    a.set_title("a title far too long for its half of the figure")
    b.set_title("second")
    with pytest.raises(FigureTextOverlap) as err:
        check_text_overlap(fig, name="fig 1")
    msg = str(err.value)
    assert "fig 1 has overlapping text (1 pair)" in msg
    assert "the title 'a title far too long for its half of the figure' of axes 1" in msg
    assert "the title 'second' of axes 2" in msg
    plt.close(fig)


def test_crowded_tick_labels_and_a_label_under_a_legend_are_found():
    fig, ax = plt.subplots(figsize=(2, 2), layout="constrained")
    ax.set_xticks(range(0, 100_000, 10_000))
    pairs = text_overlaps(fig)
    assert ("the x tick label '0' of axes 1", "the x tick label '10000' of axes 1") in pairs
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1], label="a line")
    ax.legend(loc="upper left", bbox_to_anchor=(-0.35, 0.7))  # pushed over the y tick labels
    assert any("the legend of axes 1" in p for pair in text_overlaps(fig) for p in pair)
    plt.close(fig)


def test_a_tidy_figure_passes():
    fig, axes = plt.subplots(1, 3, figsize=(10, 3), layout="constrained")
    for k, ax in enumerate(axes):
        ax.plot([0, 1], [k, k + 1], label=f"line {k}")
        ax.set(title=f"panel {k}", xlabel="x", ylabel="y")
        ax.legend()
    fig.suptitle("three panels")
    check_text_overlap(fig)
    assert text_overlaps(fig) == []
    plt.close(fig)


NOTEBOOK = [
    # utils first: the inline backend then configures itself, dropping per-type printers of figures
    "import utils\n%matplotlib inline\nimport matplotlib.pyplot as plt",
    # shown by plt.show() inside the cell: closed before the cell's post-execute flush
    "fig, (a, b) = plt.subplots(1, 2, figsize=(4, 2))\na.set_title('a title far too long for its half of the figure')\n"
    "b.set_title('second')\nplt.show()",
    # shown by the inline backend's flush after the cell
    "fig, ax = plt.subplots(figsize=(2, 2))\nax.set_xticks(range(0, 100000, 10000));",
    # the figure as the cell's value
    "fig, ax = plt.subplots(figsize=(2, 2))\nax.set_xticks(range(0, 100000, 10000))\nplt.close(fig)\nfig",
    # a tidy one
    "fig, ax = plt.subplots(layout='constrained')\nax.set(title='fine', xlabel='x', ylabel='y')\nplt.show()",
    # progress: nested, plain text, kept after the cell ends
    "from utils.runtime import progress, stages\nfor name in progress(['A', 'B'], desc='model'):\n"
    "    for _ in progress(range(3), desc=f'training ({name})'):\n        pass\n"
    "with stages(2, 'showdown') as stage:\n    stage('train')\n    stage('sample')",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook above, run in a real kernel with the figure check on and progress shown."""
    import os

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in NOTEBOOK])
    env = {k: v for k, v in os.environ.items() if k != "COURSE_QUIET"}
    env["COURSE_CHECK_FIGURES"] = "1"
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def _errors(cell):
    return [o for o in cell.outputs if o.output_type == "error"]


def test_every_way_a_figure_is_shown_is_checked_in_a_kernel(executed):
    cells = executed.cells
    for k in (1, 2, 3):
        errors = _errors(cells[k])
        assert errors and errors[0].ename == "FigureTextOverlap", (k, cells[k].outputs)
        assert "overlaps" in errors[0].evalue
    assert "the title 'a title far too long for its half of the figure' of axes 1" in _errors(cells[1])[0].evalue
    assert "x tick label '0'" in _errors(cells[2])[0].evalue
    assert not _errors(cells[4]) and any("image/png" in o.get("data", {}) for o in cells[4].outputs)


def test_progress_in_a_saved_notebook_is_plain_text_that_ends_complete(executed):
    outputs = executed.cells[5].outputs
    assert not _errors(executed.cells[5])
    assert all(set(o.get("data", {})) <= {"text/plain"} for o in outputs), "no widget to lose on reopening"
    text = [o.data["text/plain"] for o in outputs if o.output_type == "display_data"]
    assert text[0].startswith("model: 2 of 2 done"), text  # the overall line, updated in place, on top
    assert text[1].startswith("training (A): 100%") and "3/3" in text[1]
    assert text[2].startswith("training (B): 100%")
    assert text[3].startswith("showdown: 2 of 2 done")


def test_progress_outside_a_kernel_and_quiet(capsys, monkeypatch):
    monkeypatch.delenv("COURSE_QUIET", raising=False)
    out = list(progress(range(4), desc="steps"))
    assert out == [0, 1, 2, 3]
    err = capsys.readouterr().err
    assert "steps: 100%" in err and "4/4" in err and err.endswith("\n")
    for k in progress(range(10), desc="cut"):
        if k == 3:
            break
    assert "cut (stopped at 3)" in capsys.readouterr().err
    assert list(progress(["a", "b"], desc="model")) == ["a", "b"]
    err = capsys.readouterr().err
    assert "model 1 of 2: a" in err and "model 2 of 2: b" in err and "model: 2 of 2 done" in err
    assert len(progress(range(7), desc="x")) == 7
    monkeypatch.setenv("COURSE_QUIET", "1")
    r = range(3)
    assert progress(r, desc="quiet") is r
    with stages(2, "quiet") as stage:
        stage("one")
    assert capsys.readouterr().err == ""


def test_log_axes_read_as_plain_decimals():
    """Walk-through 3, p3: "0.3", not "3x10^-1", on every notebook's log axes (set by ``import utils``)."""
    import matplotlib.pyplot as plt

    import utils  # noqa: F401

    fig, ax = plt.subplots()
    ax.plot([0.25, 0.7], [0.02, 40])
    ax.set_xscale("log")
    ax.set_yscale("log")
    fig.canvas.draw()
    labels = [t.get_text() for axis in (ax.xaxis, ax.yaxis) for minor in (False, True)
              for t in axis.get_ticklabels(minor=minor) if t.get_text()]
    plt.close(fig)
    assert labels and not any("times" in s or "^" in s for s in labels), labels
    assert any("0.3" in s for s in labels) and any("10" in s for s in labels), labels
