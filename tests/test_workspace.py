"""A student's workspace survives course updates: work, the course changes, git pull, make lab again."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from tools.course import workspace

ROOT = Path(__file__).resolve().parents[1]


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _notebook(path: Path, sources: list[str]) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nbformat.write(nb, path)


def _edit(path: Path, index: int, source: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.cells[index].source = source
    nbformat.write(nb, path)


@pytest.fixture()
def course(tmp_path: Path) -> tuple[Path, Path]:
    """An upstream course repository (with the project's real .gitignore) and a student's clone of it."""
    up = tmp_path / "upstream"
    (up / "lectures").mkdir(parents=True)
    shutil.copyfile(ROOT / ".gitignore", up / ".gitignore")
    _notebook(up / "lectures" / "00_welcome.ipynb", ["# YOUR CODE HERE", "print('welcome')"])
    _notebook(up / "lectures" / "01_change.ipynb", ["# YOUR CODE HERE"])
    _git(up, "init", "-q", "-b", "main")
    _git(up, "add", ".")
    _git(up, "commit", "-qm", "course v1")
    _git(tmp_path, "clone", "-q", str(up), "student")
    return up, tmp_path / "student"


def test_work_pull_and_reopen_keep_the_answers(course):
    up, me = course
    done = workspace.sync(me, "my-work")
    assert sorted(done["new"]) == ["00_welcome.ipynb", "01_change.ipynb"]
    answer = "def f(x):\n    return 2 * x  # my answer"
    _edit(me / "my-work" / "00_welcome.ipynb", 0, answer)
    assert _git(me, "status", "--porcelain") == "", "the workspace must be invisible to git"

    # the course changes: 00 edited, 01 edited, a new notebook 02
    _edit(up / "lectures" / "00_welcome.ipynb", 1, "print('welcome to v2')")
    _edit(up / "lectures" / "01_change.ipynb", 0, "# YOUR CODE HERE (v2)")
    _notebook(up / "lectures" / "02_new.ipynb", ["# new"])
    _git(up, "add", ".")
    _git(up, "commit", "-qm", "course v2")

    _git(me, "pull", "-q", "--no-rebase")  # raises on a conflict
    done = workspace.sync(me, "my-work")
    work = me / "my-work"
    assert done["new"] == ["02_new.ipynb"] and (work / "02_new.ipynb").exists()
    assert done["beside"] == ["00_welcome.ipynb"]
    assert nbformat.read(work / "00_welcome.ipynb", as_version=4).cells[0].source == answer
    update = work / "00_course-update_welcome.ipynb"  # the file browser shows its start: not cut to "00_welcome..."
    assert nbformat.read(update, as_version=4).cells[1].source == "print('welcome to v2')"
    assert done["updated"] == ["01_change.ipynb"]  # never edited: simply replaced
    assert nbformat.read(work / "01_change.ipynb", as_version=4).cells[0].source == "# YOUR CODE HERE (v2)"

    again = workspace.sync(me, "my-work")  # a second make lab changes nothing
    assert not again["new"] and not again["updated"] and not again["beside"]
    assert nbformat.read(work / "00_welcome.ipynb", as_version=4).cells[0].source == answer
    assert "beside it as '00_course-update_welcome.ipynb'" in workspace.report(done, "my-work")
    assert "saved outputs are gone" in workspace.report(done, "my-work")


def test_a_deleted_notebook_comes_back(course):
    _, me = course
    workspace.sync(me, "my-work")
    (me / "my-work" / "01_change.ipynb").unlink()
    assert workspace.sync(me, "my-work")["new"] == ["01_change.ipynb"]


def test_make_lab_opens_the_workspace_at_notebook_00():
    out = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "tools.course.workspace --work my-work" in out
    cmd = [l for l in out.splitlines() if "jupyter lab" in l][-1]
    assert "--ServerApp.root_dir=my-work" in cmd and "default_url=/lab/tree/00_welcome.ipynb" in cmd
