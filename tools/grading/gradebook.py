"""The gradebook of a class: the submissions found, grades.csv, grades.json, feedback/<student>.md,
and the records ``--resume`` reads."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import asdict
from pathlib import Path

from tools.grading.records import ERROR, ExerciseGrade, FAILED, NOT_ATTEMPTED, PASSED, StudentGrade, TAMPERED, _order


def discover(submissions: Path) -> list[tuple[str, list[Path]]]:
    """(student, notebooks): a notebook file is a student, a folder is a student."""
    submissions = Path(submissions)
    if submissions.is_file():
        return [(submissions.stem, [submissions])]
    out = []
    for p in sorted(submissions.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            nbs = sorted(q for q in p.rglob("*.ipynb")
                         if ".ipynb_checkpoints" not in q.parts and not any(x.startswith(".") for x in q.relative_to(p).parts))
            out.append((p.name, nbs))
        elif p.suffix == ".ipynb":
            out.append((p.stem, [p]))
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "student"


_INFO = re.compile(r": ran in \d+ s\b|: graded again with every cell")


def _is_problem(note: str) -> bool:
    return not _INFO.search(note)

def feedback(sg: StudentGrade, ids: list[str]) -> str:
    max_total = sum(sg.results[i].max_points for i in ids if i in sg.results)
    lines = [f"# Feedback: {sg.student}", ""]
    if sg.flag == TAMPERED:
        lines += ["**Tampering detected: the course's check machinery was modified during grading. "
                  "The exercises checked while it was modified get 0 points (see the notes below).**", ""]
    lines += [f"**Total: {sg.total(ids):g} / {max_total:g} points.** Files: {', '.join(sg.files) or 'none'}.", ""]
    icon = {PASSED: "✔", FAILED: "✘", NOT_ATTEMPTED: "○"}
    for i in ids:
        r = sg.results.get(i)
        if r is None:
            continue
        lines += [f"## {icon[r.status]} Exercise {r.id}: {r.title} ({r.status}, {r.points:g} / {r.max_points:g})", ""]
        if r.message:
            lines += ["```", r.message, "```", ""]
        elif r.status == NOT_ATTEMPTED:
            lines += ["The answer still raises NotImplementedError.", ""]
    if sg.notes:
        lines += ["## Notes from the grader", ""] + [f"- {n}" for n in sg.notes] + [""]
    return "\n".join(lines)


def _digest_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0")
        try:
            h.update(p.read_bytes())
        except OSError:
            h.update(b"<unreadable>")
    return h.hexdigest()[:20]

class _Store:
    """``OUT``: grades written as each student finishes; ``OUT/.grading/`` keeps one record a student."""

    def __init__(self, out: Path, subs: list[tuple[str, list[Path]]], exercises, fast: bool, registry):
        self.out, self.exercises, self.fast, self.registry = Path(out), exercises, fast, registry
        self.dir = self.out / ".grading"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.out / "feedback").mkdir(exist_ok=True)
        self.order = [s for s, _ in subs]
        self.digest = {s: _digest_files(p) for s, p in subs}
        self.names: dict[str, str] = {}
        used: set[str] = set()
        for s in self.order:  # feedback file names, fixed before anyone finishes
            name = _safe(s)
            while name in used:
                name += "_"
            used.add(name)
            self.names[s] = name
        self.done: dict[str, StudentGrade] = {}

    def _record(self, student: str) -> Path:
        return self.dir / f"{self.names[student]}.json"

    def resume(self) -> list[str]:
        """Load the students already graded with the same files, exercises and mode; their names."""
        kept = []
        for s in self.order:
            p = self._record(s)
            try:
                rec = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            if (rec.get("student") == s and rec.get("digest") == self.digest[s] and rec.get("exercises") == self.exercises
                    and rec.get("fast") == self.fast and rec["grade"].get("flag") != ERROR):
                self.done[s] = StudentGrade.from_dict(rec["grade"])
                kept.append(s)
        return kept

    def add(self, g: StudentGrade) -> None:
        self.done[g.student] = g
        rec = {"student": g.student, "digest": self.digest.get(g.student), "exercises": self.exercises,
               "fast": self.fast, "grade": asdict(g)}
        tmp = self._record(g.student).with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, ensure_ascii=False))
        os.replace(tmp, self._record(g.student))
        self.write()

    def grades(self) -> list[StudentGrade]:
        return [self.done[s] for s in self.order if s in self.done]

    def write(self) -> list[str]:
        grades = self.grades()
        ids = self.exercises or _order({i for g in grades for i in g.results})
        for g in grades:  # a column the student has no notebook for
            for i in ids:
                if i not in g.results:
                    ex = self.registry[i]
                    why = (f"Not graded: exercise {i} was not part of this student's assignment."
                           if ex.notebook in g.notebooks else f"Notebook {ex.notebook} was not in the submission.")
                    g.results[i] = ExerciseGrade(i, ex.title, NOT_ATTEMPTED, 0.0, float(ex.points), why)
        write(grades, ids, self.out, names=self.names)
        return ids

def write(grades: list[StudentGrade], ids: list[str], out: Path, names: dict[str, str] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "feedback").mkdir(exist_ok=True)
    from utils.checks import load_all

    registry = load_all()
    max_total = sum(registry[i].points for i in ids)
    tmp = out / "grades.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", *ids, "total", "max", "flag", "notes"])
        for g in grades:
            cells = [f"{g.results[i].points:g}" if i in g.results else "0" for i in ids]
            problems = [n for n in g.notes if _is_problem(n)]
            w.writerow([g.student, *cells, f"{g.total(ids):g}", f"{max_total:g}", g.flag, " | ".join(problems)])
    os.replace(tmp, out / "grades.csv")
    used: set[str] = set()
    for g in grades:
        name = names[g.student] if names and g.student in names else _safe(g.student)
        if not names:
            while name in used:
                name += "_"
            used.add(name)
        (out / "feedback" / f"{name}.md").write_text(feedback(g, ids))
    tmp = out / "grades.json.tmp"
    tmp.write_text(json.dumps(
        {"exercises": ids, "max": max_total,
         "students": [{**asdict(g), "total": g.total(ids)} for g in grades]}, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, out / "grades.json")
