"""Notebook 07's class-conditional digit model, trained to convergence (issue 19).

The recipe is the notebook's own, through the same code: ``utils.guidance.train_guided`` (the loop of
notebook 07's training cell: OT path, label dropout 0.2, Adam 2e-3 with a cosine decay, batches of 256
training digits) on a ``ConditionalMLP`` (64 pixels, 10 classes, 3 x 256) built right after
``seed_everything(seed)``, in float64 on the CPU. The notebook trains ``LIVE_STEPS``; ``make weights``
runs the same call for ``STEPS`` (the cosine schedule stretches over the longer run).

    from utils.references import load_reference
    model, entry = load_reference("07_digits")
    entry["metrics"]["accuracy_w1"], entry["metrics"]["fid_w1"]   # the notebook's measurements at w = 1

The judged metric is ``test_cfm_loss``: the conditional flow matching loss on the 360 held-out digits with
their labels (10 fixed draws of noise and time each). Beside it, for every guidance weight of the notebook
(``W_VALUES``), its measurements with its seeds (20 Euler steps): ``accuracy_w`` and ``worst_w`` (the
reference classifier on 100 digits per requested class), ``nn_w`` (their median distance to the nearest
training digit), ``w2_w`` and ``fid_w`` (360 digits with the held-out labels against the held-out digits,
W2 in pixels and the mini-FID in the classifier's features). Keys end in the weight: ``accuracy_w0.5``.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from .cfm import T_MAX, cfm_loss
from .digits import ReferenceClassifier, frechet_distance, load_digits_split, nn_distances, per_class_accuracy
from .guidance import TRAINING, drop_labels, guided_velocity, sample_guided, train_guided
from .metrics import w2
from .models import ConditionalMLP
from .paths import OTPath

__all__ = ["NAME", "LIVE_STEPS", "STEPS", "W_VALUES", "SAMPLING_STEPS", "measure_digits", "metrics_table"]

NAME = "07_digits"
LIVE_STEPS = TRAINING["num_steps"]  # 700, what notebook 07 trains live
STEPS = 4 * LIVE_STEPS
W_VALUES = (0, 0.5, 1, 2, 3)
SAMPLING_STEPS = 20
RECIPE = {k: v for k, v in TRAINING.items() if k not in ("num_steps", "seed")}


def _data():
    return load_digits_split()  # cached per default dtype by utils.digits


@lru_cache(maxsize=1)
def _classifier() -> ReferenceClassifier:
    return ReferenceClassifier(load_digits_split())


def _build() -> ConditionalMLP:
    return ConditionalMLP(dim=64, num_classes=10, hidden=RECIPE["hidden"], depth=RECIPE["depth"])


def _train(model, num_steps, generator, callback):
    data = _data()
    train_guided(data.x_train, data.y_train, num_steps=num_steps, batch_size=RECIPE["batch_size"], lr=RECIPE["lr"],
                 p_uncond=RECIPE["p_uncond"], hidden=RECIPE["hidden"], depth=RECIPE["depth"],
                 seed=int(generator.initial_seed()), device=torch.device("cpu"), desc="07 reference",
                 model=model, callback=callback)


def measure_digits(model, w_values=W_VALUES, sampling_steps: int = SAMPLING_STEPS) -> dict:
    """Notebook 07's measurements of ``model`` for each guidance weight, with the notebook's seeds:
    {w: dict(accuracy, worst, nn, w2, fid)} (see the module docstring)."""
    data, classifier = _data(), _classifier()
    feats_test = classifier.features(data.x_test)
    requested = torch.arange(10).repeat_interleave(100)

    def generate(labels, w, seed):
        x0 = torch.randn(len(labels), 64, generator=torch.Generator().manual_seed(seed), dtype=data.x_test.dtype)
        return sample_guided(model, x0, labels, w, sampling_steps).clamp(-1, 1)

    out = {}
    with torch.no_grad():
        for w in w_values:
            x = generate(requested, w, seed=2)
            pred = classifier.predict(x)
            like_test = generate(data.y_test, w, seed=3)
            out[w] = dict(accuracy=(pred == requested).double().mean().item(),
                          worst=per_class_accuracy(pred, requested).min().item(),
                          nn=nn_distances(x, data.x_train).median().item(), w2=w2(like_test, data.x_test),
                          fid=frechet_distance(classifier.features(like_test), feats_test))
    return out


def _evaluate(model) -> dict:
    data = _data()
    g = torch.Generator().manual_seed(1001)
    x1, y = data.x_test.repeat(10, 1), data.y_test.repeat(10)
    x0 = torch.randn(x1.shape, generator=g, dtype=x1.dtype)
    t = torch.rand(len(y), generator=g, dtype=x1.dtype) * T_MAX
    loss = cfm_loss(lambda x, s: model(x, s, y), OTPath(sigma_min=0.0), x0, x1, t).item()
    metrics = {"test_cfm_loss": loss}
    for w, r in measure_digits(model).items():
        metrics.update({f"{key}_w{w}": value for key, value in r.items()})
    return metrics


def metrics_table(metrics: dict, w_values=W_VALUES) -> dict:
    """A manifest entry's metrics (``entry["metrics"]``) back as {w: dict(accuracy, worst, nn, w2, fid)}."""
    return {w: {key: metrics[f"{key}_w{w}"] for key in ("accuracy", "worst", "nn", "w2", "fid")} for w in w_values}


def _register() -> None:
    from . import cfm, digits, guidance, models, paths
    from .references import register_reference

    code = (guidance.train_guided, drop_labels, guided_velocity, sample_guided, models.ConditionalMLP,
            models.time_features, cfm.cfm_loss, paths.OTPath, digits.load_digits_split, digits.to_unit_range,
            _data, measure_digits)
    register_reference(NAME, build=_build, train=_train, evaluate=_evaluate, metric="test_cfm_loss", steps=STEPS,
                       seed=0, spread_seeds=(1, 2), code=code, params=dict(RECIPE), notebook="07",
                       description="notebook 07's class-conditional model (ConditionalMLP 3 x 256, OT path, label "
                                   "dropout 0.2, Adam 2e-3 cosine, batch 256, float64, CPU); judged on the CFM "
                                   "loss of the 360 held-out digits")


_register()
