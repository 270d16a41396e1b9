"""The SDE versus ODE widget, driven headless: controls redraw, and what is drawn is what the samplers give."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from utils.errors import InputError
from utils.sde import VPSDE
from utils.mixtures import eight_gaussians_mixture
from utils.samplers import sample_probability_flow, sample_reverse_sde
from utils.widgets import SDEvsODEWidget


@pytest.fixture(scope="module")
def widget():
    sde, target = VPSDE(), eight_gaussians_mixture()
    return SDEvsODEWidget(sde, target.score_fn(sde), log_prob=target.log_prob_fn(sde), n=60,
                          steps_options=(5, 20), steps=5)


def _offsets(ax):
    return np.asarray(ax.collections[-1].get_offsets())


def test_steps_slider_reruns_both_samplers_from_the_same_noise(widget):
    png = bytes(widget.image.value)
    assert png.startswith(b"\x89PNG") and repr(widget) == "<SDEvsODEWidget>"
    widget.t.value = 1.0
    widget.steps.value = 20
    assert bytes(widget.image.value) != png
    sde = sample_reverse_sde(widget.sde, widget.score, widget.x0, 20,
                             generator=torch.Generator().manual_seed(widget.seed + 1))
    ode = sample_probability_flow(widget.sde, widget.score, widget.x0, 20, method="euler")
    assert np.allclose(_offsets(widget.axes[0]), sde.x.numpy(), atol=1e-6)
    assert np.allclose(_offsets(widget.axes[1]), ode.x.numpy(), atol=1e-6)
    assert "20 steps" in widget.axes[0].get_title() and "20 steps" in widget.axes[1].get_title()


def test_time_slider_moves_particles_along_the_paths(widget):
    widget.steps.value = 20
    widget.t.value = 0.0
    left, right = _offsets(widget.axes[0]), _offsets(widget.axes[1])
    assert np.allclose(left, widget.x0.numpy()) and np.allclose(right, widget.x0.numpy())  # same noise
    png = bytes(widget.image.value)
    widget.t.value = 0.5
    assert bytes(widget.image.value) != png
    times, sde_path, ode_path = widget.paths()
    k = int(torch.argmin((times - 0.5).abs()))
    assert np.allclose(_offsets(widget.axes[0]), sde_path[k].numpy())
    assert np.allclose(_offsets(widget.axes[1]), ode_path[k].numpy())
    assert "t = 0.50" in widget.axes[1].get_title()
    # the SDE and the ODE share their start but not their paths
    assert not np.allclose(sde_path[k].numpy(), ode_path[k].numpy())


def test_bad_input_is_explained():
    sde = VPSDE()
    with pytest.raises(InputError, match="steps_options"):
        SDEvsODEWidget(sde, lambda x, s: -x, steps=7, steps_options=(5, 10))
    with pytest.raises(InputError, match="callable"):
        SDEvsODEWidget(sde, "score")
