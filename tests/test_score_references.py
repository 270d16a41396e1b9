"""Notebook 04's converged score model (utils.score_references) and the noise-level sweep (G1).

- the recipe is the notebook's: its training set, its initial weights;
- the sweep's end points are the two samplers of the notebook: eps = 0 the probability flow (Euler),
  eps = 1 the reverse SDE (Euler-Maruyama), on the same noise and draws;
- the stored sweep belongs to the stored weights, and its first learned row is reproduced from them;
- the table prints and its readings hold.
"""
from __future__ import annotations

import math

import pytest
import torch

from utils import references
from utils import score_references as sr
from utils.mixtures import eight_gaussians_mixture
from utils.sampler_quality import quality_against_nfe
from utils.score_matching import ScoreModel
from utils.runtime import seed_everything


def test_registered_with_three_seeds():
    assert sr.NAME in references.registered()
    rec = references.recipe(sr.NAME)
    assert rec.metric == "score_err" and len({rec.seed, *rec.spread_seeds}) == 3 and rec.steps > sr.LIVE_STEPS


def test_the_recipe_is_the_notebooks():
    # notebook 04: target.sample(20_000, 5, dtype=float64) and train_score_model(..., seed=0, dtype=float64)
    assert torch.equal(sr.training_data(), eight_gaussians_mixture().sample(20_000, 5, dtype=torch.float64))
    with references._float64():
        seed_everything(0)
        built = sr._build()
    seed_everything(0)
    nb = ScoreModel(sr._sde()).to(torch.float64)  # what train_score_model does with model=None, dtype=float64
    torch.manual_seed(0)
    for layer in nb.modules():
        if isinstance(layer, torch.nn.Linear):
            layer.reset_parameters()
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), nb.state_dict().values()))


def test_sweep_ends_are_the_probability_flow_and_the_reverse_sde():
    target = eight_gaussians_mixture()
    score = target.score_fn(sr._sde())
    rows = sr.noise_sweep({"exact": score}, eps=(0.0, 1.0), nfes=(5,), n=200, repeats=2, seed=3)
    ref = quality_against_nfe(sr._sde(), score, target, sde_steps=[5], ode=[("euler", 5)], n=200, repeats=2, seed=3,
                              dtype=torch.float64)
    by_eps = {r["eps"]: r["w2"] for r in rows}
    assert by_eps[0.0] == pytest.approx(next(r["w2"] for r in ref if r["sampler"] == "ODE"), rel=1e-9)
    assert by_eps[1.0] == pytest.approx(next(r["w2"] for r in ref if r["sampler"] == "SDE"), rel=1e-9)
    assert [(r["score"], r["nfe"]) for r in rows] == [("exact", 5)] * 2


def test_summary_gaps_are_paired_per_seed():
    data = dict(nfes=[10], eps=[0.0], floor=0.1, floor_spread=0.02, repeats=4, baseline=0.9, n=100,
                rows=[dict(score="exact", nfe=10, eps=0.0, w2=0.20), dict(score="seed 0", nfe=10, eps=0.0, w2=0.25),
                      dict(score="seed 1", nfe=10, eps=0.0, w2=0.23), dict(score="seed 2", nfe=10, eps=0.0, w2=0.27)])
    c = sr.sweep_summary(data)["cells"][(10, 0.0)]
    assert c["gaps"] == pytest.approx([0.05, 0.03, 0.07]) and c["gap"] == pytest.approx(0.05)
    assert c["gap_sd"] == pytest.approx(0.02) and c["learned"] == pytest.approx(0.25)
    assert sr.sweep_summary(data)["noise"] == pytest.approx(0.01)


stored = pytest.mark.skipif(not sr.NOISE_SWEEP.exists() or sr.NAME not in references.manifest(),
                            reason="04_score or its sweep not trained yet")


@stored
def test_the_stored_sweep_belongs_to_the_stored_weights():
    data = sr.load_noise_sweep()
    entry = references.manifest()[sr.NAME]
    assert data["weights_sha256"] == entry["weights_sha256"], (
        "the noise sweep was run on other weights: `python -m utils.score_references sweep`")
    assert data["code_hash"] == entry["code_hash"]
    labels = {r["score"] for r in data["rows"]}
    assert labels == {"exact", "seed 0", "seed 1", "seed 2"}
    assert len(data["rows"]) == len(labels) * len(data["eps"]) * len(data["nfes"])


@stored
def test_the_stored_sweep_is_reproduced_from_the_weights():
    data = sr.load_noise_sweep()
    model, entry = references.load_reference(sr.NAME)
    k = min(data["nfes"])
    rows = sr.noise_sweep({"seed 0": model}, eps=(0.0, 1.0), nfes=(k,))
    stored_rows = {(r["score"], r["nfe"], r["eps"]): r["w2"] for r in data["rows"]}
    for r in rows:
        assert r["w2"] == pytest.approx(stored_rows[("seed 0", k, r["eps"])], rel=1e-6)


@stored
def test_show_noise_sweep_prints_the_table_and_its_readings_hold(capsys):
    sm = sr.show_noise_sweep()
    out = capsys.readouterr().out
    assert "floor" in out and "baseline" in out and "gap" in out
    assert all(math.isfinite(c["gap"]) for c in sm["cells"].values())


def test_the_sweep_split_by_score_gives_the_same_rows():
    """``retrain`` and ``sweep`` run each score's rows in its own process: the rows must be those of one call."""
    from utils.references import _state_bytes

    model, _ = references.load_reference(sr.NAME)
    grid = dict(eps=(0.0, 1.0), nfes=(5,), n=200, repeats=2)
    together = sr.noise_sweep({"exact": sr.eight_gaussians_mixture().score_fn(sr._sde()), "seed 0": model}, **grid)
    apart = sr._sweep_one("exact", None, **grid) + sr._sweep_one("seed 0", _state_bytes(model), **grid)
    assert apart == together
