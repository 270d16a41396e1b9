"""Checks of notebook 03 (continuous-time flows and neural ODEs).

Solver steps are checked against closed forms (one RK4 step on a linear
field is the 4th-order Taylor polynomial of exp(h A); on a field of t alone
it is Simpson's rule) and by their order of convergence; divergences against
closed forms and autograd; Hutchinson's estimator by its mean over many
probes; the log-likelihood against the exact Gaussian of a linear flow and
the closed-form flow of dx/dt = -x^3.
"""
from __future__ import annotations

import math

import torch

from .. import divergence as dv
from .. import solvers
from .core import CheckFailure, call, exercise, expect_close, expect_tensor, fmt

NB = "03_continuous_flows"
A = torch.tensor([[-0.3, -1.0], [0.8, 0.2]], dtype=torch.float64)  # trace -0.1, not symmetric


def _tcol(t, x: torch.Tensor) -> torch.Tensor:
    """Any time the student passes (float, 0-d, (n,), (n, 1)) as a column (n, 1)."""
    t = torch.as_tensor(t, dtype=x.dtype)
    if t.ndim == 0:
        return t.expand(x.shape[0])[:, None]
    return t.reshape(x.shape[0], 1)


def linear_tv(x, t):
    """u(x, t) = (1 + t) A x: its flow from 0 to t is exp((t + t^2 / 2) A)."""
    return (1 + _tcol(t, x)) * (x @ A.T)


def quartic_in_t(x, t):
    """u = 4 t^3, the same in every coordinate: the exact increment is (t + dt)^4 - t^4."""
    return (4 * _tcol(t, x) ** 3).expand_as(x)


def _points(n=32, d=2, seed=31, scale=1.0):
    return scale * torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _step_result(answer, name, u, x, t, dt):
    out = call(answer, u, x.clone(), t, dt, name=name)
    return expect_tensor(out, x.shape, f"{name}(u, x, t={t}, dt={dt})")


# ------------------------------------------------------------------ 3.1

@exercise("3.1", title="An Euler step", notebook=NB, answer="euler_step", reference=solvers.euler_step,
          minutes=5, practises="the explicit Euler method for dx/dt = u(x, t)")
def check_3_1(answer):
    x, t, dt = _points(), 0.3, 0.1
    got = _step_result(answer, "euler_step", linear_tv, x, t, dt)
    expect_close(got, x + dt * linear_tv(x, t), "one Euler step of u(x, t) = (1 + t) A x", atol=1e-9,
                 inputs=x, mistakes=[
        (x + dt * linear_tv(x, t + dt), "You evaluated the field at the end of the step, t + dt: Euler uses the "
                                        "slope where the step starts, u(x, t)."),
        (dt * linear_tv(x, t), "You returned only the increment dt * u(x, t): the step is x + dt * u(x, t)."),
        (x + linear_tv(x, t), "You forgot dt: the step is x + dt * u(x, t)."),
    ], sign_hint="")
    got = _step_result(answer, "euler_step", quartic_in_t, x, 0.5, 0.25)
    expect_close(got, x + 0.25 * quartic_in_t(x, 0.5), "one Euler step of u = 4 t^3 from t = 0.5",
                 atol=1e-9, mistakes=[(x, "The step ignores time: pass t to the field, u(x, t).")])
    return ""


# ------------------------------------------------------------------ 3.2

def _rk4_wrong(u, x, t, dt, kind):
    k1 = u(x, t)
    k2 = u(x + dt / 2 * k1, t + dt / 2)
    k3 = u(x + dt / 2 * k2, t + dt / 2)
    k4 = u(x + dt * k3, t + dt)
    if kind == "quarter":
        return x + dt / 4 * (k1 + k2 + k3 + k4)
    if kind == "stale_time":
        k2 = u(x + dt / 2 * k1, t)
        k3 = u(x + dt / 2 * k2, t)
        k4 = u(x + dt * k3, t)
        return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    if kind == "k1_everywhere":
        k3 = u(x + dt / 2 * k1, t + dt / 2)
        k4 = u(x + dt * k1, t + dt)
        return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    if kind == "full_steps":
        k2 = u(x + dt * k1, t + dt / 2)
        k3 = u(x + dt * k2, t + dt / 2)
        return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    raise ValueError(kind)


@exercise("3.2", title="A Runge-Kutta 4 step", notebook=NB, answer="rk4_step", reference=solvers.rk4_step,
          minutes=10, practises="the classical RK4 method; order of convergence")
def check_3_2(answer):
    x, h = _points(), 0.2
    # autonomous linear field: one RK4 step is exactly the Taylor polynomial of exp(h A) to 4th order
    hA = h * A
    I = torch.eye(2, dtype=torch.float64)
    taylor = I + hA + hA @ hA / 2 + hA @ hA @ hA / 6 + hA @ hA @ hA @ hA / 24
    lin = lambda y, t: y @ A.T  # noqa: E731
    got = _step_result(answer, "rk4_step", lin, x, 0.0, h)
    expect_close(got, x @ taylor.T, "one RK4 step of u(x) = A x (exact: I + hA + ... + (hA)^4/24)", atol=1e-9,
                 inputs=x, mistakes=[
        (x + h * lin(x, 0.0), "That is an Euler step: RK4 averages four slopes k1..k4."),
        (_rk4_wrong(lin, x, 0.0, h, "quarter"), "The weights are (1, 2, 2, 1) / 6, not (1, 1, 1, 1) / 4."),
        (_rk4_wrong(lin, x, 0.0, h, "k1_everywhere"), "Each slope builds on the previous one: k3 uses "
                                                       "x + dt/2 * k2 and k4 uses x + dt * k3."),
        (_rk4_wrong(lin, x, 0.0, h, "full_steps"), "k2 and k3 are evaluated half a step ahead: "
                                                    "x + dt/2 * k1 and x + dt/2 * k2."),
    ])
    # a field of t alone: RK4 is Simpson's rule, exact for cubics in t
    t0 = 0.3
    got = _step_result(answer, "rk4_step", quartic_in_t, x, t0, h)
    expect_close(got, x + ((t0 + h) ** 4 - t0**4), "one RK4 step of u = 4 t^3 (exact: (t+dt)^4 - t^4)",
                 atol=1e-9, mistakes=[
        (_rk4_wrong(quartic_in_t, x, t0, h, "stale_time"), "The slopes k2, k3 must be taken at time t + dt/2 "
                                                           "and k4 at t + dt, not all at t."),
    ])
    got = _step_result(answer, "rk4_step", linear_tv, x, t0, h)
    expect_close(got, solvers.rk4_step(linear_tv, x, t0, h), "one RK4 step of u = (1 + t) A x", atol=1e-9,
                 inputs=x)
    # order of convergence, with the student's own step
    exact = x @ torch.linalg.matrix_exp(1.5 * A).T
    errs = []
    for n in (8, 16):
        y = x
        for k in range(n):
            y = call(answer, linear_tv, y, k / n, 1 / n, name="rk4_step")
        errs.append((y - exact).abs().max().item())
    order = math.log2(errs[0] / errs[1])
    if not 3.5 < order < 4.6:
        raise CheckFailure(f"Halving dt should divide the error of RK4 by about 2^4 = 16; yours was divided by "
                           f"{errs[0] / errs[1]:.3g} (order {order:.2f}).")
    return f"Halving dt divides its error by {errs[0] / errs[1]:.1f}: fourth order."


# ------------------------------------------------------------------ 3.3

def _nonlinear(x, t):
    """u = (sin(x1 x2) + t x1^2, t x2^3 - x1 exp(x2))."""
    tc = _tcol(t, x)[:, 0]
    return torch.stack([torch.sin(x[:, 0] * x[:, 1]) + tc * x[:, 0] ** 2,
                        tc * x[:, 1] ** 3 - x[:, 0] * torch.exp(x[:, 1])], 1)


def _nonlinear_div(x, t):
    return x[:, 1] * torch.cos(x[:, 0] * x[:, 1]) + 2 * t * x[:, 0] + 3 * t * x[:, 1] ** 2 - x[:, 0] * torch.exp(x[:, 1])


def _field3(x, t):
    """A 3D field: u = (x2 x3, x1^2, t tanh(x3)); div = t (1 - tanh(x3)^2)."""
    tc = _tcol(t, x)[:, 0]
    return torch.stack([x[:, 1] * x[:, 2], x[:, 0] ** 2, tc * torch.tanh(x[:, 2])], 1)


def _jac(u, x, t):
    from ..changevars import jacobian
    return jacobian(lambda y: u(y, t), x)


@exercise("3.3", title="The exact divergence by autograd", notebook=NB, answer="divergence_exact",
          reference=dv.divergence_exact, minutes=15,
          practises="the trace of the Jacobian with one backward pass per dimension; create_graph")
def check_3_3(answer):
    x, t = _points(24), torch.full((24,), 0.4, dtype=torch.float64)
    x3 = _points(24, 3, seed=33)
    cases = [("u(x) = A x", lambda y, s: y @ A.T, x, torch.full((24,), float(torch.trace(A)), dtype=torch.float64)),
             ("a nonlinear, time-dependent field", _nonlinear, x, _nonlinear_div(x, 0.4)),
             ("a 3D field", _field3, x3, 0.4 * (1 - torch.tanh(x3[:, 2]) ** 2))]
    for name, u, pts, want in cases:
        got = call(answer, u, pts.clone(), t.clone(), name="divergence_exact")
        got = expect_tensor(got, (pts.shape[0],), f"the divergence of {name}")
        J = _jac(u, pts, t)
        expect_close(got, want, f"the divergence of {name}", atol=1e-8, inputs=pts, mistakes=[
            (J.sum((1, 2)), f"For {name} you summed every entry of the Jacobian (the gradient of u.sum() "
                            "summed over coordinates): the divergence is the sum of the diagonal only, "
                            "du_i/dx_i. Take entry i of the gradient of u_i."),
            (torch.linalg.det(J), f"For {name} you returned det J: the divergence is its trace."),
        ])
    # it must stay differentiable, for training: u = theta * x^2 has div = 2 theta (x1 + x2)
    theta = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    got = call(answer, lambda y, s: theta * y**2, x.clone(), t.clone(), name="divergence_exact")
    if not got.requires_grad:
        raise CheckFailure("The divergence is right but cut off from the graph: a loss built on it could not "
                           "be trained. Pass create_graph=True to torch.autograd.grad.")
    (g,) = torch.autograd.grad(got.sum(), theta)
    expect_close(g, 2 * x.sum(), "d/dtheta of the divergence of theta * x^2 (summed over points)", atol=1e-8)
    return "It matches the closed forms in 2D and 3D and can be differentiated."


# ------------------------------------------------------------------ 3.4

@exercise("3.4", title="Hutchinson's trace estimator", notebook=NB, answer="divergence_hutchinson",
          reference=dv.divergence_hutchinson, minutes=15,
          practises="unbiased estimation of a trace with vector-Jacobian products")
def check_3_4(answer):
    x, t = _points(8, seed=34, scale=0.7), torch.full((8,), 0.4, dtype=torch.float64)
    exact = _nonlinear_div(x, 0.4)

    def run(num_probes, seed):
        out = call(answer, _nonlinear, x.clone(), t.clone(), num_probes, torch.Generator().manual_seed(seed),
                   name="divergence_hutchinson")
        return expect_tensor(out, (8,), f"the estimate with num_probes={num_probes}").detach()

    a, b, c = run(1, 5), run(1, 5), run(1, 6)
    if not torch.equal(a, b):
        raise CheckFailure("Two calls with generators seeded the same gave different estimates: draw the "
                           "probe vectors with `generator=generator` (torch.randn(..., generator=generator)).")
    if torch.allclose(a, exact, atol=1e-6) and torch.allclose(c, exact, atol=1e-6):
        raise CheckFailure("With one probe your estimate equals the exact divergence at every point: that is "
                           "the exact computation, not Hutchinson's random estimate eps^T J eps.")
    if torch.equal(a, c):
        raise CheckFailure("Different generator seeds gave the same estimate: the probes must be random.")
    K = 1000
    J = _jac(_nonlinear, x, t)
    sym = (J + J.transpose(1, 2)) / 2
    std = torch.sqrt(2 * (sym**2).sum((1, 2)) / K)  # the spread of a Gaussian-probe average: an upper bound
    got = run(K, 7)
    tol = 6 * std + 1e-6
    if ((got - exact).abs() > tol).any():
        uniform = J.diagonal(dim1=1, dim2=2).sum(-1) / 12 + J.sum((1, 2)) / 4  # E[eps^T J eps], eps ~ U(0, 1)
        if ((got - K * exact).abs() < K * tol).all():
            raise CheckFailure(f"Averaged over {K} probes your estimate is about {K} times the divergence: you "
                               "summed over the probes. Divide by num_probes.")
        if (got.abs() < tol).all():
            raise CheckFailure(f"Averaged over {K} probes your estimate is about 0: you summed eps^T J without "
                               "multiplying by eps again. The estimate is (eps^T J) . eps.")
        if ((got - uniform).abs() < tol).all():
            raise CheckFailure("Your estimate is biased: the probes look uniform on [0, 1) (torch.rand). They "
                               "need zero mean and identity covariance: torch.randn, or its sign (Rademacher).")
        i = int(((got - exact).abs() / tol).argmax())
        raise CheckFailure(f"The estimate is biased: averaged over {K} probes it gives {fmt(got[i])} at "
                           f"x = {fmt(x[i])}, where the divergence is {fmt(exact[i])} (expected within "
                           f"{fmt(tol[i])}). eps^T J eps has mean trace(J) only for probes with zero mean "
                           "and identity covariance.")
    return f"Averaged over {K} probes it is within the expected noise of the exact divergence."


# ------------------------------------------------------------------ 3.5

def _cube(x, t):
    return -(x**3)


@exercise("3.5", title="The log-likelihood by the augmented ODE", notebook=NB, answer="log_likelihood",
          reference=dv.ode_log_likelihood, minutes=20,
          practises="the instantaneous change of variables, integrated backwards from data to noise")
def check_3_5(answer):
    n = 64
    # case 1: u = (1 + t) A x, x1 = M x0 with M = exp(1.5 A): p_1 = N(0, M M^T) exactly
    x0 = _points(n, seed=35)
    M = torch.linalg.matrix_exp(1.5 * A)
    x1 = x0 @ M.T
    exact = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), M @ M.T).log_prob(x1)
    base = lambda z: -0.5 * (z**2).sum(-1) - math.log(2 * math.pi)  # noqa: E731
    int_div = 1.5 * float(torch.trace(A))  # int_0^1 (1 + t) tr A dt
    sign_msg = ("Wrong sign of the divergence term: along the flow d/dt log p_t(x_t) = -div u(x_t, t), so "
                "log p_1(x1) = log p_0(x0) - int_0^1 div u dt. Integrating [x, l] backwards from (x1, 0) with "
                "dl/dt = +div u gives l(0) = -int div, which is added.")
    got = call(answer, linear_tv, x1.clone(), 20, name="log_likelihood")
    got = expect_tensor(got, (n,), "log_likelihood(u, x1, num_steps=20)")
    expect_close(got, exact, "log p_1(x1) for u = (1 + t) A x (exact: N(0, M M^T), M = exp(1.5 A))",
                 atol=1e-4, inputs=x1, input_name="x1", mistakes=[
        (base(x0) + int_div, sign_msg),
        (base(x0), "The divergence term is missing: log p_1(x1) = log p_0(x0) - int_0^1 div u(x_t, t) dt."),
        (base(x1) - int_div, "You evaluated the base density at x1: first integrate the ODE backwards from x1 "
                             "at t=1 to x0 at t=0, then evaluate log p_0(x0)."),
        (base(x1 @ M.T) - int_div, "You integrated forwards, from t=0 to t=1: to find the noise x0 that flows to "
                                   "x1, integrate backwards from t=1 to t=0 (a negative dt)."),
    ])
    # case 2: u = -x^3 has flow x_t = x0 / sqrt(1 + 2 t x0^2), so x0 = x1 / sqrt(1 - 2 x1^2)
    x1 = 1.1 * torch.rand(n, 2, generator=torch.Generator().manual_seed(36), dtype=torch.float64) - 0.55
    x0 = x1 / torch.sqrt(1 - 2 * x1**2)
    log_det = -1.5 * torch.log(1 - 2 * x1**2).sum(-1)  # log |d x0 / d x1|
    got = call(answer, _cube, x1.clone(), 20, name="log_likelihood")
    got = expect_tensor(got, (n,), "log_likelihood(u, x1, num_steps=20)")
    expect_close(got, base(x0) + log_det, "log p_1(x1) for u = -x^3 (closed-form flow)", atol=1e-4,
                 inputs=x1, input_name="x1", mistakes=[(base(x0) - log_det, sign_msg)])
    return "It matches the exact Gaussian of the linear flow and the closed form for u = -x^3."
