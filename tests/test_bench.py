"""The benchmark's seed sweep of notebook 06 reads what the notebook prints, and counts claims per seed."""
from __future__ import annotations

import json

import pytest

from tools.bench import quality_06
from tools.bench.run import MARGIN, budget


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
    assert set(show["rows"]) == {"reverse SDE", "probability flow ODE", "FM-VP", "I-CFM", "OT-CFM", "reflow"}
    assert all(len(r["w2"]) == 6 for r in show["rows"].values())
    assert show["floor"] < show["goal"] < show["ceiling"] and show["tol"] > 0
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
    assert budget("06_couplings_showdown") == pytest.approx(90 / 0.55) and MARGIN == 2.0
    assert budget("01_change_of_variables") < budget("06_couplings_showdown")
