"""What the grader records: the limits it runs under, a grade an exercise and a grade a student."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"
TAMPERED, ERROR = "tampered", "error"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Limits:
    cell_timeout: float = 120.0  # seconds a cell of the student's notebook
    check_timeout: float = 60.0  # seconds an official check (it calls the student's code)
    notebook_timeout: float = 600.0  # seconds a notebook, kernel restarts included
    max_output_bytes: int = 2_000_000  # output kept a cell (figures included); the rest is dropped
    interrupt_grace: float = 5.0  # seconds a timed-out cell gets to stop after an interrupt
    max_restarts: int = 3  # kernel restarts a notebook (after crashes or unstoppable cells)


@dataclass
class ExerciseGrade:
    id: str
    title: str
    status: str
    points: float
    max_points: float
    message: str = ""


@dataclass
class StudentGrade:
    student: str
    files: list[str] = field(default_factory=list)
    notebooks: list[str] = field(default_factory=list)  # the course notebooks recognised
    results: dict[str, ExerciseGrade] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    flag: str = ""  # "tampered", "error" (the grading itself failed) or ""
    mode: str = "fast"  # "fast" or "full"

    def total(self, ids=None) -> float:
        return sum(r.points for k, r in self.results.items() if ids is None or k in ids)

    @classmethod
    def from_dict(cls, d: dict) -> "StudentGrade":
        d = dict(d)
        d.pop("total", None)
        d["results"] = {k: ExerciseGrade(**v) for k, v in d.get("results", {}).items()}
        return cls(**d)

def _order(ids):
    return sorted(ids, key=lambda i: tuple(int(p) if p.isdigit() else 0 for p in i.split(".")))
