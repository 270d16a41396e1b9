"""utils.claims: a claim prints when the numbers support it and stops the run when they don't."""
import pytest
import torch

from utils.claims import ClaimError, beyond, claim, mode, read_record, tally


def test_true_claim_prints_tick(capsys):
    assert claim(0.2 < 0.3, "A beats B") is None
    assert capsys.readouterr().out == "✔ A beats B\n"


def test_false_claim_raises_with_the_text():
    with pytest.raises(ClaimError, match="A beats B"):
        claim(0.4 < 0.3, "A beats B")
    assert issubclass(ClaimError, AssertionError)


def test_tensor_conditions():
    claim(torch.tensor(1.0) > 0, "positive")
    with pytest.raises(ClaimError):
        claim(torch.tensor(False), "false tensor")
    with pytest.raises(TypeError, match="single truth value"):
        claim(torch.tensor([True, False]), "ambiguous")


def test_empty_text_rejected():
    with pytest.raises(TypeError):
        claim(True, "  ")


def test_beyond_uses_the_tolerance():
    assert beyond(0.40, 0.30, 0.05)
    assert not beyond(0.33, 0.30, 0.05)
    assert not beyond(0.30, 0.40, 0.05)
    with pytest.raises(ValueError):
        beyond(1, 0, -1)


def test_record_mode_notes_every_verdict_and_goes_on(tmp_path, monkeypatch, capsys):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("COURSE_CLAIMS_RECORD", str(log))
    claim(0.2 < 0.3, "A beats B")
    claim(0.4 < 0.3, "C beats D")  # recorded, printed with a cross, no exception
    assert capsys.readouterr().out == "✔ A beats B\n✘ C beats D\n"
    records = read_record(log)
    assert [(r["text"], r["holds"]) for r in records] == [("A beats B", True), ("C beats D", False)]
    assert records[1]["index"] == records[0]["index"] + 1
    monkeypatch.delenv("COURSE_CLAIMS_RECORD")
    with pytest.raises(ClaimError):
        claim(False, "C beats D")


def test_record_names_the_notebook_and_tally_counts_seeds(tmp_path, monkeypatch, capsys):
    """A seed sweep of any notebook: one record per seed, then the seeds that support each claim."""
    monkeypatch.setenv("COURSE_CLAIMS_NOTEBOOK", "05_flow_matching")
    runs = {}
    for seed, verdicts in {0: (True, True), 1: (True, False), 2: (False, True)}.items():
        log = tmp_path / f"seed{seed}.jsonl"
        monkeypatch.setenv("COURSE_CLAIMS_RECORD", str(log))
        claim(verdicts[0], "A beats B")
        claim(verdicts[1], "C beats D")
        runs[seed] = read_record(log)
    assert {r["notebook"] for rs in runs.values() for r in rs} == {"05_flow_matching"}
    runs[3] = []  # a run that stopped before its claims supports none
    assert tally(runs) == {"A beats B": [0, 1], "C beats D": [0, 2]}


def test_student_copy_prints_and_goes_on(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_CLAIMS", "student")
    assert mode() == "student"
    assert claim(False, "C beats D") is None  # no ClaimError
    out = capsys.readouterr().out
    assert out.startswith("✘ C beats D") and "another random stream" in out and "goes on" in out


def test_mode_by_folder(monkeypatch, tmp_path):
    """Plain Python is strict; in a notebook kernel, solutions/ is strict and every other folder the student's."""
    import utils.claims as claims
    monkeypatch.delenv("COURSE_CLAIMS", raising=False)
    monkeypatch.delenv("COURSE_CLAIMS_RECORD", raising=False)
    assert mode() == "strict"
    monkeypatch.setattr(claims, "_in_notebook", lambda: True)
    for folder, want in (("solutions", "strict"), ("lectures", "student"), ("my-work", "student")):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        assert mode() == want, folder
    monkeypatch.setenv("COURSE_CLAIMS", "strict")
    assert mode() == "strict"
    with pytest.raises(ClaimError):
        claim(False, "C beats D")
    monkeypatch.setenv("COURSE_CLAIMS", "sometimes")
    with pytest.raises(ValueError, match="COURSE_CLAIMS"):
        mode()
