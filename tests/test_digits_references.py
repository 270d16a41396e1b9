"""Notebook 07's converged digit model (utils.digits_references).

- registered with three seeds, judged on the held-out CFM loss;
- the recipe's run is the notebook's loop: the same weights as ``train_guided`` (the notebook's training cell)
  after the same number of steps, from the model built right after ``seed_everything``;
- the manifest's metrics come back as the notebook's table, one row per guidance weight.
"""
from __future__ import annotations

import pytest
import torch

from utils import digits_references as dr
from utils import references
from utils.guidance import TRAINING, train_guided


def test_registered_with_three_seeds():
    assert dr.NAME in references.registered()
    rec = references.recipe(dr.NAME)
    assert rec.metric == "test_cfm_loss" and len({rec.seed, *rec.spread_seeds}) == 3
    assert rec.steps > dr.LIVE_STEPS == TRAINING["num_steps"]


def test_the_recipe_runs_the_notebooks_loop():
    steps = 3
    calls = []
    with references._float64():
        generator = references.seed_everything(0)
        model = references.recipe(dr.NAME).build()
        dr._train(model, steps, generator, calls.append)
        data = dr._data()
        nb, _ = train_guided(data.x_train, data.y_train, num_steps=steps, seed=0, device=torch.device("cpu"))
    assert calls == [1, 2, 3]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), nb.state_dict().values()))


def test_metrics_table_round_trip():
    keys = ("accuracy", "worst", "nn", "w2", "fid")
    metrics = {f"{k}_w{w}": float(i) for i, w in enumerate(dr.W_VALUES) for k in keys}
    table = dr.metrics_table(metrics)
    assert list(table) == list(dr.W_VALUES) and table[dr.W_VALUES[1]]["fid"] == 1.0


@pytest.mark.skipif(dr.NAME not in references.manifest(), reason="07_digits not trained yet")
def test_the_stored_metrics_hold_every_weight_of_the_notebook():
    entry = references.manifest()[dr.NAME]
    table = dr.metrics_table(entry["metrics"])
    assert all(0 <= r["accuracy"] <= 1 and r["w2"] > 0 and r["fid"] >= 0 for r in table.values())
    assert len(entry["seed_metrics"]) == 3
