"""The token-by-token widget of notebook 09 on the course's rendering path (as tests/test_widgets.py)."""
from __future__ import annotations

import random

import pytest
import torch

from utils.discrete import train_posterior
from utils.errors import InputError
from utils.widgets.discrete import TokenByTokenWidget


@pytest.fixture(scope="module")
def model():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        data = torch.randint(17, (64, 64), generator=torch.Generator().manual_seed(0))
        labels = torch.arange(64) % 10
        m, _ = train_posterior(data, labels, 17, "mask", num_steps=5, batch_size=16, hidden=16, depth=1, desc="")
        yield m
    finally:
        torch.set_default_dtype(old)


@pytest.fixture(scope="module")
def widget(model):
    return TokenByTokenWidget(model, steps=10, n=4)


def test_every_control_redraws_and_the_image_is_the_states(widget):
    for control, value in [(widget.t, 0.0), (widget.label, 3), (widget.w, 1.0), (widget.t, 1.0)]:
        before = bytes(widget.image.value)
        control.value = value
        assert widget.error is None
        assert bytes(widget.image.value) != before, control.description
        assert bytes(widget.image.value) == widget.fresh_png()


def test_mask_film_reveals_each_token_once_and_ends_unmasked(widget):
    path = widget.film(2, 0.0)
    assert len(path) == widget.steps + 1 and (path[0] == 17).all() and (path[-1] < 17).all()
    for a, b in zip(path[:-1], path[1:]):
        shown = a < 17
        assert torch.equal(a[shown], b[shown])  # a revealed token keeps its level


def test_no_text_outside_the_image_at_the_extremes(widget):
    start = widget.values()
    widget.check_text()
    for control, values in [(widget.t, (0.0, 1.0)), (widget.label, (0, 9)), (widget.w, (0.0, 3.0))]:
        for v in values:
            control.value = v
            assert widget.error is None
            widget.check_text()
    widget.set_values(start)


def test_a_burst_of_30_moves_ends_with_the_final_states_image(widget):
    widget.background = True
    rng = random.Random(1)
    try:
        for _ in range(30):
            control = rng.choice([widget.t, widget.label, widget.w])
            control.value = rng.choice(list(control.options)) if hasattr(control, "options") else \
                round(rng.randint(0, 10) / 10, 1)
        assert widget.wait(60)
        assert widget.error is None and widget.drawn_values == widget.values()
        assert bytes(widget.image.value) == widget.fresh_png()
    finally:
        widget.background = False


def test_bad_arguments(model):
    with pytest.raises(InputError, match="at least 1"):
        TokenByTokenWidget(model, steps=0)
