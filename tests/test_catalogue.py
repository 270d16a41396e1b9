"""EXERCISES.md is what `make catalogue` generates from the registry."""
from __future__ import annotations

from tools.grading import catalogue
from utils.checks import exercises


def test_catalogue_is_current():
    assert catalogue.CATALOGUE.exists(), "EXERCISES.md is missing: run `make catalogue`"
    assert catalogue.CATALOGUE.read_text() == catalogue.render(), "EXERCISES.md is stale: run `make catalogue`"


def test_catalogue_lists_every_exercise_with_its_fields():
    text = catalogue.render()
    for e in exercises():
        row = next(line for line in text.splitlines() if line.startswith(f"| {e.id} |"))
        for field in (e.notebook, str(e.points), str(e.minutes)):
            assert f"| {field} |" in row, (e.id, field, row)
        assert catalogue._cell(e.title) in row and catalogue._cell(e.practises) in row


def test_check_mode_reports_stale(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(catalogue, "CATALOGUE", tmp_path / "EXERCISES.md")
    assert catalogue.main(["--check"]) == 1
    assert catalogue.main([]) == 0 and catalogue.main(["--check"]) == 0
    (tmp_path / "EXERCISES.md").write_text("old\n")
    assert catalogue.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().out
