"""utils.discrete_references: notebook 09's converged references and the judge of generated digits.

The stored weights themselves (fresh, reproducing the manifest, 3 seeds) are tested generically by
tests/test_references.py; here: the judge catches a copying sampler and scores real digits like real
digits, sampling is reproducible, and the held-out cross-entropy has its closed form for a model that
knows nothing.
"""
from __future__ import annotations

import math

import pytest
import torch

from utils import references
from utils.digits import subset_like
from utils.discrete import PosteriorMLP
from utils.discrete_references import NAMES, _data, generate_discrete, judge_digits
from utils.discrete_references import test_cross_entropy as held_out_ce  # not a test: pytest would collect the name


@pytest.fixture(autouse=True)
def float64():
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(dtype)


def _model(source: str, zero: bool = False) -> PosteriorMLP:
    torch.manual_seed(0)
    model = PosteriorMLP(64, 17, mask=source == "mask", num_classes=10, hidden=16, depth=2).eval()
    if zero:
        with torch.no_grad():
            model.net[-1].weight.zero_()
            model.net[-1].bias.zero_()
    return model


def test_both_sources_are_registered():
    assert set(NAMES.values()) <= set(references.registered())


def test_the_judge_catches_copies_and_scores_real_digits_as_real():
    data, classifier = _data()
    copies = judge_digits(lambda labels, seed: subset_like(data.x_train, data.y_train, labels,
                                                          torch.Generator().manual_seed(seed)))
    assert copies["nn"] == 0.0  # training digits themselves: distance 0 to the nearest training digit
    assert copies["accuracy"] > 0.95  # the classifier reads its own training digits
    noise = judge_digits(lambda labels, seed: torch.rand(len(labels), 64, generator=torch.Generator().manual_seed(seed)))
    assert noise["w2"] > 2 * copies["w2"] and noise["accuracy"] < 0.5


@pytest.mark.parametrize("source", ["mask", "uniform"])
def test_generate_is_reproducible_and_lands_on_grey_levels(source):
    model = _model(source)
    labels = torch.arange(10)
    a = generate_discrete(model, source, labels, 1.0, 4, seed=3)
    assert torch.equal(a, generate_discrete(model, source, labels, 1.0, 4, seed=3))
    assert not torch.equal(a, generate_discrete(model, source, labels, 1.0, 4, seed=4))
    levels = (a + 1) * 8  # [-1, 1] -> 0..16
    assert torch.allclose(levels, levels.round()) and levels.min() >= 0 and levels.max() <= 16  # no mask left


@pytest.mark.parametrize("source", ["mask", "uniform"])
def test_held_out_cross_entropy_of_a_model_that_knows_nothing(source):
    model = _model(source, zero=True)  # every logit 0: uniform over the 17 levels for every token
    assert held_out_ce(model, source) == pytest.approx(64 * math.log(17), rel=1e-12)
    trained_like = _model(source)
    assert held_out_ce(trained_like, source) == held_out_ce(trained_like, source)  # fixed draws
