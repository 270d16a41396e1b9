"""Checks of notebook 01 (change of variables)."""
from __future__ import annotations

import math

import torch

from .. import changevars as cv
from .core import CheckFailure, exercise
from .expect import call, close, expect_cases, expect_close, expect_tensor, fmt

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


def _explain_1_1(answer, base):
    """Name the missing sum when the answer fails with a broadcasting error (issue: a raw RuntimeError).

    The answer is run on a square batch, n = d = 2, where (n,) + (n, d) broadcasts instead of failing;
    the missing sum is named only if the result then equals that broadcast sum.
    """
    def explain(error: Exception) -> str | None:
        if not isinstance(error, RuntimeError):
            return None
        x = _cases_1_1()[0][1][:2]
        try:
            out = answer(x, base, torch.log, lambda u: 1 / u)
        except Exception:
            return None
        elementwise = torch.log(torch.abs(1 / x))
        for broadcast in (base(torch.log(x))[None, :] + elementwise, base(torch.log(x))[:, None] + elementwise):
            if close(out, broadcast, atol=1e-8, rtol=1e-8):
                return ("The log-determinant term is not summed: log|(f^-1)'(x)| has one entry per coordinate, "
                        "shape (n, d), and adding it to base_log_prob(z), shape (n,), fails (with 64 points in "
                        "2D: \"" + str(error).split("\n")[0] + "\"). Sum it over the last dimension, "
                        ".sum(dim=-1), to get log|det J_{f^-1}(x)| of shape (n,).")
        return None
    return explain


@exercise("1.1", title="Log-density of a push-forward through an elementwise bijection", notebook=NB,
          answer="pushforward_log_prob", reference=cv.pushforward_log_prob, minutes=15,
          practises="the change-of-variables formula with a diagonal Jacobian")
def check_1_1(answer):
    base = cv.standard_normal_log_prob
    cases = _cases_1_1()
    gots, wants, names, inputs = [], [], [], []
    for name, x, f_inv, dfi in cases:
        got = call(answer, x.clone(), base, f_inv, dfi, name="pushforward_log_prob",
                   explain=_explain_1_1(answer, base))
        elementwise = torch.log(torch.abs(dfi(x)))
        if isinstance(got, torch.Tensor) and close(got, base(f_inv(x))[:, None] + elementwise, 1e-8, 1e-8):
            raise CheckFailure(f"For f = {name} you returned shape {tuple(got.shape)}: the log-determinant term "
                               "log|(f^-1)'(x_i)| is not summed over the coordinates. Sum it over the last "
                               "dimension, .sum(dim=-1), before adding it to base_log_prob(z).")
        gots.append(got)
        wants.append(cv.pushforward_log_prob(x, base, f_inv, dfi))
        names.append(f"the log-density for f = {name}")
        inputs.append(x)

    def each(fn):
        return [fn(x, f_inv, dfi) for _, x, f_inv, dfi in cases]

    logdet = lambda x, dfi: torch.log(torch.abs(dfi(x))).sum(-1)  # noqa: E731
    expect_cases(gots, wants, names, atol=1e-8, rtol=1e-8, inputs=inputs, mistakes=[
        (each(lambda x, fi, dfi: base(fi(x))),
         "You returned log p_Z(f^-1(x)) alone: the change of variables also adds log|det J_{f^-1}(x)|, here "
         "the sum of log|(f^-1)'(x_i)|."),
        (each(lambda x, fi, dfi: base(fi(x)) - logdet(x, dfi)),
         "The log-determinant term has the wrong sign: it is + log|(f^-1)'(x)| (equivalently - log|f'(z)|)."),
        (each(lambda x, fi, dfi: base(x) + logdet(x, dfi)),
         "You evaluated the base density at x: evaluate it at z = f^-1(x)."),
        (each(lambda x, fi, dfi: base(fi(x)) + torch.log(dfi(x)).sum(-1)),
         "For the decreasing map x = -2z + 1 your log-density is NaN: (f^-1)' is negative there, and its log "
         "is NaN. Take the absolute value first, log|(f^-1)'(x)|."),
        (each(lambda x, fi, dfi: base(fi(x)) + torch.log(torch.abs(dfi(x))).mean(-1)),
         "You averaged log|(f^-1)'(x_i)| over the coordinates: log|det J| of a diagonal Jacobian is their "
         "sum, .sum(dim=-1)."),
        (each(lambda x, fi, dfi: base(fi(x)) + torch.abs(dfi(x)).sum(-1)),
         "You added |(f^-1)'(x_i)| itself: the change of variables adds its logarithm, log|(f^-1)'(x_i)|."),
        (each(lambda x, fi, dfi: base(fi(x)) + logdet(fi(x), dfi)),
         "You evaluated the derivative of f^-1 at z = f^-1(x): it is (f^-1)'(x), at the point x itself."),
    ])
    # the log-normal case against torch.distributions, independently of our reference
    x = cases[0][1]
    expected = torch.distributions.LogNormal(0.0, 1.0).log_prob(x).sum(-1)
    expect_close(gots[0], expected, "the log-normal log-density (against torch.distributions.LogNormal)",
                 atol=1e-8, rtol=1e-8, inputs=x)
    return "It matches torch.distributions.LogNormal for f = exp."


def _maps_1_2():
    M = torch.tensor([[1.0, 2.0], [3.0, 1.0]], dtype=torch.float64)  # det -5: diagonal and sign traps
    M3 = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0], [1.0, 0.0, 1.0]], dtype=torch.float64)  # det 5
    return [
        ("an affine map with det A = -5", 2, lambda x: x @ M.T + 1.0,
         lambda x: torch.full((x.shape[0],), math.log(5.0), dtype=x.dtype)),
        ("f(x) = (x1 exp(x2), x2 + x1^2)", 2, lambda x: torch.stack([x[:, 0] * torch.exp(x[:, 1]),
                                                                      x[:, 1] + x[:, 0] ** 2], 1),
         # J = [[e^x2, x1 e^x2], [2 x1, 1]], det = e^x2 (1 - 2 x1^2)
         lambda x: x[:, 1] + torch.log(torch.abs(1 - 2 * x[:, 0] ** 2))),
        ("the swap f(x) = (x2, x1)", 2, lambda x: x.flip(1), lambda x: torch.zeros(x.shape[0], dtype=x.dtype)),
        # J = diag(cosh(M3 x)) M3: log|det J| = log 5 + sum log cosh(M3 x)
        ("the 3D map f(x) = sinh(M x), det M = 5", 3, lambda x: torch.sinh(x @ M3.T),
         lambda x: math.log(5.0) + torch.log(torch.cosh(x @ M3.T)).sum(-1)),
    ]


def _explain_1_2(x):
    """Name the whole-batch Jacobian: jacobian(f, x) on all n points is (n, d, n, d), and slogdet fails on it."""
    n, d = x.shape

    def explain(error: Exception) -> str | None:
        text = str(error)
        if isinstance(error, RuntimeError) and "square" in text and f"{n} by {d}" in text:
            return ("torch.linalg.slogdet got matrices of shape (n, d) = "
                    f"({n}, {d}), not d x d: you took the Jacobian of f on the whole batch at once. "
                    "torch.autograd.functional.jacobian(f, x) with x of shape (n, d) returns shape (n, d, n, d), "
                    "the derivative of every output point with respect to every input point. log|det J| needs one "
                    "d x d Jacobian per point: take it point by point (jacobian(lambda v: f(v[None])[0], row) for "
                    "each row), or the diagonal blocks J[i, :, i, :].")
        return None
    return explain


@exercise("1.2", title="log|det J| by autograd", notebook=NB, answer="log_abs_det_jacobian",
          reference=cv.log_abs_det_jacobian, minutes=15,
          practises="Jacobians with torch.autograd; log-determinants")
def check_1_2(answer):
    g = torch.Generator().manual_seed(12)
    cases = [(name, torch.randn(16, d, generator=g, dtype=torch.float64), f, closed)
             for name, d, f, closed in _maps_1_2()]
    gots, wants, names, inputs, Js = [], [], [], [], []
    for name, x, f, closed in cases:
        got = call(answer, f, x.clone(), name="log_abs_det_jacobian", explain=_explain_1_2(x))
        if isinstance(got, (tuple, list)) and len(got) == 2:
            raise CheckFailure(f"For {name} you returned a pair: torch.linalg.slogdet returns (sign, logabsdet); "
                               "return the second, `.logabsdet`.")
        gots.append(got)
        wants.append(closed(x))
        names.append(f"log|det J| for {name}")
        inputs.append(x)
        Js.append(cv.jacobian(f, x))
    # a determinant written out for 2 x 2 is right in 2D; on the 3D map it uses the top-left block only
    by_hand_2d = [want if J.shape[-1] == 2 else
                  torch.log(torch.abs(J[:, 0, 0] * J[:, 1, 1] - J[:, 0, 1] * J[:, 1, 0]))
                  for J, want in zip(Js, wants)]
    expect_cases(gots, wants, names, atol=1e-8, rtol=1e-8, inputs=inputs, mistakes=[
        ([torch.log(torch.abs(torch.diagonal(J, dim1=1, dim2=2))).sum(-1) for J in Js],
         "You summed log|J_ii| over the diagonal: that is the log-determinant only for triangular Jacobians. "
         "Compute the full determinant."),
        ([torch.diagonal(J, dim1=1, dim2=2).sum(-1) for J in Js],
         "You returned the trace of J (the divergence), not log|det J|."),
        ([torch.linalg.det(J) for J in Js], "You returned det J itself: take log|det J|."),
        ([torch.linalg.det(J).abs() for J in Js], "You returned |det J|: take its logarithm."),
        ([torch.log(torch.linalg.det(J)) for J in Js],
         "Your log|det J| is NaN where det J < 0 (the affine map has det -5): take the log of the absolute "
         "value, log|det J| (torch.linalg.slogdet gives it directly)."),
        ([torch.linalg.slogdet(J).sign for J in Js],
         "You returned the sign of det J (the first output of torch.linalg.slogdet): return `.logabsdet`."),
        (by_hand_2d, "Right in 2D, but for the 3D map f(x) = sinh(M x) you computed the determinant of the "
                     "top-left 2 x 2 block only (J11 J22 - J12 J21): x has d columns, so use the full d x d "
                     "Jacobian (torch.linalg.slogdet works for any d)."),
    ])
    return "It matches the closed forms, negative determinants and a 3D map included."


def _cases_1_3():
    A = torch.tensor([[2.0, 0.5], [-0.4, 0.75]], dtype=torch.float64)  # det 1.7, not triangular
    b = torch.tensor([1.0, -0.5], dtype=torch.float64)
    A2 = torch.tensor([[0.5, 1.2], [1.0, -0.6]], dtype=torch.float64)  # det -1.5: needs |det|
    b2 = torch.tensor([-2.0, 0.5], dtype=torch.float64)
    g = torch.Generator().manual_seed(13)
    return [(A, b, torch.randn(64, 2, generator=g, dtype=torch.float64) * 1.5 + b),
            (A2, b2, torch.randn(64, 2, generator=g, dtype=torch.float64) * 1.5 + b2)]


@exercise("1.3", title="Density of an affine push-forward, integrating to 1", notebook=NB,
          answer="affine_log_prob", reference=cv.affine_log_prob, minutes=20,
          practises="deriving the inverse map and Jacobian of x = A z + b; normalisation checked on a grid")
def check_1_3(answer):
    cases = _cases_1_3()
    gots, wants, names, inputs = [], [], [], []
    for A, b, x in cases:
        got = call(answer, x.clone(), A.clone(), b.clone(), name="affine_log_prob")
        gots.append(got)
        wants.append(torch.distributions.MultivariateNormal(b, covariance_matrix=A @ A.T).log_prob(x))
        names.append(f"log p_X(x) for A = {A.tolist()}, b = {b.tolist()} (against N(b, A A^T) from "
                     "torch.distributions)")
        inputs.append(x)
    base = cv.standard_normal_log_prob

    def each(fn):
        return [fn(x, A, b, torch.linalg.solve(A, (x - b).T).T, torch.linalg.slogdet(A).logabsdet)
                for A, b, x in cases]

    A, b, _ = cases[0]
    det = float(torch.linalg.det(A))

    def mass() -> str:
        try:
            m = cv.grid_integral(lambda p: answer(p, A.clone(), b.clone()), lim=12.0, n=400)
            return f"{m:.3f}"
        except Exception:
            return "not 1"

    if close(gots[0], each(lambda x, A, b, z, ld: base(z) + ld)[0], 1e-8, 1e-8) and \
            close(gots[1], each(lambda x, A, b, z, ld: base(z) + ld)[1], 1e-8, 1e-8):
        raise CheckFailure(f"The Jacobian term has the wrong sign: your density integrates to {mass()} on a grid "
                           f"for det A = {det:.2f}, not 1 (it is |det A|^2 = {det**2:.2f}). The inverse map "
                           "z = A^-1 (x - b) has log|det| = -log|det A|.")
    if close(gots[0], each(lambda x, A, b, z, ld: base(z))[0], 1e-8, 1e-8) and \
            close(gots[1], each(lambda x, A, b, z, ld: base(z))[1], 1e-8, 1e-8):
        raise CheckFailure(f"The Jacobian term is missing: your density integrates to {mass()} on a grid for "
                           f"det A = {det:.2f} (that is |det A|), not 1. Add log|det A^-1| = -log|det A|.")
    expect_cases(gots, wants, names, atol=1e-8, rtol=1e-8, inputs=inputs, mistakes=[
        (each(lambda x, A, b, z, ld: base(x @ A.T + b) - ld),
         "You applied the forward map A x + b to x: the density needs the inverse, z = A^-1 (x - b)."),
        (each(lambda x, A, b, z, ld: base((x - b) @ torch.linalg.inv(A)) - ld),
         "You computed (x - b) @ inv(A): for row vectors that is A^-T (x - b), the inverse of the transpose. "
         "Use (x - b) @ inv(A).T, or torch.linalg.solve(A, (x - b).T).T."),
        (each(lambda x, A, b, z, ld: base(torch.linalg.solve(A, x.T).T) - ld),
         "You inverted x = A z without b: the inverse is z = A^-1 (x - b)."),
        (each(lambda x, A, b, z, ld: base(torch.linalg.solve(A, (x + b).T).T) - ld),
         "You added b: the inverse of x = A z + b is z = A^-1 (x - b)."),
        (each(lambda x, A, b, z, ld: base(z) - torch.log(torch.linalg.det(A))),
         "For A with det A = -1.5 your density is NaN: log det A is undefined for a negative determinant. "
         "The Jacobian term is -log|det A|, with the absolute value (torch.linalg.slogdet(A).logabsdet)."),
        (each(lambda x, A, b, z, ld: base(z) - torch.linalg.det(A)),
         "You subtracted det A itself: the Jacobian term is -log|det A|."),
        (each(lambda x, A, b, z, ld: base(z) - torch.log(torch.abs(torch.diagonal(A))).sum()),
         "You took log|det A| as the sum of log|A_ii|: that holds only for triangular A. Use the full "
         "determinant, torch.linalg.slogdet(A).logabsdet."),
    ])
    m = cv.grid_integral(lambda p: answer(p, A, b), lim=12.0, n=400)
    if abs(m - 1) > 1e-3:  # the Gaussian's mass outside [-12, 12]^2 and the grid error are below 1e-6
        raise CheckFailure(f"Your density integrates to {fmt(m, 6)} on a grid, not 1.")
    far = torch.tensor([[60.0, 60.0], [-45.0, 30.0], [0.0, -80.0]], dtype=torch.float64)  # issue 20: far points
    got = expect_tensor(call(answer, far.clone(), A.clone(), b.clone(), name="affine_log_prob"), (3,),
                        "log p_X(x) at far points", finite=False)
    want = torch.distributions.MultivariateNormal(b, covariance_matrix=A @ A.T).log_prob(far)
    if not torch.isfinite(got).all() or not close(got, want, 1e-8, 1e-8):
        raise CheckFailure("Right near the data, but at far points such as (60, 60) your log-density is "
                           f"{fmt(float(got[0]), 4)}, not {fmt(float(want[0]), 4)}: there the density exp(-|z|^2 / 2) "
                           "underflows to 0 and its log is -inf. Work in log space: add log-densities "
                           "(standard_normal_log_prob(z)) and log-determinants, never take the log of a density.")
    return "It equals N(b, A A^T), negative det A included, far from the data too, and integrates to 1 within 1e-3 " \
           "on a grid."
