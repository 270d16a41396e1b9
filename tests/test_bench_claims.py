"""Claims over seeds (issue 20, item 6): COURSE_SEED reruns a notebook on another stream; the sweep's plumbing.

The sweep itself (tools/bench/claims_seeds.py, part of `make bench`) executes the course's notebooks on five
seeds and takes many minutes; here a tiny notebook with two claims, one of which fails on one seed, runs on
two seeds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools.bench import claims_seeds
from utils.runtime import SEED_STRIDE, course_seed

ROOT = Path(__file__).resolve().parents[1]

DRAWS = """
import json, random
import numpy as np, torch
from utils import seed_everything
from utils.datasets import moons
g = seed_everything(0)
out = {"seed_everything": torch.randn(3, generator=g).tolist(), "global torch": torch.randn(2).tolist(),
       "numpy": np.random.rand(2).tolist(), "python": random.random(),
       "Generator().manual_seed": torch.randn(2, generator=torch.Generator().manual_seed(5)).tolist(),
       "moons(seed=1)": moons(3, seed=1).tolist(), "moons(seed=generator)": moons(3, seed_everything(4)).tolist(),
       "same generator twice": torch.equal(seed_everything(0).get_state(), torch.Generator().manual_seed(0).get_state()),
       "every generator is a torch.Generator": all(isinstance(x, torch.Generator) for x in (
           seed_everything(0), torch.Generator(), torch.default_generator, torch._C.Generator()))}
torch.manual_seed(7)
out["torch.manual_seed"] = torch.randn(2).tolist()
print(json.dumps(out))
"""


def _draws(course_seed_value: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "COURSE_SEED"}
    if course_seed_value is not None:
        env["COURSE_SEED"] = course_seed_value
    done = subprocess.run([sys.executable, "-c", DRAWS], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_course_seed_zero_is_the_course_run_and_other_values_shift_every_seeding_path():
    course, zero, one, two = _draws(None), _draws("0"), _draws("1"), _draws("2")
    assert zero == course, "COURSE_SEED=0 must be the course's own run"
    for key in course:
        if key in ("same generator twice", "every generator is a torch.Generator"):
            continue
        assert one[key] != course[key], f"COURSE_SEED=1 does not change {key}"
        assert two[key] != one[key], f"COURSE_SEED=2 gives the same {key} as COURSE_SEED=1"
    # seed_everything shifts once, as torch.Generator().manual_seed does: no double shift
    assert course["same generator twice"] and one["same generator twice"] and two["same generator twice"]
    # utils tells a generator from a seed with isinstance(x, torch.Generator): true for all of them
    assert course["every generator is a torch.Generator"] and one["every generator is a torch.Generator"]
    assert "moons(seed=generator)" in one


def test_course_seed_values(monkeypatch):
    monkeypatch.delenv("COURSE_SEED", raising=False)
    assert course_seed(11) == 11
    monkeypatch.setenv("COURSE_SEED", "3")
    assert course_seed(11) == 11 + 3 * SEED_STRIDE
    assert course_seed(10) != course_seed(11)  # two seeds of one run stay apart
    monkeypatch.setenv("COURSE_SEED", "-1")
    with pytest.raises(ValueError, match="COURSE_SEED must be a whole number >= 0"):
        course_seed(0)
    monkeypatch.setenv("COURSE_SEED", "one")
    with pytest.raises(ValueError, match="got 'one'"):
        course_seed(0)


TINY = """import torch
from utils.claims import claim
x = torch.randn(1, generator=torch.Generator().manual_seed(0)).item()
print(f"x = {x:.2f}")
claim(abs(x) < 10, "x is a normal draw")
claim(x > 0, "x is positive")
"""


def test_sweep_counts_the_seeds_behind_each_claim_and_fails_when_one_fails(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# tiny"), nbformat.v4.new_code_cell(TINY)]
    source = tmp_path / "99_tiny.ipynb"
    nbformat.write(nb, source)
    before = source.read_bytes()
    out = tmp_path / "claims_seeds.json"
    # COURSE_SEED=1 draws x = 0.69, COURSE_SEED=2 draws x = -0.11
    rc = claims_seeds.main(["--notebooks", str(source), "--seed-list", "1", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 1, "a claim that fails on a seed must fail the sweep"
    assert source.read_bytes() == before, "the sweep must never write the notebook it runs"
    assert "✔ 2/2  x is a normal draw  [seeds 1 2]" in printed
    assert "✘ 1/2  x is positive  [seeds 1; not by 2]" in printed
    entry = json.loads(out.read_text())["notebooks"]["99_tiny"]
    assert entry["seeds"] == [1, 2] and not entry["ok"]
    positive = next(c for c in entry["claims"] if c["text"] == "x is positive")
    assert positive["seeds"] == [1] and positive["failed_on"] == [2]
    assert "x = -0.11" in positive["outputs"]["2"], "a failing claim keeps its cell's numbers"
    assert all(run["error"] is None for run in entry["runs"].values())
    # the same notebook on a seed where both hold: the sweep passes, and the JSON keeps one entry a notebook
    assert claims_seeds.main(["--notebooks", str(source), "--seed-list", "1", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert list(data["notebooks"]) == ["99_tiny"] and data["all_hold"]


def test_a_run_that_stops_is_reported_and_its_later_claims_count_as_not_reached(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(TINY.split("claim(abs")[0] + "claim(True, 'reached')\n"
                                          "if x < 0:\n    raise RuntimeError('boom')\n"),
                nbformat.v4.new_code_cell("claim(True, 'after the stop')")]
    source = tmp_path / "98_stops.ipynb"
    nbformat.write(nb, source)
    runs = {seed: claims_seeds.run_notebook(source, seed) for seed in (1, 2)}  # x = 0.69, then -0.11
    assert runs[1]["error"] is None and runs[2]["error"] == "RuntimeError: boom"  # one line, no colours
    entry = claims_seeds.summarise("98_stops", runs)
    after = next(c for c in entry["claims"] if c["text"] == "after the stop")
    assert not entry["ok"] and after["seeds"] == [1] and after["not_reached"] == [2]
    claims_seeds.print_summary(entry)
    printed = capsys.readouterr().out
    assert "after the stop  [seeds 1; not reached by 2 (the run stopped)]" in printed
    assert "COURSE_SEED=2: the run stopped: RuntimeError: boom" in printed


def test_default_notebooks_are_the_solutions_with_claims():
    names = [p.name[:2] for p in claims_seeds.notebooks_with_claims()]
    assert {"02", "03", "04", "05", "06", "07", "09"} <= set(names)
    assert [p.name[:2] for p in claims_seeds.notebooks_with_claims(["05"])] == ["05"]


def test_a_claim_a_run_did_not_make_and_a_notebook_edited_during_the_sweep_are_named(capsys):
    def run(claims, source, error=None):
        return {"seconds": 1.0, "error": error, "failed_checks": [], "source": source, "outputs": {},
                "claims": [{"text": t, "holds": h, "index": i} for i, (t, h) in enumerate(claims)]}

    runs = {1: run([("A", True), ("B", True)], "v1"), 2: run([("A", True)], "v2")}
    entry = claims_seeds.summarise("97_edited", runs)
    assert entry["edited"] and not entry["ok"]
    claims_seeds.print_summary(entry)
    printed = capsys.readouterr().out
    assert "B  [seeds 1; not made by 2]" in printed  # no stop: another branch, or an edited notebook
    assert "the notebook was edited during the sweep" in printed
    same = claims_seeds.summarise("97_same", {1: run([("A", True)], "v1"), 2: run([("A", True)], "v1")})
    assert not same["edited"] and same["ok"]
