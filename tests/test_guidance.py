"""utils.guidance and models.ConditionalMLP: label dropout, the guided field, the sampler, training."""
from __future__ import annotations

import math

import pytest
import torch

from utils import guidance
from utils.errors import InputError
from utils.models import ConditionalMLP
from utils.solvers import solve_ode


def test_conditional_mlp_shapes_labels_and_errors():
    torch.manual_seed(0)
    model = ConditionalMLP(dim=6, num_classes=3, hidden=16)
    x, t = torch.randn(5, 6), torch.rand(5)
    y = torch.tensor([0, 1, 2, 3, 0])
    out = model(x, t, y)
    assert out.shape == (5, 6) and model.null_label == 3
    # the label matters; time may be a float
    assert not torch.allclose(model(x, t, torch.zeros_like(y)), model(x, t, torch.ones_like(y)))
    assert torch.allclose(model(x, 0.5, y), model(x, torch.full((5,), 0.5), y))
    with pytest.raises(InputError, match="labels must lie"):
        model(x, t, torch.tensor([0, 1, 2, 4, 0]))
    with pytest.raises(InputError, match="integer labels"):
        model(x, t, y.float())


def test_drop_labels_rate_copy_and_reproducibility():
    y = torch.arange(50_000) % 10
    out = guidance.drop_labels(y, 0.2, 10, torch.Generator().manual_seed(0))
    assert torch.equal(y, torch.arange(50_000) % 10)  # not in place
    assert abs((out == 10).double().mean().item() - 0.2) < 0.01
    assert torch.equal(out[out != 10], y[out != 10])
    assert torch.equal(out, guidance.drop_labels(y, 0.2, 10, torch.Generator().manual_seed(0)))
    assert torch.equal(guidance.drop_labels(y, 0.0, 10), y)
    assert (guidance.drop_labels(y, 1.0, 10) == 10).all()
    with pytest.raises(InputError):
        guidance.drop_labels(y, 1.5, 10)


class Linear:
    """v(x, t, y) = a_y - x: the conditional flow from x0 ends at a known point."""
    null_label = 2

    def __init__(self):
        self.a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.5, 0.5]], dtype=torch.float64)

    def __call__(self, x, t, y):
        return self.a[y] - x


def test_guided_velocity_closed_form():
    model, x = Linear(), torch.zeros(2, 2, dtype=torch.float64)
    y, t = torch.tensor([0, 1]), torch.zeros(2, dtype=torch.float64)
    v = guidance.guided_velocity(model, x, t, y, 2.0)
    # (1 + w) a_y - w a_null at x = 0
    assert torch.allclose(v, torch.tensor([[2.0, -1.0], [-1.0, 5.0]], dtype=torch.float64))
    assert torch.equal(guidance.guided_velocity(model, x, t, y, 0.0), model(x, t, y))


def test_sample_guided_is_euler_and_converges_to_the_exact_flow():
    model = Linear()
    x0 = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y, w = torch.tensor([0, 1, 0, 1]), 1.5
    got = guidance.sample_guided(model, x0, y, w, 10)
    field = lambda x, t: guidance.guided_velocity(model, x, t, y, w)  # noqa: E731
    assert torch.allclose(got, solve_ode(field, x0, num_steps=10, method="euler").x)
    # dx/dt = c - x with c = (1 + w) a_y - w a_null: x(1) = c + (x0 - c) e^-1
    c = (1 + w) * model.a[y] - w * model.a[model.null_label]
    exact = c + (x0 - c) * torch.exp(torch.tensor(-1.0, dtype=torch.float64))
    fine = guidance.sample_guided(model, x0, y, w, 2000)
    assert torch.allclose(fine, exact, atol=1e-3)


@pytest.fixture
def one_thread():
    """Tiny networks train fastest on one thread (and do not stall on a busy CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_train_guided_in_float64_stays_off_mps(one_thread, monkeypatch):
    # notebook 07 trains in float64; Apple's MPS has none, so train_guided must fall back to the CPU there
    monkeypatch.setattr(guidance, "get_device", lambda: torch.device("mps"))
    before = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        y = torch.arange(40) % 2
        x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
        model, losses = guidance.train_guided(x, y, num_steps=3, batch_size=8, hidden=8)
    finally:
        torch.set_default_dtype(before)
    p = next(model.parameters())
    assert p.dtype == torch.float64 and p.device.type == "cpu" and x.dtype == torch.float64
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)


def test_train_guided_is_reproducible_and_learns(one_thread):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 2
    x = torch.randn(200, 4, generator=g) * 0.1 + torch.where(y[:, None] == 0, -1.0, 1.0)
    kw = dict(num_steps=150, batch_size=64, hidden=32, device=torch.device("cpu"))
    model, losses = guidance.train_guided(x, y, **kw)
    _, again = guidance.train_guided(x, y, **kw)
    assert losses == again
    assert sum(losses[-20:]) < 0.7 * sum(losses[:20])
    # guided samples of class 1 land near +1, of class 0 near -1
    x0 = torch.randn(100, 4, generator=g)
    for label, sign in ((0, -1.0), (1, 1.0)):
        s = guidance.sample_guided(model, x0, torch.full((100,), label), 1.0, 20)
        assert (s.mean(0) * sign).min() > 0.5


# ---------------------------------------------------------------- exact guidance on the labelled 2D mixture

def test_mixture_ot_field_is_the_tweedie_field_of_the_exact_marginal():
    """u_t(x) = x/t + (1-t)/t grad log p_t(x), with p_t from utils.sde's mixture score (kernel a=t, b=1-t)."""
    from utils.mixtures import mixture_score

    target = guidance.labelled_eight_gaussians(std=0.3)
    g = torch.Generator().manual_seed(0)
    x = 2 * torch.randn(200, 2, generator=g, dtype=torch.float64)
    for tv in (0.1, 0.5, 0.9):
        t = torch.full((200,), tv, dtype=torch.float64)
        for y in (None, 3):
            k = torch.arange(8) if y is None else torch.tensor([y])
            score = mixture_score(x, target.means[k], target.stds[k], target.weights[k], mean_scale=t, noise_std=1 - t)
            expected = x / tv + (1 - tv) / tv * score
            assert torch.allclose(guidance.mixture_ot_field(x, t, target, y), expected, atol=1e-10)


def test_mixture_ot_field_carries_noise_to_the_component_exactly():
    """One Gaussian component: the OT flow is affine, so RK4 lands on N(m, s^2 I) (mean and covariance)."""
    target = guidance.labelled_eight_gaussians(std=0.3)
    x0 = torch.randn(20000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x1 = solve_ode(lambda x, t: guidance.mixture_ot_field(x, t, target, 2), x0, num_steps=50, method="rk4").x
    # the map is x1 = m + 0.3 x0 exactly; compare pointwise, not only in distribution
    assert torch.allclose(x1, target.means[2] + 0.3 * x0, atol=1e-6)
    with pytest.raises(InputError, match="components"):
        guidance.mixture_ot_field(x0[:3], 0.5, target, 8)


def test_guided_mixture_field_weights_and_w0():
    target = guidance.labelled_eight_gaussians()
    x, t = torch.randn(50, 2, dtype=torch.float64), torch.rand(50, dtype=torch.float64)
    cond, uncond = guidance.mixture_ot_field(x, t, target, 1), guidance.mixture_ot_field(x, t, target)
    assert torch.allclose(guidance.guided_mixture_field(target, 1, 0.0)(x, t), cond)
    assert torch.allclose(guidance.guided_mixture_field(target, 1, 2.0)(x, t), 3 * cond - 2 * uncond)


def test_tilted_log_density_and_grid_sampler():
    from utils.mixtures import mixture_log_prob

    target = guidance.labelled_eight_gaussians(std=0.4)
    x = torch.randn(30, 2, dtype=torch.float64)
    log_c = mixture_log_prob(x, target.means[[0]], target.stds[[0]], target.weights[[0]])
    log_a = mixture_log_prob(x, target.means, target.stds, target.weights)
    assert torch.allclose(guidance.tilted_log_density(x, target, 0, 1.5), 2.5 * log_c - 1.5 * log_a)
    assert torch.allclose(guidance.tilted_log_density(x, target, 0, 0.0), log_c)
    # the grid sampler on a Gaussian: mean and covariance within 5 standard errors (n = 40000)
    g = torch.Generator().manual_seed(0)
    mean, cov = torch.tensor([0.5, -0.3], dtype=torch.float64), torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=torch.float64)
    mvn = torch.distributions.MultivariateNormal(mean, cov)
    s = guidance.sample_grid_density(mvn.log_prob, 40000, g)
    assert s.shape == (40000, 2) and s.dtype == torch.float64
    assert ((s.mean(0) - mean).abs() < 5 * (cov.diagonal() / 40000).sqrt()).all()
    assert (torch.cov(s.T) - cov).abs().max() < 0.02  # sd of a covariance entry at n=40000 is ~0.003
    with pytest.raises(InputError):
        guidance.sample_grid_density(lambda p: torch.full((len(p),), float("-inf")), 10, g)


def test_mixture_ot_field_with_a_label_per_point():
    target = guidance.labelled_eight_gaussians()
    x, t = torch.randn(40, 2, dtype=torch.float64), torch.rand(40, dtype=torch.float64)
    y = torch.arange(40) % 8
    each = torch.stack([guidance.mixture_ot_field(x[i:i + 1], t[i:i + 1], target, int(y[i]))[0] for i in range(40)])
    assert torch.allclose(guidance.mixture_ot_field(x, t, target, y), each)
    assert torch.allclose(guidance.guided_mixture_field(target, y, 1.0)(x, t),
                          2 * each - guidance.mixture_ot_field(x, t, target))
