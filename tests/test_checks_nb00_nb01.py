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


def sample_normal_(f, n, d, generator):
    return f(torch.empty(n, d).normal_(generator=generator))


def transposed(f, n, d, generator):
    return f(torch.randn(n, d, generator=generator)).T


def correlated(f, n, d, generator):  # one number per sample, repeated in every coordinate
    return f(torch.randn(n, 1, generator=generator).repeat(1, d))


def own_seed(f, n, d, generator):  # reproducible, but not from the generator given
    return f(torch.randn(n, d, generator=torch.Generator().manual_seed(0)))


def row_by_row(f, n, d, generator):
    return f(torch.stack([torch.randn(d, generator=generator) for _ in range(n)]))


def in_float64(f, n, d, generator):
    return f(torch.randn(n, d, generator=generator, dtype=torch.float64))


def applied_twice(f, n, d, generator):
    return f(f(torch.randn(n, d, generator=generator)))


def hard_coded_2d(f, n, d, generator):
    return f(torch.randn(n, 2, generator=generator))


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


def pf_broadcast_error(x, base_log_prob, f_inv, f_inv_deriv):  # (n,) + (n, d): a broadcasting error
    return base_log_prob(f_inv(x)) + torch.log(torch.abs(f_inv_deriv(x)))


def pf_mean(x, base_log_prob, f_inv, f_inv_deriv):
    return base_log_prob(f_inv(x)) + torch.log(f_inv_deriv(x).abs()).mean(-1)


def pf_deriv_at_z(x, base_log_prob, f_inv, f_inv_deriv):
    z = f_inv(x)
    return base_log_prob(z) + torch.log(f_inv_deriv(z).abs()).sum(-1)


def pf_no_log(x, base_log_prob, f_inv, f_inv_deriv):
    return base_log_prob(f_inv(x)) + f_inv_deriv(x).abs().sum(-1)


def pf_logabs_loop(x, base_log_prob, f_inv, f_inv_deriv):
    d = f_inv_deriv(x)
    return base_log_prob(f_inv(x)) + sum(torch.log(torch.abs(d[:, i])) for i in range(x.shape[1]))


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


def _jac(f, x):
    return torch.func.vmap(torch.func.jacrev(lambda v: f(v[None])[0]))(x)


def ladj_det(f, x):
    return torch.linalg.det(_jac(f, x))


def ladj_sign(f, x):
    return torch.linalg.slogdet(_jac(f, x))[0]


def ladj_pair(f, x):
    return torch.linalg.slogdet(_jac(f, x))


def ladj_by_hand_2d(f, x):
    J = _jac(f, x)
    return torch.log(torch.abs(J[:, 0, 0] * J[:, 1, 1] - J[:, 0, 1] * J[:, 1, 0]))


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


def affine_cov(x, A, b):
    cov = A @ A.T
    r = x - b
    maha = (r @ torch.linalg.inv(cov) * r).sum(-1)
    return -0.5 * maha - torch.log(2 * torch.pi * torch.sqrt(torch.linalg.det(cov)))


def affine_right_inverse(x, A, b):  # (x - b) @ inv(A) is A^-T (x - b) row by row
    return cv.standard_normal_log_prob((x - b) @ torch.linalg.inv(A)) - torch.linalg.slogdet(A).logabsdet


def affine_no_b(x, A, b):
    return cv.standard_normal_log_prob(torch.linalg.solve(A, x.T).T) - torch.linalg.slogdet(A).logabsdet


def affine_log_det_no_abs(x, A, b):
    return cv.standard_normal_log_prob(torch.linalg.solve(A, (x - b).T).T) - torch.log(torch.linalg.det(A))


def affine_diag_det(x, A, b):
    return cv.standard_normal_log_prob(torch.linalg.solve(A, (x - b).T).T) - torch.log(A.diagonal().abs()).sum()


def affine_density_then_log(x, A, b):  # issue 20: right near the data, -inf far from it
    z = torch.linalg.solve(A, (x - b).T).T
    density = torch.exp(-0.5 * (z**2).sum(-1)) / (2 * torch.pi)
    return torch.log(density) - torch.linalg.slogdet(A).logabsdet


def ladj_whole_batch(f, x):  # walkthrough-3 m4: the Jacobian of the whole batch, (n, d, n, d)
    J = torch.autograd.functional.jacobian(f, x)
    return torch.linalg.slogdet(J).logabsdet


CORRECT = {
    "0.1": [sample_pushforward, sample_alt, sample_normal_],
    "1.1": [cv.pushforward_log_prob, pf_alt, pf_logabs_loop],
    "1.2": [cv.log_abs_det_jacobian, ladj_loop, ladj_func],
    "1.3": [cv.affine_log_prob, affine_alt, affine_cov],
}
WRONG = {
    "0.1": [(returns_z, "base samples z"), (uniform_base, "torch.rand)"), (no_generator, "seeded alike"),
            (transposed, "it is transposed"), (correlated, "coordinates of z must be independent"),
            (own_seed, "do not come from `generator`"), (row_by_row, "one row at a time"),
            (in_float64, "float64"), (applied_twice, "applied f twice"), (hard_coded_2d, "should have shape (40, 3)")],
    "1.1": [(pf_no_jacobian, "log|det"), (pf_no_abs, "take the absolute value"), (pf_wrong_sign, "wrong sign"),
            (pf_no_sum, "not summed over the coordinates"), (pf_broadcast_error, ".sum(dim=-1)"),
            (pf_base_at_x, "z = f^-1(x)"), (pf_mean, "averaged"), (pf_deriv_at_z, "at the point x itself"),
            (pf_no_log, "its logarithm")],
    "1.2": [(ladj_no_abs, "absolute value"), (ladj_diag, "triangular"), (ladj_trace, "trace"),
            (ladj_det, "det J itself"), (ladj_sign, "sign of det J"), (ladj_pair, "returned a pair"),
            (ladj_by_hand_2d, "top-left 2 x 2 block"), (ladj_whole_batch, "Jacobian of f on the whole batch")],
    "1.3": [(affine_no_det, "Jacobian term is missing"), (affine_plus_det, "wrong sign"),
            (affine_forward, "forward map"), (affine_right_inverse, "inverse of the transpose"),
            (affine_no_b, "without b"), (affine_log_det_no_abs, "absolute value"),
            (affine_diag_det, "only for triangular A"), (affine_density_then_log, "work in log space")],
}

test_accepts, test_rejects = checkcases.parametrize_cases(CORRECT, WRONG)
