"""Checks of notebook 01 (change of variables)."""
from __future__ import annotations

import torch

from .. import changevars as cv
from .core import CheckFailure, call, exercise, expect_close, expect_tensor, fmt

NB = "01_change_of_variables"


def _cases_1_1():
    """(name, x, f_inv, f_inv_deriv) for elementwise bijections with known densities."""
    g = torch.Generator().manual_seed(11)
    x_pos = torch.rand(64, 2, generator=g, dtype=torch.float64) * 3 + 0.05
    x_any = torch.randn(64, 2, generator=g, dtype=torch.float64) * 2
    return [
        ("exp (log-normal)", x_pos, torch.log, lambda x: 1 / x),
        ("x = -2z + 1 (decreasing)", x_any, lambda x: (1 - x) / 2, lambda x: torch.full_like(x, -0.5)),
        ("sinh", x_any, torch.asinh, lambda x: 1 / torch.sqrt(1 + x**2)),
    ]


@exercise("1.1", title="Log-density of a push-forward through an elementwise bijection", notebook=NB,
          answer="pushforward_log_prob", reference=cv.pushforward_log_prob, minutes=15,
          practises="the change-of-variables formula with a diagonal Jacobian")
def check_1_1(answer):
    base = cv.standard_normal_log_prob
    # the log-normal case is checked against torch.distributions, independently of our reference
    x = _cases_1_1()[0][1]
    got = call(answer, x, base, torch.log, lambda u: 1 / u, name="pushforward_log_prob")
    expected = torch.distributions.LogNormal(0.0, 1.0).log_prob(x).sum(-1)
    for name, x, f_inv, dfi in _cases_1_1():
        got = call(answer, x, base, f_inv, dfi, name="pushforward_log_prob")
        got = expect_tensor(got, (x.shape[0],), f"the log-density for {name}",
                            finite_hint="Is there an absolute value around the derivative? "
                                        "A decreasing map has a negative derivative.")
        ref = cv.pushforward_log_prob(x, base, f_inv, dfi)
        logdet = torch.log(torch.abs(dfi(x))).sum(-1)
        expect_close(got, ref, f"the log-density for f = {name}", atol=1e-5, inputs=x, mistakes=[
            (base(f_inv(x)), f"For f = {name} you returned log p_Z(f^-1(x)) alone: the change of variables "
                             "also adds log|det J_{f^-1}(x)|, here the sum of log|(f^-1)'(x_i)|."),
            (base(f_inv(x)) - logdet, f"For f = {name} the log-determinant term has the wrong sign: "
                                      "it is + log|(f^-1)'(x)| (equivalently - log|f'(z)|)."),
            (base(x) + logdet, f"For f = {name} you evaluated the base density at x: evaluate it at "
                               "z = f^-1(x)."),
        ])
    got = call(answer, _cases_1_1()[0][1], base, torch.log, lambda u: 1 / u)
    expect_close(got, expected, "the log-normal log-density (against torch.distributions.LogNormal)", atol=1e-5)
    return "It matches torch.distributions.LogNormal for f = exp."


def _maps_1_2():
    M = torch.tensor([[1.0, 2.0], [3.0, 1.0]], dtype=torch.float64)  # det -5: diagonal and sign traps
    return [
        ("an affine map with det A = -5", lambda x: x @ M.T + 1.0,
         lambda x: torch.full((x.shape[0],), float(torch.log(torch.tensor(5.0))), dtype=x.dtype)),
        ("f(x) = (x1 exp(x2), x2 + x1^2)", lambda x: torch.stack([x[:, 0] * torch.exp(x[:, 1]),
                                                                   x[:, 1] + x[:, 0] ** 2], 1),
         # J = [[e^x2, x1 e^x2], [2 x1, 1]], det = e^x2 (1 - 2 x1^2)
         lambda x: x[:, 1] + torch.log(torch.abs(1 - 2 * x[:, 0] ** 2))),
        ("the swap f(x) = (x2, x1)", lambda x: x.flip(1), lambda x: torch.zeros(x.shape[0], dtype=x.dtype)),
    ]


@exercise("1.2", title="log|det J| by autograd", notebook=NB, answer="log_abs_det_jacobian",
          reference=cv.log_abs_det_jacobian, minutes=15,
          practises="Jacobians with torch.autograd; log-determinants")
def check_1_2(answer):
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    for name, f, closed in _maps_1_2():
        got = call(answer, f, x.clone(), name="log_abs_det_jacobian")
        got = expect_tensor(got, (16,), f"log|det J| for {name}",
                            finite_hint="The determinant can be negative: take the log of its absolute value "
                                        "(torch.linalg.slogdet gives log|det| directly).")
        J = cv.jacobian(f, x)
        expect_close(got, closed(x), f"log|det J| for {name}", atol=1e-6, inputs=x, mistakes=[
            (torch.log(torch.abs(torch.diagonal(J, dim1=1, dim2=2))).sum(-1),
             f"For {name} you summed log|J_ii| over the diagonal: that is the log-determinant only for "
             "triangular Jacobians. Compute the full determinant."),
            (torch.diagonal(J, dim1=1, dim2=2).sum(-1),
             f"For {name} you returned the trace of J (the divergence), not log|det J|."),
            (torch.linalg.det(J), f"For {name} you returned det J itself: take log|det J|."),
            (torch.linalg.det(J).abs(), f"For {name} you returned |det J|: take its logarithm."),
        ])
    return "It matches the closed forms, negative determinants included."


def _A_b():
    A = torch.tensor([[2.0, 0.5], [0.0, 0.75]], dtype=torch.float64)  # det 1.5
    b = torch.tensor([1.0, -0.5], dtype=torch.float64)
    return A, b


@exercise("1.3", title="Density of an affine push-forward, integrating to 1", notebook=NB,
          answer="affine_log_prob", reference=cv.affine_log_prob, minutes=15,
          practises="inverse map and Jacobian of x = A z + b; normalisation checked on a grid")
def check_1_3(answer):
    A, b = _A_b()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(13), dtype=torch.float64) * 1.5 + b
    got = call(answer, x, A, b, name="affine_log_prob")
    got = expect_tensor(got, (64,), "affine_log_prob(x, A, b)")
    mvn = torch.distributions.MultivariateNormal(b, covariance_matrix=A @ A.T)
    expected = mvn.log_prob(x)
    if not torch.allclose(got, expected, atol=1e-5):
        mass = cv.grid_integral(lambda p: answer(p, A, b), lim=12.0, n=400)
        z = torch.linalg.solve(A, (x - b).T).T
        logdet = torch.linalg.slogdet(A).logabsdet
        expect_close(got, expected, "log p_X(x) (against N(b, A A^T) from torch.distributions)",
                     atol=1e-5, inputs=x, mistakes=[
            (cv.standard_normal_log_prob(z) + logdet,
             f"The Jacobian term has the wrong sign: your density integrates to {mass:.3f} on a grid, "
             "not 1 (it is |det A|^2 = 2.25). The inverse map z = A^-1 (x - b) has log|det| = -log|det A|."),
            (cv.standard_normal_log_prob(z),
             f"The Jacobian term is missing: your density integrates to {mass:.3f} on a grid "
             "(|det A| = 1.5), not 1. Add log|det A^-1| = -log|det A|."),
            (cv.standard_normal_log_prob(x @ A.T + b) - logdet,
             "You applied the forward map A x + b to x: the density needs the inverse, z = A^-1 (x - b)."),
        ])
    mass = cv.grid_integral(lambda p: answer(p, A, b), lim=12.0, n=400)
    if abs(mass - 1) > 1e-3:
        raise CheckFailure(f"Your density integrates to {fmt(mass)} on a grid, not 1.")
    return f"It equals N(b, A A^T) and integrates to {mass:.4f} on a grid."
