"""The length test (tools/bench/length_test.py, weights/length_test.json): recipes trained twice as long.

- the verdict compares the move of the mean final metric with the stored seed spread, both ways;
- every stored result belongs to the code as it stands, ran the recipe's own seeds at its factor of the
  recipe's steps, and its summary follows from its runs and the manifest;
- a short run is reproduced number for number;
- the bench prints one row per result, and marks a stale one;
- every other metric the reference keeps per seed gets the same yardstick (``metric_moves``), and a
  notebook can read the doubled run of the shipped seed (``doubled_metrics``);
- every metric of a stored reference over its seeds (``seed_stats``) matches the statistics module and,
  for the judged metric, the manifest's own mean and spread.
"""
from __future__ import annotations

import json

import pytest

from tools.bench import length_test, quality_convergence
from utils import references
from utils.convergence import (doubled_metrics, length_note, length_result, length_results, metric_moves, moves_note,
                               rule_note, seed_stats)

stored = pytest.mark.skipif(not length_test.OUT.exists(),
                            reason="no stored run: nice -n 10 python -m tools.bench.length_test")


def _entry(sd=0.01, **seed_metrics):
    return dict(metric="w2_100_mean8", steps=100, seed_sd=sd, drift_last_20pct=0.05,
                seed_metrics={"0": 0.30, "1": 0.32, "2": 0.34, **seed_metrics})


def _runs(*values):
    return [dict(seed=s, steps=200, value=v) for s, v in enumerate(values)]


def test_the_verdict_is_the_move_of_the_mean_against_the_seed_spread():
    near = length_test.summarise(_runs(0.295, 0.315, 0.335), _entry())
    assert near["moved"] == pytest.approx(-0.005) and near["converged_by_length"]
    assert near["short_mean"] == pytest.approx(0.32) and near["long_steps"] == 200 and near["short_steps"] == 100
    far = length_test.summarise(_runs(0.25, 0.27, 0.29), _entry())
    assert far["moved"] == pytest.approx(-0.05) and not far["converged_by_length"]
    worse = length_test.summarise(_runs(0.35, 0.37, 0.39), _entry())
    assert worse["moved"] == pytest.approx(0.05) and not worse["converged_by_length"]  # worse is not converged
    assert length_test.summarise(_runs(0.30, 0.32, 0.34), _entry(sd=0.0))["converged_by_length"] is False


def test_the_names_are_registered_references():
    assert set(length_test.NAMES) <= set(references.registered())
    assert length_test.PROBE[0] in references.registered()


def test_the_bench_prints_a_row_per_result_and_marks_a_stale_one():
    result = dict(code_hash="abc", factor=2, summary=length_test.summarise(_runs(0.25, 0.27, 0.29), _entry()))
    rows = quality_convergence.length_rows({"06_x": result})
    assert len(rows) == 1 and rows[0]["value"] == pytest.approx(-0.05)
    assert rows[0]["note"].startswith("NOT converged by length") and "100 -> 200 steps" in rows[0]["name"]
    stale = quality_convergence.length_rows({"06_x": result}, current_hash=lambda name, factor: "other")
    assert stale[0]["note"].startswith("STALE")


def _seed_runs(**per_metric):
    return {str(s): {k: v[s] for k, v in per_metric.items()} for s in range(3)}


def test_every_metric_is_judged_by_its_own_seed_spread():
    entry = dict(_entry(), seed_runs=_seed_runs(w2=(0.30, 0.32, 0.34), precision=(0.80, 0.81, 0.82),
                                             recall=(1.0, 1.0, 1.0)))
    runs = [dict(seed=s, metrics=m) for s, m in enumerate(
        [dict(w2=0.295, precision=0.86, recall=1.0), dict(w2=0.315, precision=0.85, recall=1.0),
         dict(w2=0.335, precision=0.87, recall=1.0)])]
    moves = metric_moves("06_x", runs, entry)
    assert set(moves) == {"w2", "precision", "recall"}
    assert moves["w2"]["moved"] == pytest.approx(-0.005) and moves["w2"]["short_sd"] == pytest.approx(0.02)
    assert moves["w2"]["within"] and not moves["precision"]["within"]
    assert moves["precision"]["moved"] == pytest.approx(0.05)
    assert moves["recall"]["within"]  # no spread, no move: within
    runs[0]["metrics"]["recall"] = 0.99
    assert not metric_moves("06_x", runs, entry)["recall"]["within"]  # no spread, a move: beyond
    del runs[1]["metrics"]["w2"]
    assert "w2" not in metric_moves("06_x", runs, entry)  # a metric missing from one run is not compared
    assert metric_moves("06_x", runs, _entry()) is None  # an entry without seed_runs
    assert metric_moves("06_x", [dict(seed=7, metrics={})], entry) is None  # a seed the entry never trained


def test_the_bench_sorts_the_other_metrics():
    entry = dict(_entry(), seed_runs=_seed_runs(w2_100_mean8=(0.30, 0.32, 0.34), precision=(0.80, 0.81, 0.82),
                                        recall=(0.99, 1.0, 1.0)))
    runs = [dict(seed=s, steps=200, value=v, metrics=dict(w2_100_mean8=v, precision=0.81 + 0.05, recall=0.995))
            for s, v in enumerate((0.25, 0.27, 0.29))]
    result = dict(code_hash="abc", factor=2, runs=runs, summary=length_test.summarise(runs, entry))
    note = quality_convergence.length_rows({"06_x": result}, entries={"06_x": entry})[0]["note"]
    assert "other metrics within their seed sd: recall" in note
    assert "other metrics beyond their seed sd: precision" in note and "w2_100_mean8" not in note.split(";", 2)[-1]


@stored
def test_the_notebooks_read_every_metric_of_the_doubled_run():
    entries = references.manifest()
    for name, r in length_results().items():
        assert doubled_metrics(name) == next(run["metrics"] for run in r["runs"]
                                             if run["seed"] == references.recipe(name).seed)
        moves = metric_moves(name)
        if not entries[name].get("seed_runs"):
            assert moves is None and moves_note(name) == ""
            continue
        judged = moves[r["summary"]["metric"]]  # the judged metric, recomputed from the same runs
        assert judged["moved"] == pytest.approx(r["summary"]["moved"], rel=1e-9, abs=1e-12)
        assert judged["within"] == r["summary"]["converged_by_length"]
        assert all(f"{k} " in moves_note(name) for k in moves)
    assert doubled_metrics("no_such_reference") is None and metric_moves("no_such_reference") is None


@stored
def test_seed_stats_read_every_metric_over_the_seeds():
    entry = dict(seed_runs={"10": dict(w2=0.5, p=0.9), "2": dict(w2=0.3, p=0.7), "1": dict(w2=0.1)})
    stats = seed_stats("any", entry=entry)
    assert stats["w2"]["values"] == [0.1, 0.3, 0.5]  # seed order, not text order
    assert stats["w2"]["mean"] == pytest.approx(0.3) and stats["w2"]["sd"] == pytest.approx(0.2)
    assert "p" not in stats  # a metric missing from one seed is not averaged over the others
    assert seed_stats("any", entry=dict(seed_runs={"0": dict(w2=0.4)}))["w2"]["sd"] is None
    assert seed_stats("any", entry=dict(seed_metrics={"0": 0.4})) is None
    for name, entry in references.manifest().items():  # the judged metric as the manifest summarises it
        if entry.get("seed_runs") and len(entry["seed_runs"]) == len(entry["seed_metrics"]):
            judged = seed_stats(name)[entry["metric"]]
            assert judged["mean"] == pytest.approx(entry["seed_mean"]), name
            assert judged["sd"] == pytest.approx(entry["seed_sd"]), name


def test_every_stored_result_belongs_to_the_code_and_the_manifest():
    results, manifest = length_results(), references.manifest()
    assert results, "the stored file holds no result"
    for name, r in results.items():
        rec = references.recipe(name)
        assert r["code_hash"] == length_test.code_hash(name, r["factor"]), (
            f"{name}'s recipe or the length test changed since its run: python -m tools.bench.length_test --names {name}")
        assert [run["seed"] for run in r["runs"]] == [rec.seed, *rec.spread_seeds]
        assert all(run["steps"] == r["factor"] * rec.steps for run in r["runs"])
        assert all(run["trace"][-1] == [run["steps"], run["value"]] for run in r["runs"])
        summary = length_test.summarise(r["runs"], manifest[name])
        assert json.loads(json.dumps(summary)) == r["summary"]


@stored
def test_a_short_run_is_reproduced():
    probe = json.loads(length_test.OUT.read_text(encoding="utf-8"))["probe"]
    assert (probe["name"], probe["steps"]) == length_test.PROBE
    assert length_test.train(probe["name"], probe["seed"], probe["steps"])["value"] == pytest.approx(probe["value"],
                                                                                                     rel=1e-9)


@stored
def test_the_notebooks_read_the_verdict_as_stored():
    for name, r in length_results().items():
        assert length_result(name) == r["summary"]
        note = length_note(name)
        assert f"twice as long ({r['summary']['long_steps']} steps" in note
        assert ("converged by length" in note) and (("not converged" in note) != r["summary"]["converged_by_length"])
    assert length_result("no_such_reference") is None and length_note("no_such_reference") == ""


def test_the_rule_note_reads_the_manifest_verdict():
    moving = dict(_entry(), converged=False)
    assert rule_note(moving) == ("moved 0.05 over the last 20 % of steps: more than its seed sd: "
                                 "not converged by the rule")
    settled = dict(_entry(), drift_last_20pct=0.00123, converged=True)
    assert rule_note(settled) == "moved 0.001 over the last 20 % of steps: converged by the rule"
    for name, entry in references.manifest().items():
        note = rule_note(entry)
        assert note.endswith("converged by the rule") and ("not converged" in note) != entry["converged"], name
