"""The benchmark's seed sweep of notebook 06 reads what the notebook prints, and counts claims per seed."""
from __future__ import annotations

import json

import pytest

from tools.bench import quality_06
from tools.bench.run import MARGIN, REFERENCE_UNIT_S, budget


def _stored_text() -> str:
    nb = json.loads(quality_06.NOTEBOOK.read_text(encoding="utf-8"))
    return "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")


def test_the_notebook_has_one_seed_line_the_sweep_can_set():
    nb = json.loads(quality_06.NOTEBOOK.read_text(encoding="utf-8"))
    hits = [c for c in nb["cells"] if c["cell_type"] == "code" and quality_06.SEED_LINE.search("".join(c["source"]))]
    assert len(hits) == 1


def test_parse_reads_the_stored_showdown():
    show = quality_06.parse_showdown(_stored_text())
    assert show["nfe"] == [1, 2, 4, 8, 16, 100]
    assert set(show["rows"]) == {"reverse SDE", "probability flow ODE", "DDPM (ancestral)", "FM-VP", "I-CFM", "OT-CFM",
                                 "reflow"}
    assert all(len(r["w2"]) == 6 for r in show["rows"].values())
    assert show["floor"] < show["goal"] < show["baseline"] and show["tol"] > 0
    assert show["rows"]["OT-CFM"]["reach"] == 1  # what the notebook's own claim says
    with pytest.raises(RuntimeError, match="no longer prints"):
        quality_06.parse_showdown("nothing here")


def test_summary_counts_the_seeds_that_support_each_claim():
    show = quality_06.parse_showdown(_stored_text())
    worse = json.loads(json.dumps(show))
    worse["rows"]["OT-CFM"]["reach"] = None
    runs = {0: (show, [{"text": "A", "holds": True}, {"text": "B", "holds": True}]),
            1: (worse, [{"text": "A", "holds": True}, {"text": "B", "holds": False}])}
    rows = {r["name"]: r for r in quality_06.summarise(runs)}
    assert rows["06 claim: A"]["value"] == "2 of 2 seeds" and rows["06 claim: A"]["note"] == ""
    assert rows["06 claim: B"]["value"] == "1 of 2 seeds" and "[1]" in rows["06 claim: B"]["note"]
    assert "[1, '> 100']" in rows["06 showdown: OT-CFM, W2 at NFE"]["note"]
    assert " ± 0.00" in rows["06 showdown: reflow, W2 at NFE"]["value"]  # equal seeds: no spread


def test_budgets_are_in_units_with_a_margin():
    assert budget("06_couplings_showdown") == pytest.approx(90 / REFERENCE_UNIT_S) and MARGIN == 2.0
    assert budget("01_change_of_variables") < budget("06_couplings_showdown")


def test_parse_reads_far_scores_and_samplers_that_never_reach():
    text = ("W2 to 1000 fresh moons points: floor 0.16 (sd 0.05), baseline (untouched noise) 0.60;\n"
            "goal: reverse SDE at 1000 steps 0.38; reached means W2 <= 0.38 + 0.11\n\n"
            f"{'sampler':<20}{'1':>6}{'2':>6}{'reaches':>9}{'P/R at 2':>11}{'P/R at 100':>12}\n"
            f"{'reverse SDE':<20}{'>99':>6}{'11.17':>6}{'>100':>9}{'0.01/0.99':>11}{'0.41/0.97':>12}\n"
            f"{'OT-CFM':<20}{'0.34':>6}{'0.30':>6}{'1':>9}{'0.40/0.98':>11}{'0.45/0.97':>12}\n\n"
            "sampler             1 (a second table, the converged models, is not read)\n")
    show = quality_06.parse_showdown(text)
    assert show["nfe"] == [1, 2] and show["baseline"] == 0.60 and show["goal"] == 0.38 and show["tol"] == 0.11
    assert show["rows"]["reverse SDE"] == {"w2": [float("inf"), 11.17], "reach": None}
    assert show["rows"]["OT-CFM"] == {"w2": [0.34, 0.30], "reach": 1}


def test_converged_rows_judge_the_goal_over_the_seeds(monkeypatch):
    from utils import references
    from utils.showdown_references import LONG_NAMES, NAMES

    runs = lambda *w: {str(s): dict(w2_100=v, precision_100=0.93, w2_100_mean8=0.5) for s, v in enumerate(w)}  # noqa: E731
    fake = {name: dict(seed_runs=runs(0.19, 0.21, 0.20), seed=0, steps=4000, converged=True)
            for name in [*NAMES.values(), *LONG_NAMES.values()]}
    del fake[LONG_NAMES["OT-CFM"]]  # not trained yet
    fake[NAMES["I-CFM"]]["seed_runs"] = runs(0.30, 0.31, 0.29)
    del fake[NAMES["reflow"]]["seed_runs"]  # stored before every seed's metrics were kept
    monkeypatch.setattr(references, "manifest", lambda: fake)
    rows = {r["name"].split(" (")[0]: r for r in quality_06.converged_rows(floor=0.16, data_precision=0.99)}
    assert rows["06 converged OT-CFM"]["value"] == "0.20 ± 0.01"
    assert rows["06 converged OT-CFM"]["note"].startswith("met") and "precision at 100 NFE 0.93 ± 0.00" in rows[
        "06 converged OT-CFM"]["note"] and rows["06 converged OT-CFM"]["note"].endswith(": met")
    assert rows["06 converged I-CFM"]["note"].startswith("NOT met")
    assert rows["06 converged score model, 16 x longer"]["note"].startswith("met")
    assert rows["06 converged reflow"]["value"].startswith("stored without every seed's metrics")
    assert rows["06 converged OT-CFM, 16 x longer"]["value"] == "not trained (make weights)"
    assert rows["06 converged reflow, 16 x longer"]["note"].startswith("met")
    # precision is read over the seeds too: one seed's 0.95 does not hide the others' 0.85 and 0.84
    fake[NAMES["OT-CFM"]]["seed_runs"] = {s: dict(w2_100=w, precision_100=p, w2_100_mean8=0.5)
                                          for s, w, p in [("0", 0.19, 0.95), ("1", 0.20, 0.85), ("2", 0.21, 0.84)]}
    row = {r["name"].split(" (")[0]: r for r in quality_06.converged_rows(floor=0.16, data_precision=0.99)}[
        "06 converged OT-CFM"]
    assert row["value"] == "0.20 ± 0.01" and "precision at 100 NFE 0.88 ± 0.06" in row["note"]
    assert row["note"].endswith("NOT met")


def test_capacity_rows_read_the_stored_experiment(tmp_path):
    cell = lambda *v: dict(mean=sum(v) / len(v), sd=0.01, seeds=list(v))  # noqa: E731
    entry = lambda w, p, ok: dict(cells=dict(w2_100=cell(*w), precision_100=cell(*p), recall_100=cell(0.99, 0.99)),  # noqa: E731
                                  w2_ratio=sum(w) / len(w) / 0.16, precision_ratio=sum(p) / len(p) / 0.99,
                                  meets_w2=ok, meets_precision=ok, meets_goal=ok)
    data = dict(goal=dict(w2_ratio=1.3, w2_max=0.208), floor=0.16,
                results={"4 x 256": dict(entry((0.19, 0.21), (0.95, 0.96), True), steps=12000, converged=False)},
                references={"data": entry((0.16, 0.17), (0.99, 0.99), True)})
    path = tmp_path / "cap.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    rows = quality_06.capacity_rows(path)
    assert [r["name"] for r in rows] == ["06 capacity: OT-CFM 4 x 256 (12000 steps), over 2 seeds: W2 at 100 NFE",
                                         "06 capacity: data (2 samples, no training): W2 at 100 NFE"]
    assert rows[0]["value"] == "0.20 ± 0.01" and rows[0]["note"].startswith("met (1.25 x the floor)")
    assert "NOT converged" in rows[0]["note"] and "NOT converged" not in rows[1]["note"]
    assert quality_06.capacity_rows(tmp_path / "none.json")[0]["value"].startswith("not measured")


def test_convergence_rows_keep_the_rule_and_compare_moons_w2_with_its_noise():
    from tools.bench import quality_convergence as qc

    entry = lambda metric, drift, sd, ok: dict(metric=metric, drift_last_20pct=drift, seed_sd=sd, converged=ok,  # noqa: E731
                                               steps=4000)
    rows = {r["name"].split(" (")[0]: r for r in qc.rows_for(
        {"06_a": entry("w2_100", 0.03, 0.01, False), "06_b": entry("w2_100", 0.08, 0.01, False),
         "02_c": entry("test_nll", 0.001, 0.002, True), "08_digits_d": entry("w2_1", 0.01, 0.02, True),
         "09_e": dict(entry("test_ce", None, 0.1, False)), "06_f": entry("w2_100_mean8", 0.03, 0.01, False)},
        noise=0.05)}
    assert set(rows) == {"convergence of 06_a", "convergence of 06_b", "convergence of 02_c",
                         "convergence of 08_digits_d", "convergence of 06_f"}  # no move stored: no row
    assert rows["convergence of 06_a"]["note"].startswith("NOT converged by the rule")
    assert "the move is smaller than the sampling noise" in rows["convergence of 06_a"]["note"]
    assert "the move is larger than the sampling noise" in rows["convergence of 06_b"]["note"]
    assert rows["convergence of 02_c"]["note"] == "converged by the rule"
    # a mean of 8 draws: its noise is 0.05 / sqrt(8) = 0.018, and 0.03 is larger
    assert "the move is larger than the sampling noise of a mean of 8 W2s (sd 0.018" in rows[
        "convergence of 06_f"]["note"]
    assert "sampling noise" not in rows["convergence of 08_digits_d"]["note"]  # 64-dimensional: another scale
    assert 0.01 < qc.metric_noise() < 0.2


def test_the_calibration_unit_is_a_notebook_run_as_the_course_runs_them():
    """A unit is a fresh kernel doing the notebooks' kinds of work; here with 20 steps, so it is quick."""
    from tools.bench.run import ROOT, calibration_notebook
    from tools.course.execute import run

    nb = calibration_notebook(steps=20)
    assert "torch.set_default_dtype(torch.float64)" in nb.cells[0].source  # as the notebooks that train
    assert "torch.set_num_threads(1)" in nb.cells[0].source
    assert run(nb, ROOT / "solutions", timeout=120) > 0
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "stream" and o.text.startswith("W2 ") for o in outputs)
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the figure was drawn
