"""utils.fewstep against closed forms: the MeanFlow identity on a Gaussian path, boundary conditions, samplers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from utils import fewstep as F
from utils.datasets import moons
from utils.errors import InputError

MEAN, SCALE = torch.tensor([1.0, -2.0], dtype=torch.float64), 0.5


@pytest.fixture(autouse=True)
def _float64():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def _times(n, g):
    t = torch.rand(n, generator=g) * 0.9
    return t, t + 0.05 + torch.rand(n, generator=g) * (0.95 - t)


def test_gaussian_u_is_the_average_of_v_along_the_flow():
    """u(z, r, t) = 1/(t - r) int_r^t v: checked by integrating v with RK4 from t to r."""
    from utils.solvers import solve_ode
    v, u = F.gaussian_flow(MEAN, SCALE)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 2, generator=g)
    t, r = 0.2, 0.9
    z_r = solve_ode(v, z, t, r, num_steps=200, method="rk4").x
    assert torch.allclose(z - (t - r) * u(z, r, t), z_r, atol=1e-10)
    assert torch.allclose(u(z, t + 1e-7, t), v(z, t), atol=1e-5)  # u -> v as r -> t


@pytest.mark.parametrize("backward", [False, True])
def test_meanflow_identity_holds_for_the_exact_average_velocity(backward):
    """u = v - (t - r) du/dt, du/dt the total derivative by jvp: the target of the exact u is u itself."""
    v, u = F.gaussian_flow(MEAN, SCALE)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(50, 2, generator=g)
    t, r = _times(50, g)
    if backward:
        t, r = r, t
    target = F.meanflow_target(u, z, r, t, v(z, t))
    assert torch.allclose(target, u(z, r, t), atol=1e-10)
    # the partial derivative alone (tangent (0, 0, 1)) does not satisfy it
    _, partial = torch.func.jvp(u, (z, r, t), (torch.zeros_like(z), torch.zeros_like(r), torch.ones_like(t)))
    assert (v(z, t) - (t - r)[:, None] * partial - u(z, r, t)).abs().max() > 1e-2


def test_meanflow_target_is_detached():
    net = F.TwoTimeMLP()
    g = torch.Generator().manual_seed(2)
    z, v = torch.randn(8, 2, generator=g), torch.randn(8, 2, generator=g)
    t, r = _times(8, g)
    assert not F.meanflow_target(net, z, r, t, v).requires_grad


@pytest.mark.parametrize("k", [1, 2, 4])
def test_mean_flow_sampler_is_exact_with_the_exact_u(k):
    """The Gaussian flow is affine: z_1 = mean + scale z_0 in any number of exact jumps."""
    _, u = F.gaussian_flow(MEAN, SCALE)
    z0 = torch.randn(20, 2, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(F.meanflow_sampler(u)(z0, k), MEAN + SCALE * z0, atol=1e-10)


def test_consistency_boundary_and_sampler():
    from utils.models import TimeMLP
    net = TimeMLP()
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(4))
    assert torch.equal(F.consistency_fn(net, x, 1.0), x)  # f(x, 1) = x for any network
    assert torch.allclose(F.consistency_sampler(net)(x, 1), F.consistency_fn(net, x, 0.0))
    # F(x, t) = (c - x) / (1 - t): f(x, t) = c, a consistent map; any number of steps ends on c
    c = torch.tensor([0.3, -0.7])
    to_c = lambda x, t: (c - x) / (1 - t)[:, None]  # noqa: E731
    for k in (1, 2, 4):
        assert torch.allclose(F.consistency_sampler(to_c)(x, k), c.expand_as(x), atol=1e-12)


def test_shortcut_target_of_a_constant_field_is_the_field():
    c = torch.tensor([0.5, 2.0])
    s = lambda x, t, d: c.expand_as(x)  # noqa: E731
    g = torch.Generator().manual_seed(5)
    xt, t, d = torch.randn(9, 2, generator=g), torch.rand(9, generator=g) * 0.5, torch.full((9,), 0.25)
    assert torch.allclose(F.shortcut_target(s, xt, t, d), c.expand_as(xt))
    # a field linear in x: two Euler steps of d, averaged, as computed by hand
    a = lambda x, t, d: -x  # noqa: E731
    want = (-xt + -(xt - 0.25 * xt)) / 2
    assert torch.allclose(F.shortcut_target(a, xt, t, d), want)
    assert torch.allclose(F.shortcut_sampler(s)(xt, 4), xt + c)


@pytest.mark.parametrize("trainer", ["shortcut", "meanflow"])
def test_trainers_run_and_report_cost(trainer):
    train = {"shortcut": F.train_shortcut, "meanflow": F.train_meanflow}[trainer]
    model, losses = train(moons, num_steps=3, batch_size=32)
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    assert model.cost["steps"] == 3 and model.cost["seconds"] >= 0


def test_distillation_trainers_run():
    teacher = lambda x, t: -x  # noqa: E731
    for train in (F.train_distilled, F.train_consistency):
        model, losses = train(teacher, num_steps=2, num_paths=64, teacher_steps=10, batch_size=16) \
            if train is F.train_distilled else train(teacher, num_steps=2, num_pairs=64, teacher_steps=10, batch_size=16)
        assert len(losses) == 2 and model.cost["teacher_evals"] > 0


def test_bad_input_is_reported():
    with pytest.raises(InputError, match="nfe"):
        F.meanflow_sampler(lambda z, r, t: z)(torch.zeros(3, 2), 0)
    with pytest.raises(InputError, match="num_steps"):
        F.train_shortcut(moons, num_steps=0)
    with pytest.raises(InputError, match="mean"):
        F.gaussian_flow(torch.zeros(2, 2), 1.0)
    with pytest.raises(InputError):
        F.TwoTimeMLP()(torch.zeros(3, 3), 0.1, 0.2)


def test_few_step_widget_moves_and_caches():
    from utils.showdown import flow_sampler
    from utils.widgets import FewStepWidget
    x0 = torch.randn(100, 2, generator=torch.Generator().manual_seed(6))
    samplers = {"shrink": flow_sampler(lambda x, t: -x), "still": flow_sampler(lambda x, t: 0 * x),
                "mean flow": F.meanflow_sampler(F.gaussian_flow(MEAN, SCALE)[1]), "grow": flow_sampler(lambda x, t: x)}
    w = FewStepWidget(samplers, x0, moons(100), max_nfe=8)
    first = w.image.value
    w.nfe.value = 4
    assert w.error is None and w.image.value != first and w.titles["shrink"].get_text() == "shrink: 4 NFE"
    assert torch.allclose(torch.as_tensor(np.asarray(w.points["mean flow"].get_offsets())), MEAN + SCALE * x0)
    assert ("shrink", 4) in w._cache and len(w.axes) == 4
    for k in (2, 7, 3):
        w.nfe.value = k
    assert w.fresh_png() == w.image.value  # drawn in place = drawn anew (no artist outside the frozen layout)
    with pytest.raises(InputError, match="samplers"):
        FewStepWidget({}, x0, moons(100))


def test_digits_distillation_runs_and_measures():
    from utils.fewstep_digits import digit_sampler, teacher_sampler, train_distilled_digits, within_class_spread
    teacher = lambda x, t, y: -x + y[:, None].to(x.dtype)  # noqa: E731
    student, losses = train_distilled_digits(teacher, num_steps=2, num_paths=32, teacher_steps=4, dim=5, hidden=8,
                                             batch_size=8)
    assert len(losses) == 2 and student.cost["teacher_evals"] == 128
    x0, y = torch.randn(6, 5, generator=torch.Generator().manual_seed(7)), torch.arange(6) % 3
    for sampler in (digit_sampler("distillation", student), teacher_sampler(teacher)):
        x = sampler(x0, y, 2)
        assert x.shape == (6, 5) and x.abs().max() <= 1
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0], [5.0, 5.0]])
    assert within_class_spread(x, torch.tensor([0, 0, 1, 1])) == 0.5


def test_digit_methods_reuse_the_2d_targets_and_samplers():
    """Each class-conditional trainer runs, and each digit sampler is the 2D sampler with the label bound."""
    from utils.fewstep import consistency_sampler, meanflow_sampler, shortcut_sampler
    from utils.fewstep_digits import (ConditionalTwoTimeMLP, digit_sampler, train_consistency_digits,
                                      train_meanflow_digits, train_shortcut_digits)
    teacher = lambda x, t, y: -x + y[:, None].to(x.dtype)  # noqa: E731
    g = torch.Generator().manual_seed(3)
    x_train, y_train = torch.rand(40, 5, generator=g) * 2 - 1, torch.arange(40) % 3
    cm, losses = train_consistency_digits(teacher, num_steps=2, num_paths=16, teacher_steps=4, dim=5, num_classes=3,
                                          hidden=8, batch_size=8)
    assert len(losses) == 2 and cm.cost["teacher_evals"] == 16 * 4 + 2 * 8
    s, _ = train_shortcut_digits(x_train, y_train, num_steps=2, hidden=8, batch_size=8)
    u, _ = train_meanflow_digits(x_train, y_train, num_steps=2, hidden=8, batch_size=8)
    x0, y = torch.randn(6, 5, generator=g), torch.arange(6) % 3
    for name, model, plain in (("consistency", cm, consistency_sampler), ("shortcut", s, shortcut_sampler),
                               ("MeanFlow", u, meanflow_sampler)):
        for nfe in (1, 3):
            bound = plain(lambda x, *times: model(x, *times, y))(x0, nfe).clamp(-1, 1)
            assert torch.allclose(digit_sampler(name, model)(x0, y, nfe), bound)
    # the label changes the output of a two-time network
    net = ConditionalTwoTimeMLP(5, 3, hidden=8)
    assert not torch.allclose(net(x0, 0.2, 0.5, y), net(x0, 0.2, 0.5, (y + 1) % 3))
    with pytest.raises(InputError, match="labels"):
        net(x0, 0.2, 0.5, y.double())
    with pytest.raises(InputError, match="unknown method"):
        digit_sampler("reflow", s)


def test_digit_meanflow_target_differentiates_only_the_times_and_the_point():
    """meanflow_target on a labelled network: the jvp runs over (z, r, t) with the label fixed (finite difference)."""
    from utils.fewstep import meanflow_target
    from utils.fewstep_digits import ConditionalTwoTimeMLP, _bind
    net = ConditionalTwoTimeMLP(4, 3, hidden=16).double()
    g = torch.Generator().manual_seed(5)
    z, v = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randn(5, 4, generator=g, dtype=torch.float64)
    t = torch.rand(5, generator=g, dtype=torch.float64) / 2
    r, y = t + 0.3, torch.arange(5) % 3
    u = _bind(net, y)
    h = 1e-6
    with torch.no_grad():
        dudt = (u(z + h * v, r, t + h) - u(z - h * v, r, t - h)) / (2 * h)
        expected = v - (t - r)[:, None] * dudt
    assert torch.allclose(meanflow_target(u, z, r, t, v), expected, atol=1e-6)


def test_shared_teacher_paths_train_the_same_models():
    """Paths passed in (drawn once, shared by distillation and consistency) give the models of the default draw."""
    from utils.fewstep import teacher_trajectories, train_consistency, train_distilled
    teacher = lambda x, t: -x  # noqa: E731
    paths = teacher_trajectories(teacher, torch.randn(64, 2, generator=torch.Generator().manual_seed(4)), 10)
    kw = dict(num_steps=3, batch_size=16, seed=4)
    for train, size in ((train_distilled, "num_paths"), (train_consistency, "num_pairs")):
        torch.manual_seed(0)
        own, _ = train(teacher, teacher_steps=10, **{size: 64}, **kw)
        torch.manual_seed(0)
        shared, _ = train(teacher, paths=paths, **kw)
        x = torch.randn(5, 2, generator=torch.Generator().manual_seed(1))
        assert torch.equal(own(x, 0.3), shared(x, 0.3))
        assert own.cost["teacher_evals"] == shared.cost["teacher_evals"]
        with pytest.raises(InputError, match="teacher_trajectories"):
            train(teacher, paths=paths[0], **kw)
