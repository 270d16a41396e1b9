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
from .core import CheckFailure, exercise
from .expect import call, close, expect_cases, expect_close, expect_tensor, fmt

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


def _strict(u, name):
    """The field as the student's step sees it: times must be a tensor of shape (n,), as the statement says.

    Times and steps in the checks of 3.1 and 3.2 are dyadic (0.375, 0.125, ...), exact in float32 too,
    so times built in either dtype give the same numbers.
    """
    def field(x, t):
        n = x.shape[0]
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != (n,):
            got = f"t = {t!r} (a {type(t).__name__})" if not isinstance(t, torch.Tensor) else \
                f"t of shape {tuple(t.shape)}"
            raise CheckFailure(f"`{name}` called the field with {got}: the fields of the course take one time per "
                               f"point, a tensor of shape (n,) = ({n},). x.new_full((x.shape[0],), t) makes it.")
        return u(x, t)
    return field


def _nonlinear(x, t):
    """u = (sin(x1 x2) + t x1^2, t x2^3 - x1 exp(x2))."""
    tc = _tcol(t, x)[:, 0]
    return torch.stack([torch.sin(x[:, 0] * x[:, 1]) + tc * x[:, 0] ** 2,
                        tc * x[:, 1] ** 3 - x[:, 0] * torch.exp(x[:, 1])], 1)


def _nonlinear_div(x, t):
    return x[:, 1] * torch.cos(x[:, 0] * x[:, 1]) + 2 * t * x[:, 0] + 3 * t * x[:, 1] ** 2 - x[:, 0] * torch.exp(x[:, 1])


def _step_results(answer, name, cases):
    """The answer on every case (field, x, t, dt), with the field checking the times it is given."""
    outs = []
    for desc, u, x, t, dt in cases:
        out = call(answer, _strict(u, name), x.clone(), t, dt, name=name)
        outs.append(expect_tensor(out, x.shape, f"{name}(u, x, t={t}, dt={dt}) for {desc}", finite=False))
    return outs


# ------------------------------------------------------------------ 3.1

def _euler_wrong(u, x, t, dt, kind):
    """Known mistakes of an Euler step, computed, so that a message names one only if the answer made it."""
    if kind == "end_time":
        return x + dt * u(x, t + dt)
    if kind == "increment":
        return dt * u(x, t)
    if kind == "no_dt":
        return x + u(x, t)
    if kind == "minus":
        return x - dt * u(x, t)
    if kind == "time_zero":
        return x + dt * u(x, 0.0)
    if kind == "midpoint":
        return solvers.midpoint_step(u, x, t, dt)
    raise ValueError(kind)


_EULER_MISTAKES = {
    "end_time": "You evaluated the field at the end of the step, t + dt: Euler uses the slope where the step "
                "starts, u(x, t).",
    "increment": "You returned only the increment dt * u(x, t): the step is x + dt * u(x, t).",
    "no_dt": "You forgot dt: the step is x + dt * u(x, t).",
    "minus": "You stepped against the field, x - dt * u(x, t): the step is x + dt * u(x, t) (dt itself is "
             "negative when going back in time).",
    "time_zero": "The step ignores the time t: pass the times t (shape (n,)) to the field, u(x, t).",
    "midpoint": "That is a midpoint step (the slope half a step ahead): Euler uses the slope at the start only, "
                "x + dt * u(x, t).",
}


def _cases_3_1():
    x = _points()
    return [("u(x, t) = (1 + t) A x", linear_tv, x, 0.25, 0.125),
            ("u = 4 t^3", quartic_in_t, x, 0.5, 0.25),
            ("a nonlinear field, going back in time (dt < 0)", _nonlinear, x, 0.75, -0.25)]


@exercise("3.1", title="An Euler step", notebook=NB, answer="euler_step", reference=solvers.euler_step,
          minutes=5, practises="the explicit Euler method for dx/dt = u(x, t)")
def check_3_1(answer):
    cases = _cases_3_1()
    got = _step_results(answer, "euler_step", cases)
    want = [x + dt * u(x, t) for _, u, x, t, dt in cases]
    names = [f"one Euler step of {desc} from t = {t} with dt = {dt}" for desc, _, _, t, dt in cases]
    expect_cases(got, want, names, atol=1e-9, rtol=1e-9, inputs=[c[2] for c in cases], mistakes=[
        ([_euler_wrong(u, x, t, dt, kind) for _, u, x, t, dt in cases], message)
        for kind, message in _EULER_MISTAKES.items()])
    return ""


# ------------------------------------------------------------------ 3.2

def _rk4_wrong(u, x, t, dt, kind):
    """Known mistakes of an RK4 step (and other methods mistaken for it), computed."""
    if kind == "euler":
        return x + dt * u(x, t)
    if kind == "midpoint":
        return solvers.midpoint_step(u, x, t, dt)
    if kind == "heun":
        k1 = u(x, t)
        return x + dt / 2 * (k1 + u(x + dt * k1, t + dt))
    k1 = u(x, t)
    k2 = u(x + dt / 2 * k1, t + dt / 2)
    k3 = u(x + dt / 2 * k2, t + dt / 2)
    k4 = u(x + dt * k3, t + dt)
    if kind == "quarter":
        return x + dt / 4 * (k1 + k2 + k3 + k4)
    if kind == "no_sixth":
        return x + dt * (k1 + 2 * k2 + 2 * k3 + k4)
    if kind == "no_dt":
        return x + (k1 + 2 * k2 + 2 * k3 + k4) / 6
    if kind == "k4_half_time":
        return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + u(x + dt * k3, t + dt / 2))
    if kind == "stale_time":
        k2 = u(x + dt / 2 * k1, t)
        k3 = u(x + dt / 2 * k2, t)
        k4 = u(x + dt * k3, t)
        return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    if kind == "k1_everywhere":
        k3 = u(x + dt / 2 * k1, t + dt / 2)
        k4 = u(x + dt * k1, t + dt)
        return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    if kind == "k3_from_k1":
        k3 = u(x + dt / 2 * k1, t + dt / 2)
        k4 = u(x + dt * k3, t + dt)
        return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    if kind == "k4_from_k1":
        return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + u(x + dt * k1, t + dt))
    if kind == "full_steps":
        k2 = u(x + dt * k1, t + dt / 2)
        k3 = u(x + dt * k2, t + dt / 2)
        return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    raise ValueError(kind)


_RK4_MISTAKES = {
    "euler": "That is an Euler step: RK4 averages four slopes k1..k4.",
    "midpoint": "That is a midpoint step (second order, two slopes): RK4 averages four slopes, "
                "x + dt/6 (k1 + 2 k2 + 2 k3 + k4).",
    "heun": "That is Heun's method (the average of the slopes at the start and the end): RK4 averages four "
            "slopes, x + dt/6 (k1 + 2 k2 + 2 k3 + k4).",
    "quarter": "The weights are (1, 2, 2, 1) / 6, not (1, 1, 1, 1) / 4.",
    "no_sixth": "You forgot to divide by 6: the step is x + dt/6 (k1 + 2 k2 + 2 k3 + k4).",
    "no_dt": "You forgot dt in the final combination: the step is x + dt/6 (k1 + 2 k2 + 2 k3 + k4).",
    "k4_half_time": "k4 is evaluated at the end of the step, time t + dt, not t + dt/2.",
    "stale_time": "The slopes k2, k3 must be taken at time t + dt/2 and k4 at t + dt, not all at t.",
    "k1_everywhere": "Each slope builds on the previous one: k3 uses x + dt/2 * k2 and k4 uses x + dt * k3 "
                     "(yours used k1).",
    "k3_from_k1": "k3 is built from k1: each slope builds on the previous one, k3 = u(x + dt/2 * k2, t + dt/2).",
    "k4_from_k1": "k4 is built from k1: each slope builds on the previous one, k4 = u(x + dt * k3, t + dt).",
    "full_steps": "k2 and k3 are evaluated half a step ahead: x + dt/2 * k1 and x + dt/2 * k2, not a whole step.",
}


def _cases_3_2():
    x = _points()
    lin = lambda y, t: y @ A.T  # noqa: E731
    return [("u(x) = A x", lin, x, 0.0, 0.25),
            ("u = 4 t^3", quartic_in_t, x, 0.375, 0.25),
            ("u = (1 + t) A x", linear_tv, x, 0.375, 0.25),
            # on a linear autonomous field a midpoint step equals an RK4 with k1 reused: this nonlinear,
            # time-dependent field tells every mistake above apart (tests/test_checks_nb03.py checks it)
            ("a nonlinear field with time", _nonlinear, 0.7 * x, 0.25, 0.5)]


@exercise("3.2", title="A Runge-Kutta 4 step", notebook=NB, answer="rk4_step", reference=solvers.rk4_step,
          minutes=10, practises="the classical RK4 method; order of convergence")
def check_3_2(answer):
    cases = _cases_3_2()
    got = _step_results(answer, "rk4_step", cases)
    h = cases[0][4]
    hA = h * A
    I = torch.eye(2, dtype=torch.float64)
    # autonomous linear field: one RK4 step is exactly the Taylor polynomial of exp(h A) to 4th order;
    # a field of t alone: RK4 is Simpson's rule, exact for cubics in t
    taylor = I + hA + hA @ hA / 2 + hA @ hA @ hA / 6 + hA @ hA @ hA @ hA / 24
    _, _, x, t0, h2 = cases[1]
    want = [cases[0][2] @ taylor.T, x + ((t0 + h2) ** 4 - t0**4)] + \
        [solvers.rk4_step(u, y, t, dt) for _, u, y, t, dt in cases[2:]]
    names = ["one RK4 step of u(x) = A x (exact: (I + hA + ... + (hA)^4/24) x)",
             "one RK4 step of u = 4 t^3 from t = 0.375 (exact: (t+dt)^4 - t^4)"] + \
        [f"one RK4 step of {desc} from t = {t} with dt = {dt}" for desc, _, _, t, dt in cases[2:]]
    expect_cases(got, want, names, atol=1e-9, rtol=1e-9, inputs=[c[2] for c in cases], mistakes=[
        ([_rk4_wrong(u, y, t, dt, kind) for _, u, y, t, dt in cases], message)
        for kind, message in _RK4_MISTAKES.items()])
    # order of convergence, with the student's own step
    exact = x @ torch.linalg.matrix_exp(1.5 * A).T
    errs = []
    for n in (8, 16):
        y = x
        for k in range(n):
            y = call(answer, _strict(linear_tv, "rk4_step"), y, k / n, 1 / n, name="rk4_step")
        errs.append((y - exact).abs().max().item())
    order = math.log2(errs[0] / errs[1])
    if not 3.5 < order < 4.6:
        raise CheckFailure(f"Halving dt should divide the error of RK4 by about 2^4 = 16; yours was divided by "
                           f"{errs[0] / errs[1]:.3g} (order {order:.2f}).")
    return "Halving dt divides its error by about 2^4 = 16: fourth order."


# ------------------------------------------------------------------ 3.3

def _field3(x, t):
    """A 3D field: u = (x2 x3, x1^2, t tanh(x3)); div = t (1 - tanh(x3)^2)."""
    tc = _tcol(t, x)[:, 0]
    return torch.stack([x[:, 1] * x[:, 2], x[:, 0] ** 2, tc * torch.tanh(x[:, 2])], 1)


def _jac(u, x, t):
    from ..changevars import jacobian
    return jacobian(lambda y: u(y, t), x)


def _explain_3_3(error: Exception) -> str | None:
    """A second torch.autograd.grad through a freed graph: the fix is create_graph, not PyTorch's retain_graph."""
    if isinstance(error, RuntimeError) and "backward through the graph a second time" in str(error):
        return ("Your second call of torch.autograd.grad found the graph already freed: each call frees it unless "
                "told otherwise. PyTorch's own message suggests retain_graph=True, but that is not the fix here: "
                "pass create_graph=True, which keeps the graph for the next coordinate and also makes the "
                "divergence itself differentiable, as training through it (3.5, the CNF) needs. With "
                "retain_graph alone the values come out right and the divergence is cut off from the graph.")
    return None


@exercise("3.3", title="The exact divergence by autograd", notebook=NB, answer="divergence_exact",
          reference=dv.divergence_exact, minutes=15,
          practises="the trace of the Jacobian with one backward pass per dimension; create_graph")
def check_3_3(answer):
    x, t = _points(24), torch.full((24,), 0.4, dtype=torch.float64)
    x3 = _points(24, 3, seed=33)
    cases = [("u(x) = A x", lambda y, s: y @ A.T, x, torch.full((24,), float(torch.trace(A)), dtype=torch.float64)),
             ("a nonlinear, time-dependent field", _nonlinear, x, _nonlinear_div(x, 0.4)),
             ("a 3D field", _field3, x3, 0.4 * (1 - torch.tanh(x3[:, 2]) ** 2))]
    got = [call(answer, u, pts.clone(), t.clone(), name="divergence_exact", explain=_explain_3_3)
           for _, u, pts, _ in cases]
    Js = [_jac(u, pts, t) for _, u, pts, _ in cases]
    diag = [J.diagonal(dim1=1, dim2=2) for J in Js]
    expect_cases(got, [w for *_, w in cases], [f"the divergence of {name}" for name, *_ in cases],
                 atol=1e-8, rtol=1e-8, inputs=[c[2] for c in cases], mistakes=[
        ([J.sum((1, 2)) for J in Js],
         "You summed every entry of the Jacobian (the gradient of u.sum() summed over coordinates): the divergence "
         "is the sum of the diagonal only, du_i/dx_i. Take entry i of the gradient of u_i."),
        ([torch.linalg.det(J) for J in Js], "You returned det J: the divergence is its trace."),
        ([J[:, :, 0].sum(1) for J in Js],
         "You took column 0 of every gradient, du_i/dx_1: the divergence needs column i of the gradient of u_i, "
         "du_i/dx_i."),
        ([dg.mean(1) for dg in diag], "You averaged du_i/dx_i over the coordinates: the divergence is their sum."),
        ([dg.sum(1) if dg.shape[1] == 2 else dg[:, :2].sum(1) for dg in diag],
         "Right in 2D, but for the 3D field you added only du_1/dx_1 + du_2/dx_2: loop over all d coordinates, "
         "range(x.shape[1])."),
    ])
    # it must stay differentiable, for training: u = theta * x^2 has div = 2 theta (x1 + x2)
    theta = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    out = call(answer, lambda y, s: theta * y**2, x.clone(), t.clone(), name="divergence_exact")
    if not out.requires_grad:
        raise CheckFailure("The divergence is right but cut off from the graph: a loss built on it could not "
                           "be trained. Pass create_graph=True to torch.autograd.grad.")
    (g,) = torch.autograd.grad(out.sum(), theta)
    expect_close(g, 2 * x.sum(), "d/dtheta of the divergence of theta * x^2 (summed over points)", atol=1e-8)
    # the statement: it also works inside torch.no_grad() (log-likelihoods are evaluated there)
    with torch.no_grad():
        try:
            inside = answer(_nonlinear, x.clone(), t.clone())
        except Exception as e:
            raise CheckFailure(f"Inside `with torch.no_grad():` your divergence_exact raised {type(e).__name__}: "
                               f"{str(e).splitlines()[0]}. Outside it works, so the difference is the grad mode: "
                               "wrap the computation in `with torch.enable_grad():`, which switches autograd "
                               "back on.") from None
    expect_close(inside, cases[1][3], "the divergence of the nonlinear field, computed inside torch.no_grad()",
                 atol=1e-8, rtol=1e-8, inputs=x)
    return "It matches the closed forms in 2D and 3D, can be differentiated, and works under torch.no_grad()."


# ------------------------------------------------------------------ 3.4

# Hutchinson's estimator is random, so its check bounds a correct answer's chance of rejection.
# For probes with zero mean and identity covariance, eps^T J eps = eps^T S eps with S = (J + J^T) / 2.
# Gaussian probes: the mean over K probes minus tr S is a Gaussian chaos with weights eig(S) / K, each
# repeated K times; splitting positive and negative weights, Laurent and Massart's bound (Ann. Statist.
# 2000, Lemma 1) gives P(|mean - tr S| >= 2 sqrt(2) |S|_F sqrt(u / K) + 4 |S|_op u / K) <= 4 exp(-u).
# Rademacher probes in 2D: mean - tr S = 2 S_12 times a mean of K signs, and Hoeffding's bound
# 2 exp(-K s^2 / (8 S_12^2)) is below 2 exp(-u) at the same s, since |S|_F^2 >= 2 S_12^2.
# With u = ln(4e9), each row fails with probability below 1e-9; 64 rows, below 1e-7.
_HUTCH_U = math.log(4e9)


def _hutch_tolerance(J: torch.Tensor, K: int) -> torch.Tensor:
    S = (J + J.transpose(1, 2)) / 2
    frob = S.pow(2).sum((1, 2)).sqrt()
    op = torch.linalg.eigvalsh(S).abs().max(-1).values
    return 2 * math.sqrt(2) * frob * math.sqrt(_HUTCH_U / K) + 4 * op * _HUTCH_U / K + 1e-9


# A field to tell mistakes apart: u(x) = x J^T in 8D with J = I + W, W antisymmetric. Then
# eps^T J eps = |eps|^2, with mean tr J = 8 for probes of identity covariance (exactly 8 for Rademacher);
# uniform probes on [0, 1) give tr J / 12 + sum(J) / 4 = 8/3; eps^T J summed over coordinates (no second
# eps) has mean 0; a sum over K probes gives 8 K. Averaged over 64 rows and K = 1000 Gaussian probes the
# estimate has standard deviation sqrt(2 * 8 / 1000) / 8 = 0.016, so +-0.5 separates these values by
# about 30 standard deviations.
_W = torch.triu(torch.randn(8, 8, generator=torch.Generator().manual_seed(341), dtype=torch.float64), 1)
_J_DIAG = torch.eye(8, dtype=torch.float64) + _W - _W.T


def _hutch_diagnosis(answer, K: int) -> str:
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(342), dtype=torch.float64)
    t = torch.full((64,), 0.4, dtype=torch.float64)
    try:
        out = answer(lambda y, s: y @ _J_DIAG.T, x, t, K, torch.Generator().manual_seed(343))
        m = float(out.detach().double().mean())
    except Exception:
        return ""
    if abs(m - 8 * K) < 0.5 * K:
        return (f"Averaged over {K} probes your estimate is about {K} times the divergence: you summed over the "
                "probes. Divide by num_probes.")
    if abs(m - 8 / 3) < 0.5:
        return ("Your estimate is biased: for u(x) = J x in 8D with trace 8 it averages 8/3, which is what probes "
                "uniform on [0, 1) (torch.rand) give. The probes need zero mean and identity covariance: "
                "torch.randn, or its sign (Rademacher).")
    if abs(m) < 0.5:
        return ("Your estimate averages 0 for u(x) = J x in 8D with trace 8: that is what eps^T J summed over "
                "its coordinates gives (its mean is 0). Multiply by eps again: the estimate is (eps^T J) . eps, "
                "summed over the last dimension.")
    return ""


@exercise("3.4", title="Hutchinson's trace estimator", notebook=NB, answer="divergence_hutchinson",
          reference=dv.divergence_hutchinson, minutes=20,
          practises="finding an unbiased trace estimator built on one vector-Jacobian product")
def check_3_4(answer):
    n = 64
    x, t = _points(n, seed=34, scale=0.7), torch.full((n,), 0.4, dtype=torch.float64)
    exact = _nonlinear_div(x, 0.4)

    def run(num_probes, seed, u=_nonlinear):
        out = call(answer, u, x.clone(), t.clone(), num_probes, torch.Generator().manual_seed(seed),
                   name="divergence_hutchinson")
        return expect_tensor(out, (n,), f"the estimate with num_probes={num_probes}")

    a, b = run(1, 5).detach(), run(1, 5).detach()
    if not torch.equal(a, b):
        raise CheckFailure("Two calls with generators seeded the same gave different estimates: draw the "
                           "probe vectors with `generator=generator` (torch.randn(..., generator=generator)).")
    c, e = run(1, 6).detach(), run(1, 7).detach()
    if all(close(v, exact, atol=1e-6, rtol=1e-6) for v in (a, c, e)):
        raise CheckFailure("With one probe your estimate equals the exact divergence at every point: that is "
                           "the exact computation, not Hutchinson's random estimate eps^T J eps.")
    # a correct answer gives the same 64 estimates for seeds 5, 6 and 7 with probability 0 (Gaussian
    # probes) or 2^-128 (Rademacher: in 2D each row's estimate takes one of two values, each with
    # probability 1/2, independently across rows and seeds)
    if torch.equal(a, c) and torch.equal(a, e):
        raise CheckFailure(f"Generators with seeds 5, 6 and 7 gave the same estimate at all {n} points: your "
                           "probes do not come from `generator` (a seed of your own, or fixed probes?). Draw them "
                           "with torch.randn(x.shape, generator=generator), or its sign.")
    K = 1000
    J = _jac(_nonlinear, x, t)
    tol = _hutch_tolerance(J, K)
    got = run(K, 8).detach()
    if ((got - exact).abs() > tol).any():
        if close(got, run(1, 8).detach(), atol=1e-9, rtol=1e-9):
            raise CheckFailure(f"With num_probes={K} your estimate equals the one with a single probe: you drew "
                               "one probe and used it for every term. Draw a new probe for each of the "
                               "num_probes terms.")
        diag = _hutch_diagnosis(answer, K)
        if diag:
            raise CheckFailure(diag)
        i = int(((got - exact).abs() / tol).argmax())
        raise CheckFailure(f"Averaged over {K} probes your estimate at row {i} (x = {fmt(x[i])}) is {fmt(got[i], 6)}, "
                           f"where the divergence is {fmt(exact[i], 6)}: a correct estimator lands within "
                           f"{fmt(tol[i], 2)} of it with probability above 1 - 1e-9 ({int(((got - exact).abs() > tol).sum())} "
                           f"of {n} rows are further). eps^T J eps has mean trace(J) only for probes with zero "
                           "mean and identity covariance, averaged (not summed) over num_probes.")
    # keep the graph (create_graph=True): u = theta * x^2 gives an estimate linear in theta, so
    # d(estimate)/d(theta) = estimate / theta exactly, whatever probes were drawn
    theta = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    est = run(3, 9, u=lambda y, s: theta * y**2)
    if not est.requires_grad:
        raise CheckFailure("The estimate is right on average but cut off from the graph (it has no grad_fn): a "
                           "loss built on it could not be trained. Pass create_graph=True to "
                           "torch.autograd.grad, as in 3.3, and do not detach the result.")
    (g,) = torch.autograd.grad(est.sum(), theta)
    expect_close(g, est.detach().sum() / theta.detach(), "d/dtheta of the estimate for u = theta * x^2 "
                 "(it is linear in theta, so this is estimate / theta)", atol=1e-8, rtol=1e-8)
    return f"Averaged over {K} probes it is within the expected noise of the exact divergence, and it keeps the graph."


# ------------------------------------------------------------------ 3.5

def _cube(x, t):
    return -(x**3)


def _base(z):
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


def _cases_3_5():
    """(name, u, x1, exact log p_1(x1), x0, int_0^1 div u along the path) for two flows known in closed form."""
    n = 64
    # case 1: u = (1 + t) A x, x1 = M x0 with M = exp(1.5 A): p_1 = N(0, M M^T) exactly
    x0 = _points(n, seed=35)
    M = torch.linalg.matrix_exp(1.5 * A)
    x1 = x0 @ M.T
    exact = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), M @ M.T).log_prob(x1)
    lin = ("u = (1 + t) A x (exact: N(0, M M^T), M = exp(1.5 A))", linear_tv, x1, exact, x0,
           torch.full((n,), 1.5 * float(torch.trace(A)), dtype=torch.float64))  # int_0^1 (1 + t) tr A dt
    # case 2, in 3D: u = -x^3 has flow x_t = x0 / sqrt(1 + 2 t x0^2), so x0 = x1 / sqrt(1 - 2 x1^2)
    x1 = 1.1 * torch.rand(n, 3, generator=torch.Generator().manual_seed(36), dtype=torch.float64) - 0.55
    x0 = x1 / torch.sqrt(1 - 2 * x1**2)
    log_det = -1.5 * torch.log(1 - 2 * x1**2).sum(-1)  # log |d x0 / d x1| = -int_0^1 div u dt
    cube = ("u = -x^3 in 3D (closed-form flow)", _cube, x1, _base(x0) + log_det, x0, -log_det)
    return [lin, cube]


def _rk38_log_likelihood(u, x1: torch.Tensor, steps: int) -> torch.Tensor:
    """log p_1(x1) by Kutta's 3/8 rule (fourth order, torchdiffeq's fixed-step "rk4"), backwards from t=1."""
    field, d = dv.augmented_field(u), x1.shape[1]
    y = torch.cat([x1, torch.zeros(len(x1), 1, dtype=x1.dtype)], 1)
    dt = -1.0 / steps
    times = lambda t: torch.full((len(x1),), float(t), dtype=x1.dtype)  # noqa: E731
    for k in range(steps):
        t = 1.0 + k * dt
        k1 = field(y, times(t))
        k2 = field(y + dt * k1 / 3, times(t + dt / 3))
        k3 = field(y + dt * (k2 - k1 / 3), times(t + 2 * dt / 3))
        k4 = field(y + dt * (k1 - k2 + k3), times(t + dt))
        y = y + dt * (k1 + 3 * (k2 + k3) + k4) / 8
    return _base(y[:, :d]) + y[:, d]


@exercise("3.5", title="The log-likelihood by the augmented ODE", notebook=NB, answer="log_likelihood",
          reference=dv.ode_log_likelihood, minutes=25,
          practises="the instantaneous change of variables, integrated backwards from data to noise; the sign of l_0")
def check_3_5(answer):
    cases = _cases_3_5()
    steps = 20
    got = [call(answer, u, x1.clone(), steps, name="log_likelihood") for _, u, x1, *_ in cases]
    names = [f"log p_1(x1) for {name}, {steps} steps" for name, *_ in cases]
    sign_msg = ("Wrong sign of the divergence term: along the flow d/dt log p_t(x_t) = -div u(x_t, t), so "
                "log p_1(x1) = log p_0(x0) - int_0^1 div u dt. Integrating [x, l] backwards from (x1, 0) with "
                "dl/dt = +div u gives l(0) = -int div, which is added.")

    def forward(u, x1, sign=-1):  # integrated from t=0 to t=1 instead of back (either sign of l)
        state = torch.cat([x1, torch.zeros(len(x1), 1, dtype=x1.dtype)], 1)
        out = solvers.solve_ode(dv.augmented_field(u), state, 0.0, 1.0, num_steps=steps, method="rk4").x
        return _base(out[:, :-1]) + sign * out[:, -1]

    euler, midpoint, rk4 = ([dv.ode_log_likelihood(u, x1, steps, method=m).detach() for _, u, x1, *_ in cases]
                            for m in ("euler", "midpoint", "rk4"))
    err = lambda vals: max(float((v - c[3]).abs().max()) for v, c in zip(vals, cases))  # noqa: E731
    expect_cases(got, [c[3] for c in cases], names, atol=1e-4, rtol=1e-6, inputs=[c[2] for c in cases],
                 input_name="x1", mistakes=[
        ([_base(x0) + div for *_, x0, div in cases], sign_msg),
        ([_base(x0) for *_, x0, _ in cases],
         "The divergence term is missing: log p_1(x1) = log p_0(x0) - int_0^1 div u(x_t, t) dt."),
        ([_base(x1) - div for _, _, x1, _, _, div in cases],
         "You evaluated the base density at x1: first integrate the ODE backwards from x1 at t=1 to x0 at t=0, "
         "then evaluate log p_0(x0)."),
        ([forward(u, x1) for _, u, x1, *_ in cases],
         "You integrated forwards, from t=0 to t=1: to find the noise x0 that flows to x1, integrate backwards "
         "from t=1 to t=0 (a negative dt)."),
        ([forward(u, x1, +1) for _, u, x1, *_ in cases],
         "You integrated forwards, from t=0 to t=1: to find the noise x0 that flows to x1, integrate backwards "
         "from t=1 to t=0 (a negative dt), then add l(0) to log p_0(x0)."),
        (euler, f"You integrated with Euler steps: the statement asks for RK4. With {steps} steps, Euler is off "
                f"the exact log-likelihood by up to {fmt(err(euler), 2)} here; RK4 by {fmt(err(rk4), 1)}."),
        (midpoint, f"You integrated with midpoint steps: the statement asks for RK4 (solve_ode(..., "
                   f"method=\"rk4\")). With {steps} steps, midpoint is off the exact log-likelihood by up to "
                   f"{fmt(err(midpoint), 2)} here; RK4 by {fmt(err(rk4), 1)}."),
        ([c[3] if c[2].shape[1] == 2 else _base(c[4][:, :2]) - c[5] for c in cases],
         "Right in 2D, but for the 3D case you used only the first 2 coordinates of the state: x is "
         "state[:, :-1] (all d coordinates) and l is state[:, -1]."),
    ])
    # the statement: num_steps RK4 steps (the notebook measures the error against num_steps)
    _, u, x1, exact, *_ = cases[0]
    two = call(answer, u, x1.clone(), 2, name="log_likelihood")
    two = expect_tensor(two, (x1.shape[0],), "log_likelihood(u, x1, num_steps=2)")
    want = dv.ode_log_likelihood(u, x1, 2, method="rk4")
    # any fourth-order Runge-Kutta scheme is RK4 to the statement (torchdiffeq's "rk4" is Kutta's 3/8 rule)
    if not close(two, want, atol=1e-8, rtol=1e-8) and not close(two, _rk38_log_likelihood(u, x1, 2), 1e-8, 1e-8):
        if close(two, exact, atol=1e-4, rtol=1e-6):
            raise CheckFailure("With num_steps=2 your log-likelihood is as accurate as with 20: it does not take "
                               "num_steps RK4 steps (a fixed number, or an adaptive solver?). Integrate with "
                               "exactly num_steps steps, so that the notebook can measure the error against "
                               "them.")
        expect_close(two, want, "log p_1(x1) for u = (1 + t) A x with num_steps=2 (against 2 RK4 steps)",
                     atol=1e-8, rtol=1e-8, inputs=x1, input_name="x1")
    return "It matches the exact Gaussian of the linear flow and the closed form for u = -x^3 in 3D."
