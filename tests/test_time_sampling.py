"""Notebook 05's time-sampling experiment (tools/bench/time_sampling_05.py, weights/05_time_sampling.json).

- the weight lambda(t) is what its docstring says: the inverse of the CFM target's variance per coordinate
  for unit-variance data (Monte Carlo), and the logit-normal draws the stated shares of times;
- the stored results belong to the code as it stands (its hash), their first losses are reproduced by
  rerunning each variant for a few steps, and the uniform variant is notebook 05's converged reference
  05_fm_vp, seed for seed;
- the stored means and standard deviations are those of the stored per-seed values.
"""
from __future__ import annotations

import json
import math
import statistics

import pytest
import torch

from tools.bench import time_sampling_05 as ts
from utils import references
from utils.cfm_references import fm_path

stored = pytest.mark.skipif(not ts.OUT.exists(), reason="no stored run: python -m tools.bench.time_sampling_05")


def _data() -> dict:
    return json.loads(ts.OUT.read_text(encoding="utf-8"))


def test_the_weight_is_the_inverse_of_the_targets_variance_for_unit_data():
    path, g = fm_path("vp"), torch.Generator().manual_seed(0)
    for t_ in (0.05, 0.5, 0.9):
        t = torch.full((200_000,), t_, dtype=torch.float64)
        x1 = torch.randn(200_000, 2, generator=g, dtype=torch.float64)
        x0 = torch.randn(200_000, 2, generator=g, dtype=torch.float64)
        u = path.velocity(path.sample(x0, x1, t), x1, t)
        assert 1 / u.pow(2).mean().item() == pytest.approx(ts.loss_weight(path, t[:1]).item(), rel=0.02)
    w = ts.loss_weight(path, torch.tensor([0.0, 0.5, ts.T_MAX], dtype=torch.float64))
    assert w[0] > 100 * w[1] > 100 * w[2] > 0  # the times near the noise count most


def test_logit_normal_draws_the_stated_shares():
    t = ts.logit_normal_times(200_000, torch.Generator().manual_seed(1))
    shares = ts.time_shares()["logit-normal"]
    assert (t < 0.1).double().mean().item() == pytest.approx(shares["below_0_1"], abs=0.005)
    assert (t > 0.9).double().mean().item() == pytest.approx(shares["above_0_9"], abs=0.002)
    assert t.max().item() <= ts.T_MAX and shares["below_0_1"] > 2 * ts.time_shares()["uniform"]["below_0_1"]


@stored
def test_the_stored_run_belongs_to_the_code():
    data = _data()
    assert data["code_hash"] == ts.code_hash(), (
        "the time-sampling code changed since the stored run: `nice -n 10 python -m tools.bench.time_sampling_05`")
    assert data["steps"] == ts.STEPS and len(data["seeds"]) >= 3
    assert set(data["results"]) == set(ts.VARIANTS)


@stored
@pytest.mark.parametrize("variant", ts.VARIANTS)
def test_the_first_losses_are_reproduced(variant):
    data = _data()
    k = len(data["first_losses"][variant])
    run = ts.train_variant(variant, data["probe_seed"], steps=k, checkpoints=(), probe=k)
    assert run["first_losses"] == pytest.approx(data["first_losses"][variant], rel=1e-9)


@stored
def test_uniform_is_the_converged_reference_seed_for_seed():
    data, entry = _data(), references.manifest().get("05_fm_vp")
    if entry is None or entry["code_hash"] != references.code_hash("05_fm_vp") or entry["steps"] != data["steps"]:
        pytest.skip("05_fm_vp is not stored for this code and length")
    cell = data["results"]["uniform"][str(data["steps"])]["w2_100"]
    common = [s for s in data["seeds"] if str(s) in entry["seed_runs"]]
    assert common
    for s in common:
        assert cell["seeds"][data["seeds"].index(s)] == pytest.approx(entry["seed_runs"][str(s)]["w2_100"], rel=1e-9)


@stored
def test_the_summary_is_that_of_the_seeds():
    data = _data()
    for variant, by_step in data["results"].items():
        assert set(by_step) == {str(data["live_steps"]), str(data["steps"])}
        for cells in by_step.values():
            for key, c in cells.items():
                assert len(c["seeds"]) == len(data["seeds"]) and all(math.isfinite(v) for v in c["seeds"])
                assert c["mean"] == pytest.approx(statistics.fmean(c["seeds"]), rel=1e-12)
                assert c["sd"] == pytest.approx(statistics.stdev(c["seeds"]), rel=1e-12)
