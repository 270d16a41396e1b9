"""Checks of notebooks 00 and 01 accept correct answers written differently and reject plausible mistakes."""
from __future__ import annotations

import torch

from tests import checkcases
from utils import changevars as cv
from utils.checks.nb00 import sample_pushforward


# ---- 0.1
def sample_alt(f, n, d, generator):
    return f(torch.normal(0.0, 1.0, size=(n, d), generator=generator))


def returns_z(f, n, d, generator):
    return torch.randn(n, d, generator=generator)


def uniform_base(f, n, d, generator):
    return f(torch.rand(n, d, generator=generator))


def no_generator(f, n, d, generator):
    return f(torch.randn(n, d))


def transposed(f, n, d, generator):
    return f(torch.randn(n, d, generator=generator)).T


# ---- 1.1
def pf_alt(x, base_log_prob, f_inv, f_inv_deriv):
    z = f_inv(x)
    return base_log_prob(z) + torch.log(f_inv_deriv(x).abs().prod(dim=1))


def pf_no_jacobian(x, base_log_prob, f_inv, f_inv_deriv):
    return base_log_prob(f_inv(x))


def pf_no_abs(x, base_log_prob, f_inv, f_inv_deriv):
    return base_log_prob(f_inv(x)) + torch.log(f_inv_deriv(x)).sum(-1)


def pf_wrong_sign(x, base_log_prob, f_inv, f_inv_deriv):
    return base_log_prob(f_inv(x)) - torch.log(f_inv_deriv(x).abs()).sum(-1)


def pf_no_sum(x, base_log_prob, f_inv, f_inv_deriv):
    return base_log_prob(f_inv(x))[:, None] + torch.log(f_inv_deriv(x).abs())


def pf_base_at_x(x, base_log_prob, f_inv, f_inv_deriv):
    return base_log_prob(x) + torch.log(f_inv_deriv(x).abs()).sum(-1)


# ---- 1.2
def ladj_loop(f, x):
    x = x.clone().requires_grad_(True)
    y = f(x)
    rows = [torch.autograd.grad(y[:, i].sum(), x, retain_graph=True)[0] for i in range(x.shape[1])]
    J = torch.stack(rows, 1)
    return torch.log(torch.abs(torch.det(J)))


def ladj_func(f, x):
    J = torch.func.vmap(torch.func.jacrev(lambda v: f(v[None])[0]))(x)
    return torch.linalg.slogdet(J)[1]


def ladj_no_abs(f, x):
    return torch.log(torch.det(cv.jacobian(f, x)))


def ladj_diag(f, x):
    return torch.diagonal(cv.jacobian(f, x), dim1=1, dim2=2).abs().log().sum(-1)


def ladj_trace(f, x):
    return torch.diagonal(cv.jacobian(f, x), dim1=1, dim2=2).sum(-1)


# ---- 1.3
def affine_alt(x, A, b):
    return torch.distributions.MultivariateNormal(b, scale_tril=torch.linalg.cholesky(A @ A.T)).log_prob(x)


def affine_no_det(x, A, b):
    return cv.standard_normal_log_prob(torch.linalg.solve(A, (x - b).T).T)


def affine_plus_det(x, A, b):
    z = torch.linalg.inv(A) @ (x - b).T
    return cv.standard_normal_log_prob(z.T) + torch.log(torch.abs(torch.linalg.det(A)))


def affine_forward(x, A, b):
    return cv.standard_normal_log_prob(x @ A.T + b) - torch.linalg.slogdet(A).logabsdet


CORRECT = {
    "0.1": [sample_pushforward, sample_alt],
    "1.1": [cv.pushforward_log_prob, pf_alt],
    "1.2": [cv.log_abs_det_jacobian, ladj_loop, ladj_func],
    "1.3": [cv.affine_log_prob, affine_alt],
}
WRONG = {
    "0.1": [(returns_z, "base samples z"), (uniform_base, "torch.randn"), (no_generator, "generator"),
            (transposed, "wrong shape")],
    "1.1": [(pf_no_jacobian, "log|det"), (pf_no_abs, "absolute value"), (pf_wrong_sign, "wrong sign"),
            (pf_no_sum, "sum over the last dimension"), (pf_base_at_x, "z = f^-1(x)")],
    "1.2": [(ladj_no_abs, "absolute value"), (ladj_diag, "triangular"), (ladj_trace, "trace")],
    "1.3": [(affine_no_det, "Jacobian term is missing"), (affine_plus_det, "wrong sign"),
            (affine_forward, "inverse")],
}

test_accepts, test_rejects = checkcases.parametrize_cases(CORRECT, WRONG)
