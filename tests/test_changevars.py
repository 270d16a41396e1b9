"""utils.changevars against torch.distributions, closed forms and numerical integration."""
from __future__ import annotations

import math

import pytest
import torch

from utils import changevars as cv
from utils.errors import InputError


def test_standard_normal_matches_torch_distributions():
    z = torch.randn(50, 3, dtype=torch.float64)
    ref = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    assert torch.allclose(cv.standard_normal_log_prob(z), ref)


def test_lognormal_pushforward():
    x = torch.rand(40, 2, dtype=torch.float64) * 4 + 0.01
    got = cv.pushforward_log_prob(x, cv.standard_normal_log_prob, torch.log, lambda u: 1 / u)
    assert torch.allclose(got, torch.distributions.LogNormal(0.0, 1.0).log_prob(x).sum(-1))


def test_jacobian_matches_torch_autograd_functional():
    f = lambda x: torch.stack([x[:, 0] * x[:, 1], torch.sin(x[:, 0]) + x[:, 1] ** 3], 1)  # noqa: E731
    x = torch.randn(7, 2, dtype=torch.float64)
    J = cv.jacobian(f, x)
    for k in range(7):
        ref = torch.autograd.functional.jacobian(lambda v: f(v[None])[0], x[k])
        assert torch.allclose(J[k], ref)


def test_log_abs_det_of_affine_is_log_abs_det_A():
    A = torch.randn(3, 3, dtype=torch.float64)
    x = torch.randn(5, 3, dtype=torch.float64)
    got = cv.log_abs_det_jacobian(lambda v: v @ A.T, x)
    assert torch.allclose(got, torch.full((5,), math.log(abs(torch.det(A).item())), dtype=torch.float64))


def test_affine_log_prob_is_the_gaussian_and_integrates_to_one():
    A = torch.tensor([[1.0, -0.7], [0.4, 0.5]], dtype=torch.float64)
    b = torch.tensor([0.3, 0.2], dtype=torch.float64)
    x = torch.randn(30, 2, dtype=torch.float64)
    ref = torch.distributions.MultivariateNormal(b, A @ A.T).log_prob(x)
    assert torch.allclose(cv.affine_log_prob(x, A, b), ref)
    assert abs(cv.grid_integral(lambda p: cv.affine_log_prob(p, A, b), lim=8, n=300) - 1) < 1e-3


def test_bad_input_is_a_clear_error():
    with pytest.raises(InputError, match="must have 2 dimension"):
        cv.standard_normal_log_prob(torch.zeros(3))
    with pytest.raises(InputError, match="NaN"):
        cv.standard_normal_log_prob(torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(InputError, match=r"\(2, 2\) matrix"):
        cv.affine_log_prob(torch.zeros(4, 2), torch.eye(3), torch.zeros(2))
    with pytest.raises(InputError, match="same shape"):
        cv.jacobian(lambda v: v.sum(1), torch.zeros(4, 2))
    err = InputError("message")
    assert err._render_traceback_() == ["InputError: message"]
