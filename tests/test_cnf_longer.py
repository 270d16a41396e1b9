"""The CNF's recipe trained longer (tools/bench/cnf_longer_03.py, weights/03_cnf_longer.json).

- the stored run belongs to the code as it stands (its hash, which covers the recipe's own code hash);
- a short run of seed 0 is reproduced, number for number;
- the floor is recomputed, and the summary is that of the stored per-seed runs;
- the bench prints it beside the goal.
"""
from __future__ import annotations

import json
import statistics

import pytest

from tools.bench import cnf_longer_03 as longer
from tools.bench import quality_02_03
from utils import references

stored = pytest.mark.skipif(not longer.OUT.exists(), reason="no stored run: nice -n 10 python -m tools.bench.cnf_longer_03")


def _data() -> dict:
    return json.loads(longer.OUT.read_text(encoding="utf-8"))


def test_the_goal_is_the_bench_s():
    assert longer.GOAL == quality_02_03.GOALS["03_cnf"]


@stored
def test_the_stored_run_belongs_to_the_code():
    data = _data()
    assert data["code_hash"] == longer.code_hash(), (
        "the CNF recipe or this measurement changed since the stored run: `nice -n 10 python -m tools.bench.cnf_longer_03`")
    assert data["steps"] == longer.LONG_STEPS == 2 * references.recipe("03_cnf").steps
    assert [r["seed"] for r in data["runs"]] == data["seeds"] and len(data["seeds"]) >= 2
    for r in data["runs"]:
        assert r["steps"] == data["steps"] and r["trace"][-1] == [data["steps"], r["test_nll"]]


@stored
def test_a_short_run_is_reproduced():
    data = _data()
    assert longer.train(data["probe_seed"], data["probe_steps"])["test_nll"] == pytest.approx(data["probe"], rel=1e-9)


@stored
def test_floor_and_summary_follow_from_the_runs():
    data = _data()
    assert data["floor"] == pytest.approx(longer.floor(), rel=1e-12)
    entry = references.manifest()["03_cnf"]
    summary = longer.summarise(data["runs"], data["floor"], entry)
    assert json.loads(json.dumps(summary)) == data["summary"]
    assert summary["mean_final"] == pytest.approx(statistics.fmean(r["test_nll"] for r in data["runs"]))


def test_the_summary_reads_the_trace():
    runs = [dict(seed=0, test_nll=1.3, trace=[[10, 2.0], [20, 1.25], [30, 1.3]]),
            dict(seed=1, test_nll=4.0, trace=[[10, 1.4], [20, 3.0], [30, 4.0]])]
    s = longer.summarise(runs, 1.15, dict(seed_metrics={"0": 1.31, "1": 1.33}, steps=15, seed_mean=1.32))
    assert s["seeds"]["0"] == dict(final=1.3, best=1.25, best_step=20, short=1.31, worse_than_short=False,
                                   training_solver=None)
    assert s["seeds"]["1"]["best_step"] == 10 and s["seeds"]["1"]["worse_than_short"]
    assert s["any_worse_than_short"] and not s["meets_goal"]
    assert s["gap"] == pytest.approx((1.3 + 4.0) / 2 - 1.15)
    assert s["moved"] is None and s["converged_by_length"] is None  # no stored seed sd: no length test


def test_the_summary_applies_the_length_test_on_the_reference_s_seeds():
    runs = [dict(seed=k, test_nll=v, trace=[[30, v]]) for k, v in enumerate((1.30, 1.31, 1.32))]
    stored = dict(seed_metrics={"0": 1.33, "1": 1.32, "2": 1.34}, steps=15, seed_mean=1.33, seed_sd=0.01)
    s = longer.summarise(runs, 1.15, stored)
    assert s["moved"] == pytest.approx(-0.02) and s["converged_by_length"] is False  # moved twice the seed sd
    assert s["sd_final"] == pytest.approx(0.01)
    assert longer.summarise(runs, 1.15, dict(stored, seed_sd=0.03))["converged_by_length"] is True
    assert longer.summarise(runs[:2], 1.15, stored)["converged_by_length"] is None  # not the reference's seeds


@stored
def test_the_bench_prints_it():
    rows = quality_02_03.longer_cnf_rows()
    assert len(rows) == 1 and rows[0]["value"] == f"{_data()['summary']['mean_final']:.3f}"
    summary = _data()["summary"]
    assert ("NOT met" in rows[0]["note"]) == (not summary["meets_goal"])
    if summary.get("converged_by_length") is not None:
        assert rows[0]["note"].endswith(("" if summary["converged_by_length"] else "NOT ") + "converged by length")
