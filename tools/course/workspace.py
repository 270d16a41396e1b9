"""Your own copy of the course (``make lab``): ``my-work/``, made on first use, kept across updates.

``lectures/`` is what the course ships and changes with every ``git pull``;
you work in ``my-work/``, which git ignores, so a pull never conflicts with
your answers. Each ``make lab`` runs :func:`sync`:

- a notebook you don't have yet (a new one, or one you deleted) is copied in;
- a notebook the course changed since you got it is replaced when you never
  edited it, and otherwise left alone, with the new version put beside it as
  ``NN_course-update_name.ipynb`` (the words up front: the file browser cuts long names at the
  end, and "03_continuous_flows (course update).ipynb" read "03_continuous_..." like your copy);
- everything else is untouched.

``my-work/.course/`` remembers the version of each notebook you were given,
which is how a course change is told apart from your own edits. Copies are
signed as trusted, so their animations show when you open them.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
UPDATE_TAG = "course-update"


def update_name(stem: str) -> str:
    """The file name of the course's new version of ``stem`` put beside the student's copy:
    ``03_continuous_flows`` -> ``03_course-update_continuous_flows.ipynb``."""
    number, sep, rest = stem.partition("_")
    return f"{number}_{UPDATE_TAG}_{rest}.ipynb" if sep and number.isdigit() else f"{UPDATE_TAG}_{stem}.ipynb"


def _sources(path: Path) -> list[tuple[str, str]]:
    """What you can edit in a notebook: its cells' types and sources (outputs don't count)."""
    nb = nbformat.read(path, as_version=4)
    return [(c.cell_type, c.source) for c in nb.cells]


def _sign(path: Path) -> None:
    try:
        from nbformat.sign import NotebookNotary

        nb = nbformat.read(path, as_version=4)
        NotebookNotary().sign(nb)
    except Exception:  # signing is a convenience: a read-only or missing database must not stop the course
        pass


def _copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    _sign(dst)


def sync(root: Path = ROOT, work: str | Path = "my-work") -> dict[str, list[str]]:
    """Bring ``work`` up to date with ``root/lectures``; return what was done, by kind."""
    lectures = root / "lectures"
    work = Path(work) if Path(work).is_absolute() else root / work
    given = work / ".course"
    given.mkdir(parents=True, exist_ok=True)
    done: dict[str, list[str]] = {"new": [], "updated": [], "beside": [], "unchanged": []}
    for src in sorted(lectures.glob("*.ipynb")):
        mine, base = work / src.name, given / src.name
        if not mine.exists():
            _copy(src, mine)
            shutil.copyfile(src, base)
            done["new"].append(src.name)
        elif base.exists() and base.read_bytes() == src.read_bytes():
            done["unchanged"].append(src.name)
        elif base.exists() and _sources(mine) == _sources(base):
            _copy(src, mine)  # the course changed it and you never edited it
            shutil.copyfile(src, base)
            done["updated"].append(src.name)
        elif _sources(mine) == _sources(src):
            shutil.copyfile(src, base)  # already the same as the course's version
            done["unchanged"].append(src.name)
        else:
            beside = work / update_name(src.stem)
            _copy(src, beside)
            shutil.copyfile(src, base)
            done["beside"].append(src.name)
    return done


def report(done: dict[str, list[str]], work: str) -> str:
    lines = []
    if done["new"]:
        lines.append(f"copied into {work}/: " + ", ".join(done["new"]))
    if done["updated"]:
        lines.append("updated (you had not edited them; their saved outputs are gone, run them again): "
                     + ", ".join(done["updated"]))
    for name in done["beside"]:
        stem = name[:-len(".ipynb")]
        lines.append(f"the course changed {name}; your copy is untouched and the new version is "
                     f"beside it as '{update_name(stem)}'")
    if not lines:
        lines.append(f"{work}/ is up to date with the course")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="my-work", help="your folder (default my-work, git-ignored)")
    args = ap.parse_args(argv)
    print(report(sync(ROOT, args.work), args.work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
