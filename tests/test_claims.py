"""utils.claims: a claim prints when the numbers support it and stops the run when they don't."""
import pytest
import torch

from utils.claims import ClaimError, beyond, claim


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
    import json
    assert [json.loads(line) for line in log.read_text().splitlines()] == [
        {"text": "A beats B", "holds": True}, {"text": "C beats D", "holds": False}]
    monkeypatch.delenv("COURSE_CLAIMS_RECORD")
    with pytest.raises(ClaimError):
        claim(False, "C beats D")
