"""Solvers against closed-form flows and torchdiffeq; W2 against linear programming; the explorer headless."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from utils.errors import InputError
from utils.widgets import VectorFieldExplorer, field_on_grid
from utils.metrics import w2
from utils.solvers import solve_ode

A = torch.tensor([[-0.2, -1.0], [1.0, -0.3]], dtype=torch.float64)


def linear(x, t):
    return x @ A.T


@pytest.mark.parametrize("method,order", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_fixed_step_error_shrinks_at_the_method_order(method, order):
    x0 = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    exact = x0 @ torch.linalg.matrix_exp(A).T
    errs = [(solve_ode(linear, x0, num_steps=n, method=method).x - exact).abs().max().item() for n in (16, 32)]
    assert math.log2(errs[0] / errs[1]) == pytest.approx(order, abs=0.3)


def test_nfe_counts_and_dopri5_matches_closed_form():
    x0 = torch.randn(5, 2, dtype=torch.float64)
    assert solve_ode(linear, x0, num_steps=10, method="euler").nfe == 10
    assert solve_ode(linear, x0, num_steps=10, method="midpoint").nfe == 20
    assert solve_ode(linear, x0, num_steps=10, method="rk4").nfe == 40
    sol = solve_ode(linear, x0, method="dopri5", rtol=1e-9, atol=1e-9)
    assert torch.allclose(sol.x, x0 @ torch.linalg.matrix_exp(A).T, atol=1e-7)
    assert sol.nfe > 6


def test_backwards_inverts_forwards_and_time_dependent_fields():
    u = lambda x, t: torch.sin(3 * t)[:, None] * x  # x(1) = x0 exp((1 - cos 3) / 3)  # noqa: E731
    x0 = torch.randn(4, 2, dtype=torch.float64)
    fwd = solve_ode(u, x0, num_steps=200, method="rk4").x
    assert torch.allclose(fwd, x0 * math.exp((1 - math.cos(3)) / 3), atol=1e-8)
    back = solve_ode(u, fwd, t0=1.0, t1=0.0, num_steps=200, method="rk4").x
    assert torch.allclose(back, x0, atol=1e-8)


def test_solver_errors_are_clear():
    with pytest.raises(InputError, match="shape of x"):
        solve_ode(lambda x, t: x[:, :1], torch.zeros(3, 2), num_steps=2)
    with pytest.raises(InputError, match="positive integer"):
        solve_ode(linear, torch.zeros(3, 2, dtype=torch.float64), num_steps=0)
    with pytest.raises(InputError, match="2 dimension"):
        solve_ode(linear, torch.zeros(3))


def test_w2_matches_linear_programming_and_brute_force():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g) + 1
    C = torch.cdist(x.double(), y.double()).pow(2).numpy()
    n = 6
    A_eq = np.zeros((2 * n, n * n))
    for i in range(n):
        A_eq[i, i * n:(i + 1) * n] = 1
        A_eq[n + i, i::n] = 1
    lp = linprog(C.flatten(), A_eq=A_eq, b_eq=np.full(2 * n, 1 / n), bounds=(0, None))
    assert w2(x, y) == pytest.approx(math.sqrt(lp.fun), rel=1e-6)
    brute = min(C[range(n), list(p)].mean() for p in itertools.permutations(range(n)))
    assert w2(x, y) == pytest.approx(math.sqrt(brute), rel=1e-9)


def test_w2_closed_form_for_a_shift_and_errors():
    x = torch.randn(50, 2)
    assert w2(x, x + torch.tensor([3.0, 4.0])) == pytest.approx(5.0, rel=1e-5)
    assert w2(x, x) == 0.0
    with pytest.raises(InputError, match="same shape"):
        w2(torch.zeros(3, 2), torch.zeros(4, 2))


def test_explorer_slider_moves_particles_and_arrows_with_the_field():
    def u(x, t):  # rotation that speeds up in time
        return (1 + t)[:, None] * torch.stack([-x[:, 1], x[:, 0]], 1)
    w = VectorFieldExplorer(u, n_particles=50, num_frames=11)
    png, p0 = bytes(w.image.value), w.particles().clone()
    w.t.value = 0.5
    assert bytes(w.image.value) != png
    # particles at t: rotation by the angle int_0^t (1 + s) ds = t + t^2 / 2
    ang = 0.5 + 0.125
    R = torch.tensor([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    assert torch.allclose(w.particles(), p0 @ R.T, atol=1e-4)
    # the drawn arrows are the field at t = 0.5
    X, Y, U, V = field_on_grid(u, 0.5, w.lim, w.grid_size)
    assert np.allclose(w.quiver.U, U.flatten()) and np.allclose(w.quiver.V, V.flatten())
    assert np.allclose(w.dots.get_offsets(), w.particles().numpy())
    w.streamlines.value = True
    assert len(w.axes[0].collections) > 2
    assert repr(w) == "<VectorFieldExplorer>"


def test_explorer_with_density_and_bad_field():
    u = lambda x, t: -x  # noqa: E731
    dens = lambda x, t: -0.5 * (x**2).sum(1) - math.log(2 * math.pi)  # noqa: E731
    w = VectorFieldExplorer(u, density=dens, n_particles=20, num_frames=3)
    assert len(w.axes) == 2 and "density" in w.axes[1].get_title()
    with pytest.raises(InputError, match="shape of x"):
        VectorFieldExplorer(lambda x, t: x.sum(1), n_particles=5)


def test_time_mlp_shapes_and_errors():
    from utils.models import TimeMLP

    net = TimeMLP()
    x = torch.randn(7, 2)
    assert net(x, torch.rand(7)).shape == (7, 2)
    assert net(x, 0.3).shape == (7, 2)
    assert torch.allclose(net(x, 0.3), net(x, torch.full((7, 1), 0.3)))
    with pytest.raises(InputError, match="shape"):
        net(x, torch.rand(3))
    with pytest.raises(InputError, match="last dimension 2"):
        net(torch.randn(7, 3), 0.1)
