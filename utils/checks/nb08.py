"""Checks of notebook 08 (few-step generation: consistency, shortcut and MeanFlow models)."""
from __future__ import annotations

import torch

from .. import fewstep
from ..models import TimeMLP
from .core import CheckFailure, exercise
from .expect import call, close, expect_close, expect_tensor

NB = "08_few_step"


def _net(cls, seed: int):
    """A fixed random network in float64 (its parameters let the check see where gradients flow)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return cls().double()


def _no_grad_to(net, out, what: str, fix: str) -> None:
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return
    raise CheckFailure(f"Gradients flow from {what} into the network: {fix}")


# ---------------------------------------------------------------- 8.1 the consistency parametrisation

@exercise("8.1", title="The consistency parametrisation and its boundary condition", notebook=NB,
          answer="consistency_fn", reference=fewstep.consistency_fn, minutes=10,
          practises="a skip connection that enforces a boundary condition by construction; broadcasting (n,) times")
def check_8_1(answer):
    net = _net(TimeMLP, 81)
    g = torch.Generator().manual_seed(81)
    for n in (2, 5):  # n = 2 = dim: a (1 - t) broadcast along the wrong axis runs without error
        x = torch.randn(n, 2, generator=g, dtype=torch.float64)
        t = 0.1 + 0.8 * torch.rand(n, generator=g, dtype=torch.float64)
        got = call(answer, net, x, t, name="consistency_fn")
        got = expect_tensor(got, (n, 2), "f(x, t)")
        F = net(x, t).detach()
        w = (1 - t)[:, None]
        expect_close(got.detach(), x + w * F, "f(x, t)", atol=1e-9, rtol=1e-9, mistakes=[
            (x + t[:, None] * F, "You weighted F by t: then f(x, 0) = x, a boundary condition at the NOISE end. "
                                 "In this course data sit at t = 1, so the weight of F must vanish there: (1 - t)."),
            (w * F, "There is no skip term: f(x, 1) = 0 for every x. Add x itself: f(x, t) = x + (1 - t) F(x, t)."),
            (x + F, "Without the factor (1 - t), f(x, 1) = x + F(x, 1), which is not x for a general network: "
                    "the boundary condition must hold by construction, whatever the weights."),
            (x - w * F, "The sign of F is flipped: f(x, t) = x + (1 - t) F(x, t), F pointing from x to the data."),
            (x + w * net(x, 1 - t).detach(), "You called the network at time 1 - t: call it at t, F(x, t), and "
                                             "put the (1 - t) outside."),
            (t[:, None] * x + w * F, "t x + (1 - t) F also satisfies f(x, 1) = x, but it is not the "
                                     "parametrisation asked for: keep all of x (skip weight 1), f = x + (1 - t) F."),
            (x + (1 - t)[None, :] * F if n == 2 else None,
             "(1 - t) was broadcast along the coordinates instead of the points: t has shape (n,), F(x, t) has "
             "shape (n, 2); use (1 - t)[:, None]."),
        ])
    ones = call(answer, net, x, torch.ones(len(x), dtype=torch.float64), name="consistency_fn")
    if not close(ones, x, atol=1e-12, rtol=0):
        raise CheckFailure("f(x, 1) differs from x: the boundary condition must hold exactly at t = 1.")
    if not got.requires_grad:
        raise CheckFailure("f(x, t) carries no gradient to the network's parameters: do not detach it or "
                           "compute it under torch.no_grad(); the consistency loss trains the network through it.")
    return "f(x, t) = x + (1 - t) F(x, t): f(x, 1) = x holds for every network, and gradients reach it."


# ---------------------------------------------------------------- 8.2 the shortcut target

@exercise("8.2", title="The shortcut self-consistency target", notebook=NB, answer="shortcut_target",
          reference=fewstep.shortcut_target, minutes=15,
          practises="composing two steps of a learned map; a stop-gradient target (torch.no_grad / detach)")
def check_8_2(answer):
    net = _net(fewstep.TwoTimeMLP, 82)
    g = torch.Generator().manual_seed(82)
    n = 6
    xt = torch.randn(n, 2, generator=g, dtype=torch.float64)
    t = 0.5 * torch.rand(n, generator=g, dtype=torch.float64)
    d = torch.full((n,), 0.125, dtype=torch.float64) * (1 + torch.arange(n) % 2)
    got = call(answer, net, xt, t, d, name="shortcut_target")
    got = expect_tensor(got, (n, 2), "the target")
    with torch.no_grad():
        s = lambda x, tt, dd: net(x, tt, dd)  # noqa: E731
        v1 = s(xt, t, d)
        moved = xt + d[:, None] * v1
        v2 = s(moved, t + d, d)
        mistakes = [
            (v1, "You returned the first step only: the target of one step of size 2d is the AVERAGE of two "
                 "steps of size d, the second taken from where the first lands."),
            (v1 + v2, "You added the two velocities: the big step covers 2d, so its velocity is their mean, "
                      "(v1 + v2) / 2."),
            ((v1 + s(xt, t + d, d)) / 2, "The second velocity is evaluated at x_t, not where the first step "
                                         "lands: x' = x_t + d s(x_t, t, d)."),
            ((v1 + s(moved, t, d)) / 2, "The second velocity is evaluated at time t: the first step has moved "
                                        "time forward to t + d."),
            ((v1 + s(xt + 2 * d[:, None] * v1, t + d, d)) / 2,
             "The first step moved x by 2d: it is a step of size d, x' = x_t + d s(x_t, t, d)."),
            ((v1 + s(xt + v1, t + d, d)) / 2, "The first step moved x by the whole velocity: multiply by the "
                                              "step size d, x' = x_t + d s(x_t, t, d)."),
            ((s(xt, t, 2 * d) + s(xt + 2 * d[:, None] * s(xt, t, 2 * d), t + 2 * d, 2 * d)) / 2,
             "You queried the network at step size 2d: the target of the 2d step is built from two steps of "
             "the SMALLER size d."),
        ]
    expect_close(got.detach(), (v1 + v2) / 2, "the target", atol=1e-9, rtol=1e-9, mistakes=mistakes)
    _no_grad_to(net, got, "the target", "the target must be a constant (a stop-gradient): compute it under "
                "torch.no_grad() or .detach() it, else the loss also moves the target towards the prediction.")
    return "Two steps of size d, averaged, with no gradient: the target of one step of size 2d."


# ---------------------------------------------------------------- 8.3 the MeanFlow target

def _tangent_mistakes(u, z, r, t, v):
    def along(tz, tr, tt):
        _, du = torch.func.jvp(u, (z, r, t), (tz, tr, tt))
        return (v - (t - r)[:, None] * du).detach()
    zero, one = torch.zeros_like(t), torch.ones_like(t)
    _, total = torch.func.jvp(u, (z, r, t), (v, zero, one))
    return [
        (along(torch.zeros_like(z), zero, one),
         "You used the partial derivative d_t u (tangent 0 for z): z moves with t along the flow, so the "
         "derivative is total, du/dt = v . grad_z u + d_t u: give jvp the tangents (v, 0, 1)."),
        (along(v, zero, zero), "Your derivative leaves out d_t u (tangent 0 for t): the total derivative "
                               "takes the tangents (v, 0, 1) for (z, r, t)."),
        (along(v, one, zero), "You moved r instead of t: r is held fixed; the tangents for (z, r, t) are (v, 0, 1)."),
        (along(v, one, one), "You moved r along with t: r is held fixed; the tangents for (z, r, t) are (v, 0, 1)."),
        ((v + (t - r)[:, None] * total).detach(),
         "The sign of (t - r) is wrong: from (t - r) u = int_r^t v, differentiating in t gives u = v - (t - r) du/dt."),
        ((u(z, r, t) - (t - r)[:, None] * total).detach(),
         "You started from u: the target is v - (t - r) du/dt, with v the instantaneous velocity."),
    ]


@exercise("8.3", title="The MeanFlow target with torch.func.jvp", notebook=NB, answer="meanflow_target",
          reference=fewstep.meanflow_target, minutes=20,
          practises="a total derivative by forward-mode autodiff (torch.func.jvp); a stop-gradient target")
def check_8_3(answer):
    g = torch.Generator().manual_seed(83)
    n = 8
    z, v = torch.randn(n, 2, generator=g, dtype=torch.float64), torch.randn(n, 2, generator=g, dtype=torch.float64)
    t = 0.6 * torch.rand(n, generator=g, dtype=torch.float64)
    r = t + 0.1 + 0.3 * torch.rand(n, generator=g, dtype=torch.float64)
    net = _net(fewstep.TwoTimeMLP, 83)
    got = call(answer, net, z, r, t, v, name="meanflow_target")
    got = expect_tensor(got, (n, 2), "the target")
    expect_close(got.detach(), fewstep.meanflow_target(net, z, r, t, v), "the target", atol=1e-8, rtol=1e-8,
                 mistakes=_tangent_mistakes(net, z, r, t, v))
    _no_grad_to(net, got, "the target", "it must be a constant (a stop-gradient): .detach() it. Else the loss "
                "differentiates through du/dt, a second derivative of the network, and chases its own target.")
    v_exact, u_exact = fewstep.gaussian_flow(torch.tensor([1.0, -2.0], dtype=torch.float64), 0.5)
    exact = call(answer, u_exact, z, r, t, v_exact(z, t), name="meanflow_target")
    if not close(exact, u_exact(z, r, t), atol=1e-8, rtol=1e-8):
        raise CheckFailure("For the exact average velocity of a Gaussian path (v the exact field) your target "
                           "differs from u itself; the MeanFlow identity says they are equal.")
    return "v - (t - r) du/dt with the total derivative (tangents (v, 0, 1)), detached; exact u is its own target."


# ---------------------------------------------------------------- 8.4 a k-step sampler

@exercise("8.4", title="A k-step sampler for the average-velocity model", notebook=NB, answer="sample_mean_flow",
          reference=fewstep.sample_mean_flow, minutes=10,
          practises="a time grid; jumps with an average velocity; counting network evaluations")
def check_8_4(answer):
    g = torch.Generator().manual_seed(84)
    net = _net(fewstep.TwoTimeMLP, 84)
    x0 = torch.randn(7, 2, generator=g, dtype=torch.float64)
    calls = []

    def u(z, r, t):
        calls.append(1)
        return net(z, r, t)

    def jumps(k, at):
        z, ts = x0, torch.linspace(0, 1, k + 1, dtype=torch.float64)
        for i in range(k):
            z = at(z, ts[i], ts[i + 1])
        return z
    full = lambda s: s.expand(len(x0))  # noqa: E731
    with torch.no_grad():
        for k in (1, 3, 4):
            calls.clear()
            got = call(answer, u, x0, k, name="sample_mean_flow")
            got = expect_tensor(got, (7, 2), f"the samples after {k} step(s)")
            if len(calls) != k:
                raise CheckFailure(f"With num_steps = {k} your sampler evaluated u {len(calls)} times: one "
                                   f"evaluation a jump, {k} jumps from t = 0 to t = 1.")
            h = 1.0 / k
            expect_close(got, fewstep.sample_mean_flow(net, x0, k), f"the samples after {k} step(s)", atol=1e-9,
                         rtol=1e-9, mistakes=[
                (jumps(k, lambda z, a, b: z + h * net(z, full(a), full(b))),
                 "You passed the times as u(z, t_k, t_{k+1}): in u(z, r, t) t is where you stand (t_k) and r "
                 "where you land (t_{k+1}): u(z, t_{k+1}, t_k)."),
                (jumps(k, lambda z, a, b: z + h * net(z, full(a), full(a))),
                 "You used u(z, t_k, t_k), the instantaneous velocity: that is Euler, which needs many steps on "
                 "curved paths. Jump with the average velocity to the next time, u(z, t_{k+1}, t_k)."),
                (jumps(k, lambda z, a, b: z - h * net(z, full(b), full(a))),
                 "The jump goes the wrong way: z_r = z - (t - r) u = z + (r - t) u, and r > t here."),
                (jumps(k, lambda z, a, b: z + net(z, full(b), full(a))),
                 "Each jump moved z by the whole average velocity: multiply by the length of the jump, r - t."),
                (jumps(k, lambda z, a, b: z + h * net(z, full(1 - a), full(1 - b))),
                 "Your time runs from 1 to 0: in this course noise is at t = 0 and data at t = 1."),
            ])
    v_exact, u_exact = fewstep.gaussian_flow(torch.tensor([1.0, -2.0], dtype=torch.float64), 0.5)
    one = call(answer, u_exact, x0, 1, name="sample_mean_flow")
    if not close(one, torch.tensor([1.0, -2.0], dtype=torch.float64) + 0.5 * x0, atol=1e-9, rtol=0):
        raise CheckFailure("With the exact average velocity of a Gaussian path one jump should land exactly on "
                           "the data law (mean + 0.5 z): it does not.")
    return "k jumps t_k -> t_{k+1} with u(z, t_{k+1}, t_k), k evaluations; one exact jump transports exactly."
