"""Checks of notebook 06 (couplings, straight paths, few-step sampling)."""
from __future__ import annotations

import itertools
import math

import torch
from scipy.optimize import linear_sum_assignment

from .. import couplings, showdown
from ..metrics import w2
from .core import CheckFailure, call, exercise, expect_close, expect_tensor, fmt

NB = "06_couplings_showdown"
SWAPPED = ("The time convention is swapped: t=0 is the source x0 (noise) and t=1 the data x1, so "
           "xt = (1 - t) x0 + t x1 and the field points from x0 to x1.")


def straight_interpolant(x0, x1, t, sigma, eps):
    """Reference of exercise 6.1: xt = (1 - t) x0 + t x1 + sigma eps and ut = x1 - x0."""
    t = t.reshape(-1, 1)
    return (1 - t) * x0 + t * x1 + sigma * eps, x1 - x0


def _pair(out, name):
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise CheckFailure(f"`{name}` should return a pair of tensors.")
    return out


@exercise("6.1", title="The straight interpolant of a pair", notebook=NB, answer="straight_interpolant",
          reference=straight_interpolant, minutes=8,
          practises="conditioning on a pair (x0, x1): xt and the conditional field x1 - x0")
def check_6_1(answer):
    g = torch.Generator().manual_seed(61)
    x0, x1 = torch.randn(50, 2, generator=g, dtype=torch.float64), torch.randn(50, 2, generator=g, dtype=torch.float64) + 2
    t, eps = torch.rand(50, generator=g, dtype=torch.float64), torch.randn(50, 2, generator=g, dtype=torch.float64)
    tc = t[:, None]
    for sigma in (0.1, 0.0):
        xt, ut = _pair(call(answer, x0, x1, t, sigma, eps, name="straight_interpolant"), "straight_interpolant")
        xt, ut = expect_tensor(xt, (50, 2), "xt"), expect_tensor(ut, (50, 2), "ut")
        xt_ok = (1 - tc) * x0 + tc * x1 + sigma * eps
        expect_close(xt, xt_ok, f"xt (sigma = {sigma})", atol=1e-8, mistakes=[
            (tc * x0 + (1 - tc) * x1 + sigma * eps, SWAPPED),
            ((1 - tc) * x0 + tc * x1 + sigma**2 * eps, "sigma is a standard deviation: add sigma * eps, not sigma^2 * eps."),
            ((1 - tc) * x0 + tc * x1, "The noise term sigma * eps is missing from xt."),
        ])
        expect_close(ut, x1 - x0, f"ut (sigma = {sigma})", atol=1e-8, mistakes=[
            (x0 - x1, SWAPPED),
            ((x1 - xt_ok) / (1 - tc), "(x1 - xt) / (1 - t) equals x1 - x0 only without noise: the conditional "
                                      "field of the pair is x1 - x0, whatever sigma is."),
            (x1 - x0 + sigma * eps, "The target has no noise in it: ut = x1 - x0."),
        ])
    return "xt runs from x0 at t=0 to x1 at t=1 with noise sigma, at the constant speed x1 - x0."


def _optimal_cost(a, b):
    cost = torch.cdist(a.double(), b.double()).pow(2).numpy()
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].mean()), cost


def _is_permutation_of(a, b):
    if a.shape != b.shape:
        return False
    key = lambda z: sorted(map(tuple, z.double().round(decimals=10).tolist()))  # noqa: E731
    return key(a) == key(b)


@exercise("6.2", title="Minibatch optimal transport pairing", notebook=NB, answer="ot_pairs",
          reference=couplings.ot_couple, minutes=12,
          practises="the OT plan between two equal batches is a permutation: linear assignment on squared distances")
def check_6_2(answer):
    g = torch.Generator().manual_seed(62)
    for n in (7, 64):
        x0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
        x1 = torch.randn(n, 2, generator=g, dtype=torch.float64) * torch.tensor([2.0, 0.5], dtype=torch.float64) + 1
        a, b = _pair(call(answer, x0.clone(), x1.clone(), name="ot_pairs"), "ot_pairs")
        a, b = expect_tensor(a, (n, 2), "the reordered x0"), expect_tensor(b, (n, 2), "the second output")
        if not _is_permutation_of(b, x1):
            raise CheckFailure("The second output should be x1 (or a reordering of it): every data point once.")
        if not _is_permutation_of(a, x0):
            raise CheckFailure("Each point of x0 must be used exactly once: the OT plan between two equal batches is "
                               "a permutation. (Matching each x1 to its nearest x0 can use some x0 twice.)")
        best, cost = _optimal_cost(x0, x1)
        got = float(((a.double() - b.double()) ** 2).sum(1).mean())
        if n == 7:  # brute force over all 5040 pairings, independent of scipy
            brute = min(float(((x0[list(p)] - x1) ** 2).sum(1).mean()) for p in itertools.permutations(range(7)))
            assert abs(brute - best) < 1e-9
        if got > best + 1e-9:
            if torch.allclose(a.double(), x0) and torch.allclose(b.double(), x1):
                raise CheckFailure("x0 came back in its original order: that is the independent pairing, not OT.")
            r, c = linear_sum_assignment(torch.cdist(x0, x1).numpy())
            if abs(got - float(cost[r, c].mean())) < 1e-9 and abs(got - best) > 1e-9:
                raise CheckFailure("You minimised the sum of distances |x0 - x1|; OT for W2 minimises the sum of "
                                   "SQUARED distances |x0 - x1|^2 (use torch.cdist(...) ** 2).")
            raise CheckFailure(f"The pairing is not optimal: mean squared distance {fmt(got)}, the best is {fmt(best)} "
                               f"(n = {n}). A greedy nearest-neighbour pass is not enough: use "
                               "scipy.optimize.linear_sum_assignment on the cost matrix.")
    return "The pairing has the least total squared distance of all n! pairings (brute force for n = 7)."


def _const_field(c):
    return lambda x, t: c.to(x.dtype).expand_as(x)


@exercise("6.3", title="The normalised path energy (NPE)", notebook=NB, answer="normalized_path_energy",
          reference=showdown.normalized_path_energy, minutes=12,
          practises="path energy along Euler trajectories against W2^2; what straight means")
def check_6_3(answer):
    g = torch.Generator().manual_seed(63)
    x0 = torch.randn(200, 2, generator=g, dtype=torch.float64)
    c = torch.tensor([1.0, -0.5], dtype=torch.float64)
    cases = [  # (name, field, data, expected NPE in closed form, PE, W2^2)
        ("a constant field c with data x0 + c (the straight OT map)", _const_field(c), x0 + c, 0.0),
        ("a constant field c with data x0 + 2c (moves only half way)", _const_field(c), x0 + 2 * c, 0.75),
    ]
    # a rotation by pi/2: paths are quarter circles of length pi/2 |x|, the OT map is the identity up to
    # sample noise, so the energy is far above W2^2
    rot = lambda x, t: (math.pi / 2) * torch.stack([-x[:, 1], x[:, 0]], 1)  # noqa: E731
    x1_rot = torch.stack([-x0[:, 1], x0[:, 0]], 1)
    pe_rot = float((math.pi / 2) ** 2 * (x0**2).sum(1).mean())
    w2sq_rot = w2(x0, x1_rot) ** 2
    cases.append(("a rotation by a quarter turn", rot, x1_rot, abs(pe_rot - w2sq_rot) / w2sq_rot))
    for name, field, data, expected in cases:
        got = call(answer, field, x0.clone(), data.clone(), 100, name="normalized_path_energy")
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, float):
            raise CheckFailure(f"Return the NPE as a float, got {type(got).__name__}.")
        pe = float(((field(x0, None)) ** 2).sum(1).mean()) if "constant" in name else pe_rot
        w2sq = w2(x0, data) ** 2
        tol = 0.03 * max(expected, 1.0) if "rotation" in name else 1e-6 + 0.01 * expected
        if abs(got - expected) <= tol:
            continue
        wrong = [
            ((pe - w2sq) / w2sq, "Take the absolute value: NPE = |PE - W2^2| / W2^2."),
            (abs(pe - w2sq), "Divide by W2^2: the NPE is relative, so that data sets of any scale compare."),
            (abs(pe - w2sq ** 0.5) / w2sq ** 0.5, "Use W2 squared: the path energy has units of squared distance."),
            (abs(pe * 100 - w2sq) / w2sq, "Multiply by dt: the path energy is the integral of |v|^2 over time, "
                                           "sum_k |v(x_k, t_k)|^2 dt."),
        ]
        for value, message in wrong:
            if abs(got - value) <= 0.03 * max(abs(value), 1.0):
                raise CheckFailure(f"For {name}: " + message)
        raise CheckFailure(f"For {name} the NPE should be {expected:.3f}, got {fmt(got)}. "
                           "PE = mean over particles of the sum of |v(x_k, t_k)|^2 dt along Euler steps from x0; "
                           "W2^2 = utils.metrics.w2(x0, x1_data) ** 2.")
    return "0 for a straight constant-speed map, 0.75 for one that stops half way, large for a rotation."


def _rotation(x, t):
    """u(x, t) = (1 + t) J x: the flow rotates by t + t^2 / 2."""
    t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1)
    return (1 + t) * torch.stack([-x[:, 1], x[:, 0]], 1)


@exercise("6.4", title="Reflow pairs", notebook=NB, answer="reflow_pairs", reference=showdown.reflow_pairs,
          minutes=10, practises="a trained flow defines a deterministic coupling; rectification (Liu et al. 2023)")
def check_6_4(answer):
    g = torch.Generator().manual_seed(64)
    x0 = torch.randn(100, 2, generator=g, dtype=torch.float64)
    a, b = _pair(call(answer, _rotation, x0.clone(), 100, name="reflow_pairs"), "reflow_pairs")
    a, b = expect_tensor(a, (100, 2), "the first output"), expect_tensor(b, (100, 2), "the second output")
    angle = 1.5  # int_0^1 (1 + t) dt
    R = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=torch.float64)
    exact = x0 @ R.T
    if torch.allclose(a.double(), exact, rtol=0.03, atol=0.03) and torch.allclose(b.double(), x0):
        raise CheckFailure("The pair is the wrong way round: return (x0, x1_hat), noise first.")
    if not torch.allclose(a.double(), x0):
        if _is_permutation_of(a, x0):
            raise CheckFailure("x0 came back reordered: keep each noise point beside its own image under the flow.")
        raise CheckFailure("The first output should be x0 itself, unchanged.")
    Rb = torch.tensor([[math.cos(-angle), -math.sin(-angle)], [math.sin(-angle), math.cos(-angle)]], dtype=torch.float64)
    one_step = x0 + _rotation(x0, torch.zeros(100, dtype=torch.float64))
    expect_close(b.detach(), exact, "x1_hat, the end point of the flow (against the exact rotation)", atol=0.03,
                 rtol=0.03, mistakes=[
                     (x0 @ Rb.T, "You integrated backwards (from t=1 to t=0): the flow runs from the noise at t=0 "
                                 "to the data at t=1."),
                     (one_step, "That is a single Euler step: integrate with num_steps steps (utils.solvers.solve_ode)."),
                 ])
    return "x1_hat is where the flow takes x0 (exact rotation by 1.5 rad, to Euler accuracy)."
