"""Notebook 08's few-step digit models, trained to convergence: distillation, consistency, shortcut, MeanFlow.

The recipes of ``utils.fewstep_digits``, class-conditional on notebook 07's digits: a 3 x 128 network (half
07's width, so that four fit the weights cap), batches of 256, Adam 2e-3 decayed to 0 on a cosine
schedule, ``STEPS[method]`` steps, built right after ``seed_everything(seed)``, float64 on the CPU. Distillation
and consistency distillation learn from notebook 07's converged flow (``07_digits``, read without
guidance), which must exist; shortcut and MeanFlow learn from the 1437 training digits alone.

    from utils.references import load_reference
    model, entry = load_reference("08_digits_meanflow")   # also 08_digits_distill, _consistency, _shortcut
    entry["metrics"]["accuracy_1"], entry["metrics"]["w2_1"]

Metrics (``evaluate_digits``), at 1, 2 and 4 NFE (suffix ``_1``, ``_2``, ``_4``): ``w2`` (360 samples for the
held-out labels, from one fixed noise draw, against the 360 held-out digits; the judged metric is
``w2_1``), ``accuracy`` (07's reference classifier), ``nn`` (median distance to the nearest training
digit) and ``spread`` (within-class spread, ``utils.fewstep_digits.within_class_spread``).
"""
from __future__ import annotations

from functools import lru_cache

import torch

from .digits import ReferenceClassifier, load_digits_split
from .fewstep_digits import (ConditionalTwoTimeMLP, digit_sampler, judge_samples, train_consistency_digits,
                             train_distilled_digits, train_meanflow_digits, train_shortcut_digits)
from .models import ConditionalMLP

__all__ = ["NAMES", "STEPS", "NFES", "RECIPE", "EVAL_NOISE_SEED", "evaluate_digits", "metrics_rows"]

STEPS = {"distillation": 4000, "consistency": 12000, "shortcut": 4000, "MeanFlow": 4000}
# consistency learns from its own later times (a moving target): at 2e-3 its error grows again while the
# rate is high, so it takes half the rate for longer
LR = {"consistency": 1e-3}
NFES = (1, 2, 4)
EVAL_NOISE_SEED = 11
RECIPE = dict(hidden=128, depth=3, batch_size=256, lr=2e-3)
TEACHER_STEPS = {"distillation": 20, "consistency": 10}  # the teacher's Euler grid (consistency: fewer levels)
NUM_PATHS = 4000
NAMES = {"distillation": "08_digits_distill", "consistency": "08_digits_consistency",
         "shortcut": "08_digits_shortcut", "MeanFlow": "08_digits_meanflow"}


@lru_cache(maxsize=1)
def _classifier() -> ReferenceClassifier:
    return ReferenceClassifier(load_digits_split())


def _teacher():
    from .references import load_reference
    return load_reference("07_digits")[0]


def _build(method: str):
    cls = ConditionalMLP if method in TEACHER_STEPS else ConditionalTwoTimeMLP
    return lambda: cls(64, 10, hidden=RECIPE["hidden"], depth=RECIPE["depth"])


def _train(method: str):
    def train(model, num_steps, generator, callback):
        kw = dict(num_steps=num_steps, batch_size=RECIPE["batch_size"], lr=LR.get(method, RECIPE["lr"]),
                  seed=int(generator.initial_seed()), model=model, callback=callback, desc=f"{method} (digits)")
        if method in TEACHER_STEPS:
            fn = train_distilled_digits if method == "distillation" else train_consistency_digits
            fn(_teacher(), num_paths=NUM_PATHS, teacher_steps=TEACHER_STEPS[method], **kw)
        else:
            data = load_digits_split()
            fn = train_shortcut_digits if method == "shortcut" else train_meanflow_digits
            fn(data.x_train, data.y_train, **kw)
    return train


def evaluate_digits(sampler) -> dict:
    """w2, accuracy, nn and spread at 1, 2 and 4 NFE of ``sampler(x0, labels, nfe)`` (see the module docstring)."""
    data = load_digits_split()
    x0 = torch.randn(data.x_test.shape, generator=torch.Generator().manual_seed(EVAL_NOISE_SEED),
                     dtype=data.x_test.dtype)
    out = {}
    with torch.no_grad():
        for nfe in NFES:
            row = judge_samples(sampler(x0, data.y_test, nfe), data.y_test, data, _classifier())
            out.update({f"{key}_{nfe}": value for key, value in row.items()})
    return {"w2_1": out.pop("w2_1"), **out}


def metrics_rows(metrics: dict) -> dict:
    """A manifest entry's metrics back as {nfe: dict(accuracy, nn, w2, spread)}."""
    return {n: {key: metrics[f"{key}_{n}"] for key in ("accuracy", "nn", "w2", "spread")} for n in NFES}


def _teacher_sha() -> str | None:
    from .references import manifest
    return manifest().get("07_digits", {}).get("weights_sha256")


def _register() -> None:
    from . import digits, fewstep, fewstep_digits, models, solvers
    from .references import register_reference

    fd, f = fewstep_digits, fewstep
    code = (fd.ConditionalTwoTimeMLP, fd._bind, fd._teacher_paths, fd._data_batch, fd.train_distilled_digits,
            fd.train_consistency_digits, fd.train_shortcut_digits, fd.train_meanflow_digits, f.consistency_fn,
            f._loop, f.consistency_target, f.shortcut_target, f.meanflow_target, models.ConditionalMLP,
            models.time_features, solvers.solve_ode, digits.load_digits_split, _teacher, _build, _train,
            evaluate_digits)
    # the teacher's weights are part of the recipe: retraining 07_digits makes these stale
    params = {**RECIPE, "num_paths": NUM_PATHS, "teacher_steps": TEACHER_STEPS, "teacher_sha": _teacher_sha(),
              "eval_noise_seed": EVAL_NOISE_SEED}
    for method, key in NAMES.items():
        register_reference(key, build=_build(method), train=_train(method),
                           evaluate=lambda model, method=method: evaluate_digits(digit_sampler(method, model)),
                           params={**params, "model": method, "lr": LR.get(method, RECIPE["lr"])}, metric="w2_1", steps=STEPS[method], seed=0,
                           spread_seeds=(1, 2), code=code, notebook="08",
                           description=f"notebook 08's {method} model on 07's digits (class-conditional, 3 x 128 "
                                       f"SELU, Adam 2e-3 cosine, batch 256, float64, CPU): W2 of 360 one-step "
                                       f"samples against the held-out digits")


_register()
