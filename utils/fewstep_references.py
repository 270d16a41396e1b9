"""Notebook 08's few-step models, trained to convergence: distillation, consistency, shortcut, MeanFlow.

The recipe is the notebook's own, through the same code (``utils.fewstep``): batches of 256, Adam 3e-3
decayed to 0 on a cosine schedule, a 3 x 64 SELU network built right after ``seed_everything(seed)``.
The notebook trains ``LIVE_STEPS``; ``make weights`` runs the same call with ``STEPS[method]``. Distillation and
consistency distillation learn from notebook 06's converged reflow (``06_reflow``), which must exist.

    from utils.references import load_reference
    model, entry = load_reference("08_meanflow")   # also "08_distill", "08_consistency", "08_shortcut"

``w2_1`` is the exact W2 between 1000 one-step samples (from notebook 06's noise draw) and 06's 1000
held-out moons points; ``w2_2`` and ``w2_4`` at 2 and 4 NFE, precision and recall at 1. The judged metric,
``w2_1_mean8``, is the mean of the one-step W2 over 8 other fixed draws (``utils.metrics.w2_draws``): the
same quantity with about sqrt(8) less sampling noise.
"""
from __future__ import annotations

import torch

from .datasets import moons
from .fewstep import (LIVE_RECIPE, TwoTimeMLP, consistency_sampler, meanflow_sampler, shortcut_sampler,
                      train_consistency, train_distilled, train_meanflow, train_shortcut)
from .metrics import precision_recall, w2, w2_draws
from .models import TimeMLP

__all__ = ["LIVE_STEPS", "STEPS", "NAMES", "NFES", "SAMPLERS", "evaluate_few_step"]

LIVE_STEPS = 200
STEPS = {"distillation": 8000, "consistency": 8000, "shortcut": 8000, "MeanFlow": 32000}  # MeanFlow moved at 8000 and 16000
NFES = (1, 2, 4)
EVAL_NOISE_SEED, EVAL_DATA_SEED = 7, 1001  # notebook 06's evaluation draw
NAMES = {"distillation": "08_distill", "consistency": "08_consistency", "shortcut": "08_shortcut",
         "MeanFlow": "08_meanflow"}
SAMPLERS = {"distillation": consistency_sampler, "consistency": consistency_sampler,
            "shortcut": shortcut_sampler, "MeanFlow": meanflow_sampler}


def _seed(generator: torch.Generator) -> int:
    return int(generator.initial_seed())


def _teacher():
    from .references import load_reference
    return load_reference("06_reflow")[0]


def _train(kind: str):
    def train(model, num_steps, generator, callback):
        kw = dict(num_steps=num_steps, model=model, seed=_seed(generator), callback=callback, desc=kind,
                  **LIVE_RECIPE)
        if kind == "distillation":
            train_distilled(_teacher(), **kw)
        elif kind == "consistency":
            train_consistency(_teacher(), **kw)
        elif kind == "shortcut":
            train_shortcut(moons, **kw)
        else:
            train_meanflow(moons, **kw)
    return train


def evaluate_few_step(sampler) -> dict:
    """W2 at 1, 2 and 4 NFE, precision and recall at 1 NFE, of ``sampler(x0, nfe)`` (06's noise and data)."""
    x0 = torch.randn(1000, 2, generator=torch.Generator().manual_seed(EVAL_NOISE_SEED), dtype=torch.float64)
    ref = moons(1000, seed=EVAL_DATA_SEED).double()
    out = {}
    with torch.no_grad():
        for nfe in NFES:
            x = sampler(x0, nfe)
            out[f"w2_{nfe}"] = w2(x, ref)
            if nfe == 1:
                out["precision_1"], out["recall_1"] = precision_recall(x, ref)
        out["w2_1_mean8"] = w2_draws(lambda z: sampler(z, 1), moons)
    return {k: out[k] for k in ("w2_1", "w2_2", "w2_4", "precision_1", "recall_1", "w2_1_mean8")}


def _register() -> None:
    from . import couplings, datasets, fewstep, metrics, models, solvers
    from .references import register_reference

    # the training code (what the weights depend on); the samplers only evaluate and are not hashed:
    # tests/test_references.py checks that the loaded weights still reproduce the manifest's metrics
    f = fewstep
    code = (f.TwoTimeMLP, f.consistency_fn, f._loop, f._pairs, f._teacher_paths, f.teacher_trajectories,
            f.train_distilled, f.consistency_target, f.train_consistency, f.shortcut_target, f.train_shortcut,
            f.meanflow_target, f.train_meanflow, couplings.ot_couple, models.TimeMLP, models.time_features, datasets.moons,
            solvers.solve_ode, _teacher, _train, evaluate_few_step, metrics.w2, metrics.w2_draws,
            metrics.precision_recall)
    params = {**LIVE_RECIPE, "eval_seeds": [EVAL_NOISE_SEED, EVAL_DATA_SEED]}
    for label, key in NAMES.items():
        build = TimeMLP if label in ("distillation", "consistency") else TwoTimeMLP
        sampler = SAMPLERS[label]
        register_reference(key, build=build, train=_train(label),
                           evaluate=lambda model, sampler=sampler: evaluate_few_step(sampler(model)),
                           params={**params, "model": label}, metric="w2_1_mean8", steps=STEPS[label], seed=0,
                           spread_seeds=(1, 2), code=code, notebook="08",
                           description=f"notebook 08's {label} model (3 x 64 SELU, Adam 3e-3 cosine, batch 256): "
                                       f"W2 of 1000 one-step samples")


_register()
