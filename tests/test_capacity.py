"""Notebook 06's capacity experiment (tools/bench/capacity_06.py, weights/06_capacity.json).

- the stored results belong to the code as it stands (its hash) and to its sizes, each with 3 seeds or more;
- a short run of every size is reproduced, and the course's size at seed 0 is the converged reference
  06_otcfm, number for number;
- the floor, the data's precision and the first data reference point are recomputed;
- the stored means, standard deviations, ratios and verdicts are those of the stored per-seed values.
"""
from __future__ import annotations

import json
import math
import statistics

import pytest

from tools.bench import capacity_06 as cap
from tools.bench import quality_06
from utils import references

stored = pytest.mark.skipif(not cap.OUT.exists(), reason="no stored run: nice -n 10 python -m tools.bench.capacity_06")


def _data() -> dict:
    return json.loads(cap.OUT.read_text(encoding="utf-8"))


def test_the_goal_is_the_bench_s():
    assert (cap.GOAL_W2_RATIO, cap.GOAL_PRECISION) == (quality_06.GOAL_W2_RATIO, quality_06.GOAL_PRECISION)
    assert cap.CONFIGS[0] == dict(name="3 x 64", depth=3, hidden=64, steps=cap.REFERENCE_STEPS)  # the course's


@stored
def test_the_stored_run_belongs_to_the_code():
    data = _data()
    assert data["code_hash"] == cap.code_hash(), (
        "the capacity code changed since the stored run: `nice -n 10 python -m tools.bench.capacity_06`")
    assert data["scale_steps"] == 1.0 and len(data["seeds"]) >= 3
    assert data["configs"] == [dict(c) for c in cap.CONFIGS]
    assert list(data["results"]) == [c["name"] for c in cap.CONFIGS]
    for cfg in cap.CONFIGS:
        assert data["results"][cfg["name"]]["steps"] == cfg["steps"]


@stored
def test_a_short_run_of_every_size_is_reproduced():
    data = _data()
    for cfg in cap.CONFIGS:
        run = cap.train_size(cfg, data["probe_seed"], data["probe_steps"])
        assert run["metrics"]["w2_100"] == pytest.approx(data["probes"][cfg["name"]], rel=1e-9)


@stored
def test_the_course_size_is_the_converged_reference():
    data, entry = _data(), references.manifest().get("06_otcfm")
    if entry is None or entry["code_hash"] != references.code_hash("06_otcfm") or entry["steps"] != cap.REFERENCE_STEPS:
        pytest.skip("06_otcfm is not stored for this code and length")
    cell = data["results"]["3 x 64"]["cells"]["w2_100"]
    common = [s for s in data["seeds"] if str(s) in entry["seed_runs"]]
    assert common
    for s in common:
        assert cell["seeds"][data["seeds"].index(s)] == pytest.approx(entry["seed_runs"][str(s)]["w2_100"], rel=1e-9)


@stored
def test_the_scale_is_recomputed():
    data = _data()
    floor, sd, precision = cap.scale()
    assert (data["floor"], data["floor_sd"], data["data_precision"]) == pytest.approx((floor, sd, precision), rel=1e-12)
    assert data["goal"]["w2_max"] == pytest.approx(cap.GOAL_W2_RATIO * floor, rel=1e-12)
    assert data["goal"]["precision_min"] == pytest.approx(cap.GOAL_PRECISION * precision, rel=1e-12)
    from utils.datasets import moons
    from utils.metrics import w2
    from utils.references import _float64

    with _float64():
        first = w2(moons(1000, seed=cap.EVAL_DATA_SEED + 1), moons(1000, seed=cap.EVAL_DATA_SEED))
    assert data["references"]["data"]["cells"]["w2_100"]["seeds"][0] == pytest.approx(first, rel=1e-12)


@stored
def test_the_summary_and_the_verdicts_are_those_of_the_seeds():
    data = _data()
    for group in ("results", "references"):
        for name, r in data[group].items():
            for key, c in r["cells"].items():
                assert all(math.isfinite(v) for v in c["seeds"])
                if group == "results":
                    assert len(c["seeds"]) == len(data["seeds"])
                assert c["mean"] == pytest.approx(statistics.fmean(c["seeds"]), rel=1e-12)
                assert c["sd"] == pytest.approx(statistics.stdev(c["seeds"]), rel=1e-12)
            w2_ratio = r["cells"]["w2_100"]["mean"] / data["floor"]
            p_ratio = r["cells"]["precision_100"]["mean"] / data["data_precision"]
            assert r["w2_ratio"] == pytest.approx(w2_ratio, rel=1e-12)
            assert r["precision_ratio"] == pytest.approx(p_ratio, rel=1e-12)
            assert r["meets_w2"] == (w2_ratio <= cap.GOAL_W2_RATIO)
            assert r["meets_precision"] == (p_ratio >= cap.GOAL_PRECISION)
            assert r["meets_goal"] == (r["meets_w2"] and r["meets_precision"])
        for name, r in data["results"].items():
            traces = r["trace"]
            assert len(traces) == len(data["seeds"]) and all(tr[-1][0] == r["steps"] for tr in traces)
            assert [tr[-1][1] for tr in traces] == r["cells"]["w2_100"]["seeds"]
            drift = statistics.fmean(abs(tr[-1][1] - tr[-2][1]) for tr in traces)
            assert r["drift_last_20pct"] == pytest.approx(drift, rel=1e-12)
            assert r["converged"] == (drift < r["cells"]["w2_100"]["sd"])


@stored
def test_the_bench_prints_every_size_and_reference_point():
    data = _data()
    rows = quality_06.capacity_rows()
    assert len(rows) == len(data["results"]) + len(data["references"])
    assert all(r["name"].startswith("06 capacity: ") for r in rows)
