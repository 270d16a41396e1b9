"""The path explorer, driven headless: every control changes the figure, and what is drawn is the math."""
from __future__ import annotations

import numpy as np
import torch

from utils.widgets import field_on_grid
from utils.widgets import PathExplorer
from utils.paths import OTPath, VPPath


def test_controls_redraw_and_arrows_are_the_exact_fields():
    w = PathExplorer(num_frames=12, n_particles=40)
    png = bytes(w.image.value)
    assert png.startswith(b"\x89PNG") and repr(w) == "<PathExplorer>"
    t = w.time()
    _, _, U, V = field_on_grid(lambda x, s: OTPath(0.05).marginal_velocity(x, w.data, s), t, w.lim, w.grid_size)
    assert np.allclose(w.quiver_marginal.U, U.flatten()) and np.allclose(w.quiver_marginal.V, V.flatten())
    x1 = w.data[0]
    _, _, U, V = field_on_grid(lambda x, s: OTPath(0.05).velocity(x, x1.expand_as(x), s), t, w.lim, w.grid_size)
    assert np.allclose(w.quiver_conditional.U, U.flatten())
    for control, value in [(w.t, 0.9), (w.x1_index, 5), (w.sigma_min, 0.3), (w.path_name, "VP")]:
        before = bytes(w.image.value)
        control.value = value
        assert bytes(w.image.value) != before, control.description
    assert w.sigma_min.disabled and isinstance(w.path, VPPath)
    # conditional particles are psi_t(x0 | x1) of the VP path; drawn points are those
    mu, sigma = VPPath().mean_std(w.data[5].expand_as(w.x0), w.time())
    assert torch.allclose(w.conditional_particles(), mu + sigma * w.x0, atol=1e-6)
    assert np.allclose(w.dots_conditional.get_offsets(), w.conditional_particles().numpy())
    assert np.allclose(w.dots_marginal.get_offsets(), w.particles().numpy())


def test_particles_of_the_marginal_flow_reach_the_data():
    w = PathExplorer(num_frames=34, n_particles=100)
    w.sigma_min.value = 0.0
    w.t.value = w.t.max
    nearest = torch.cdist(w.particles(), w.data).min(1).values
    assert nearest.median() < 0.05  # at t = 0.99 the OT path keeps 1% of the noise
    w.t.value = 0.0
    assert torch.allclose(w.particles(), w.x0)
