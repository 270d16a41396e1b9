"""Notebook 09's discrete flow models on the digits (mask and uniform source), trained to convergence,
and the judge that scores generated digits (used by the notebook for its live models too).

The recipe is the notebook's own, through the same code: ``utils.discrete.train_posterior`` with
``utils.discrete.TRAINING`` (a class-conditional ``PosteriorMLP``, 3 x 128 SELU, built right after
``seed_everything(seed)``; batches of 128 training digits, label dropout 0.2, Adam 2e-3 decayed to 0 on a
cosine schedule over the run; kappa_t = t). The notebook trains ``TRAINING["num_steps"]`` steps live;
``make weights`` runs the same call with ``STEPS`` (the cosine schedule stretches over the longer run).

    from utils.references import load_reference
    model, entry = load_reference("09_mask")      # also "09_uniform"

The judged metric is ``test_ce``: the cross-entropy (nats per digit) of the 360 held-out digits under the
posterior, at fixed draws of t and x_t (deterministic, little noise: convergence is judged on it).
``judge_digits`` adds what notebook 07 measures, at each of ``EVAL_STEPS`` CTMC steps with guidance
``EVAL_W``: the classifier's accuracy on 500 requested digits, the median distance to the nearest training
digit, and W2 to the held-out digits (stored as ``accuracy_<steps>``, ``nn_<steps>``, ``w2_<steps>``).
"""
from __future__ import annotations

import torch

from .digits import ReferenceClassifier, load_digits_split, nn_distances
from .discrete import (PosteriorMLP, Schedule, TRAINING, from_tokens, guided_posterior, sample_ctmc, sample_xt,
                       source_sample, to_tokens, token_cross_entropy, train_posterior)
from .metrics import w2

__all__ = ["STEPS", "LEVELS", "EVAL_STEPS", "EVAL_W", "NAMES", "posterior_fn", "generate_discrete",
           "judge_digits", "test_cross_entropy"]

STEPS = 3000  # 10 x the notebook's live run
LEVELS = 17  # the digits' grey levels 0..16
EVAL_STEPS, EVAL_W = (4, 10, 20), 1.0
REQUEST_SEED, TEST_SEED, CE_SEED = 2, 3, 4  # the notebook's sampling seeds; the held-out x_t draws
NAMES = {"mask": "09_mask", "uniform": "09_uniform"}
_CACHE: dict = {}


def _data():
    """The digits split in float64 and the classifier (fitted once per process)."""
    if "data" not in _CACHE:
        with torch.random.fork_rng(devices=[]):
            dtype = torch.get_default_dtype()
            torch.set_default_dtype(torch.float64)
            try:
                data = load_digits_split()
                _CACHE["data"], _CACHE["classifier"] = data, ReferenceClassifier(data)
            finally:
                torch.set_default_dtype(dtype)
    return _CACHE["data"], _CACHE["classifier"]


def posterior_fn(model, labels: torch.Tensor, w: float):
    """(x, t) -> the class-conditional posterior probabilities, guided with weight w (w = 0: one evaluation)."""
    null = torch.full_like(labels, model.null_label)
    if w == 0:
        return lambda x, t: torch.softmax(model(x, t, labels), -1)
    return lambda x, t: guided_posterior(model(x, t, labels), model(x, t, null), w)


def generate_discrete(model, source: str, labels: torch.Tensor, w: float, steps: int, seed: int) -> torch.Tensor:
    """Digits in [-1, 1] (n, 64) of the requested classes: the Euler CTMC sampler from ``source`` in ``steps`` steps."""
    g = torch.Generator().manual_seed(seed)
    x0 = source_sample((len(labels), model.num_tokens), model.num_levels, source, g)
    with torch.no_grad():
        return from_tokens(sample_ctmc(posterior_fn(model, labels, w), x0, model.num_levels, Schedule(1.0), steps, g),
                           model.num_levels)


def judge_digits(generate, data=None, classifier=None) -> dict:
    """Notebook 07's measures of a sampler ``generate(labels, seed) -> digits (n, 64)``: the classifier's
    accuracy on 50 requested digits per class (seed 2), the median distance from those to the nearest
    training digit, and W2 between digits of the held-out labels (seed 3) and the held-out digits."""
    if data is None or classifier is None:
        data, classifier = _data()
    requested = torch.arange(10).repeat_interleave(50)
    x = generate(requested, REQUEST_SEED).double()
    return dict(accuracy=classifier.accuracy(x, requested),
                nn=nn_distances(x, data.x_train.double()).median().item(),
                w2=w2(generate(data.y_test, TEST_SEED).double(), data.x_test.double()))


def test_cross_entropy(model, source: str, repeats: int = 4) -> float:
    """The held-out cross-entropy in nats per digit: the 360 held-out digits, each at ``repeats`` fixed
    draws of t ~ U[0, 1) and x_t from the mixture path (seed 4), with their labels."""
    data, _ = _data()
    x1 = to_tokens(data.x_test).repeat(repeats, 1)
    y = data.y_test.repeat(repeats)
    g = torch.Generator().manual_seed(CE_SEED)
    t = torch.rand(len(x1), generator=g, dtype=torch.float64)
    xt = sample_xt(x1, t, Schedule(1.0), model.num_levels, source, g)
    with torch.no_grad():
        return token_cross_entropy(model(xt, t, y), x1).item()


def _build(source: str):
    return lambda: PosteriorMLP(64, LEVELS, mask=source == "mask", num_classes=10,
                                hidden=TRAINING["hidden"], depth=TRAINING["depth"])


def _train(source: str):
    def train(model, num_steps, generator, callback):
        data, _ = _data()
        recipe = {k: v for k, v in TRAINING.items() if k not in ("num_steps", "seed")}
        train_posterior(to_tokens(data.x_train), data.y_train, LEVELS, source, Schedule(1.0), num_steps=num_steps,
                        seed=int(generator.initial_seed()), desc=f"09 {source}", model=model, callback=callback,
                        **recipe)
    return train


def _evaluate(source: str):
    def evaluate(model) -> dict:
        out = {"test_ce": test_cross_entropy(model, source)}
        for steps in EVAL_STEPS:
            r = judge_digits(lambda labels, seed: generate_discrete(model, source, labels, EVAL_W, steps, seed))
            out.update({f"{k}_{steps}": v for k, v in r.items()})
        return out
    return evaluate


def _register() -> None:
    from . import discrete, guidance, models
    from .references import register_reference

    # the training code (what the weights depend on); the sampler and judge only evaluate:
    # tests/test_references.py checks that the loaded weights still reproduce the manifest's metrics
    code = (discrete.train_posterior, discrete.PosteriorMLP, discrete.sample_xt, discrete.source_sample,
            discrete.mixture_path_sample, discrete.token_cross_entropy, discrete.Schedule, discrete.to_tokens,
            models.time_features, guidance.drop_labels, _data, test_cross_entropy)
    for source, name in NAMES.items():
        register_reference(name, build=_build(source), train=_train(source), evaluate=_evaluate(source),
                           metric="test_ce", steps=STEPS, seed=0, spread_seeds=(1, 2), code=code,
                           params={**TRAINING, "source": source, "levels": LEVELS, "eval_steps": list(EVAL_STEPS),
                                   "eval_w": EVAL_W}, notebook="09",
                           description=f"notebook 09's class-conditional discrete flow model, {source} source: "
                                       f"PosteriorMLP 3 x {TRAINING['hidden']}, Adam {TRAINING['lr']:g} cosine, "
                                       f"batch {TRAINING['batch_size']}, label dropout {TRAINING['p_uncond']:g}; "
                                       f"judged on the held-out cross-entropy")


_register()
