"""Checks of notebook 06 (couplings, straight paths, few-step sampling)."""
from __future__ import annotations

import itertools
import math

import torch
from scipy.optimize import linear_sum_assignment

from .. import couplings, showdown, solvers
from ..metrics import w2
from .core import CheckFailure, exercise
from .expect import call, expect_close, expect_tensor, fmt

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


def _explain_6_1(error: Exception) -> str | None:
    """t of shape (n,) against x0 of shape (n, d): a broadcasting error that names neither."""
    if isinstance(error, RuntimeError) and "must match the size of tensor" in str(error) and "(50)" in str(error):
        return ("t has shape (50,), one time per pair, and x0 has shape (50, 2): (1 - t) * x0 cannot broadcast "
                "(PyTorch lines up the last dimensions, 50 against 2). Make t a column first, t[:, None], "
                "so that each pair is moved by its own time.")
    return None


@exercise("6.1", title="The straight interpolant of a pair", notebook=NB, answer="straight_interpolant",
          reference=straight_interpolant, minutes=8,
          practises="conditioning on a pair (x0, x1): xt and the conditional field x1 - x0")
def check_6_1(answer):
    g = torch.Generator().manual_seed(61)
    x0, x1 = torch.randn(50, 2, generator=g, dtype=torch.float64), torch.randn(50, 2, generator=g, dtype=torch.float64) + 2
    t, eps = torch.rand(50, generator=g, dtype=torch.float64), torch.randn(50, 2, generator=g, dtype=torch.float64)
    tc = t[:, None]
    for sigma in (0.1, 0.0):
        xt, ut = _pair(call(answer, x0, x1, t, sigma, eps, name="straight_interpolant", explain=_explain_6_1),
                       "straight_interpolant")
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


def _pair_set(a, b):
    """The set of pairs (row of a, row of b), as sorted tuples: the pairing, whatever the order of rows."""
    both = torch.cat([a.detach().double(), b.detach().double()], 1).round(decimals=9)
    return sorted(map(tuple, both.tolist()))


def _sorted_pairing(x0, x1, coord):
    return x0[x0[:, coord].argsort()], x1[x1[:, coord].argsort()]


def _greedy_pairing(x0, x1):
    free, order = list(range(len(x0))), []
    for j in range(len(x1)):
        d = ((x0[free] - x1[j]) ** 2).sum(1)
        order.append(free.pop(int(d.argmin())))
    return x0[order], x1


def _inverted_pairing(x0, x1):
    """Right permutation, applied the wrong way round: x0[cols] with x1 (or the cost transposed)."""
    _, cols = linear_sum_assignment(torch.cdist(x0, x1).pow(2).numpy())
    return x0[torch.as_tensor(cols)], x1


def _worst_pairing(x0, x1):
    r, c = linear_sum_assignment(torch.cdist(x0, x1).pow(2).numpy(), maximize=True)
    return x0[r], x1[c]


def _unsquared_pairing(x0, x1):
    r, c = linear_sum_assignment(torch.cdist(x0, x1).numpy())
    return x0[r], x1[c]


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
        if got <= best + 1e-9:
            continue
        pairs = _pair_set(a, b)
        known = [
            ((x0, x1), "x0 came back in its original order: that is the independent pairing, not OT."),
            (_unsquared_pairing(x0, x1), "You minimised the sum of distances |x0 - x1|; OT for W2 minimises the sum "
                                         "of SQUARED distances |x0 - x1|^2 (square the entries of the cost matrix)."),
            (_sorted_pairing(x0, x1, 0), "You paired the points in the order of their first coordinate. Sorting is "
                                         "optimal in 1D only; in 2D the squared distance involves both coordinates, "
                                         "so the pairing must minimise over the full (n, n) cost matrix."),
            (_sorted_pairing(x0, x1, 1), "You paired the points in the order of their second coordinate. Sorting is "
                                         "optimal in 1D only; in 2D the squared distance involves both coordinates, "
                                         "so the pairing must minimise over the full (n, n) cost matrix."),
            (_inverted_pairing(x0, x1), "The optimal permutation is applied inverted. With cost[i, j] = "
                                        "|x0[i] - x1[j]|^2, linear_sum_assignment's rows index x0 and its cols index "
                                        "x1: x0[rows[k]] goes with x1[cols[k]]. Check which argument came first in "
                                        "the cost matrix and which index you applied to which tensor."),
            (_worst_pairing(x0, x1), "You maximised the total squared distance (maximize=True, or a negated cost): "
                                     "OT minimises it."),
            (_greedy_pairing(x0, x1), "That is a greedy pass: each x1 in turn takes its nearest free x0. Early "
                                      "choices block better ones later; the optimal pairing minimises the total "
                                      "over all n! pairings at once."),
        ]
        for (wa, wb), message in known:
            if _pair_set(wa, wb) == pairs:
                raise CheckFailure(message)
        raise CheckFailure(f"The pairing is not optimal: mean squared distance {got:.9g}, the best of all pairings "
                           f"has {best:.9g} (n = {n}). It is a permutation, but not the one of least total squared "
                           "distance.")
    return "The pairing has the least total squared distance of all n! pairings (brute force for n = 7)."


def _const_field(c):
    return lambda x, t: c.to(x.dtype).expand_as(x)


def _tcol(t, x):
    """Any time the student passes (float, 0-d, (n,), (n, 1)) as a column (n, 1)."""
    t = torch.as_tensor(t, dtype=x.dtype)
    return t.expand(x.shape[0])[:, None] if t.ndim == 0 else t.reshape(x.shape[0], 1)


def _expanding(x, t):
    """u(x, t) = 2 t x: slow at first, fast at the end (its flow from 0 to 1 multiplies by e)."""
    return 2 * _tcol(t, x) * x


def _quarter_turn(x, t):
    return (math.pi / 2) * torch.stack([-x[:, 1], x[:, 0]], 1)


def _euler_energy(field, x0, num_steps, times="start", coord="sum"):
    """Mean over particles of sum_k |v(x_k, t_k)|^2 dt along Euler steps; variants of the time grid."""
    n, dt = x0.shape[0], 1.0 / num_steps
    x, energy = x0, torch.zeros(n, dtype=x0.dtype)
    for k in range(num_steps):
        tk = {"start": k * dt, "end": (k + 1) * dt, "backwards": 1 - k * dt, "frozen": 0.0}[times]
        v = field(x, torch.full((n,), tk, dtype=x0.dtype))
        energy = energy + ((v**2).sum(1) if coord == "sum" else (v**2).mean(1)) * dt
        x = x + dt * v
    return float(energy.mean())


@exercise("6.3", title="The normalised path energy (NPE)", notebook=NB, answer="normalized_path_energy",
          reference=showdown.normalized_path_energy, minutes=18,
          practises="the least energy of any flow between two clouds (Benamou-Brenier) against a flow's path energy")
def check_6_3(answer):
    g = torch.Generator().manual_seed(63)
    x0 = torch.randn(200, 2, generator=g, dtype=torch.float64)
    c = torch.tensor([1.0, -0.5], dtype=torch.float64)
    num_steps = 50
    cases = [  # (name, field, data); every input is deterministic, so the tolerance is float64 rounding
        ("a constant field c with data x0 + c (the straight OT map: NPE 0)", _const_field(c), x0 + c),
        ("a constant field c with data x0 + 2c (it moves only half way: NPE 0.75)", _const_field(c), x0 + 2 * c),
        ("a quarter turn (curved paths: a large NPE)", _quarter_turn, torch.stack([-x0[:, 1], x0[:, 0]], 1)),
        ("the time-dependent field u(x, t) = 2 t x (slow at t = 0, fast at t = 1)", _expanding, x0 * math.e),
    ]
    for name, field, data in cases:
        got = call(answer, field, x0.clone(), data.clone(), num_steps, name="normalized_path_energy")
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, float) or isinstance(got, bool):
            raise CheckFailure(f"Return the NPE as a float, got {type(got).__name__}.")
        pe = _euler_energy(field, x0, num_steps)
        w2sq = w2(x0, data) ** 2
        expected = abs(pe - w2sq) / w2sq
        if abs(got - expected) <= 1e-7 * max(1.0, expected):
            continue

        def npe(p):
            return abs(p - w2sq) / w2sq

        rows = float(((data - x0) ** 2).sum(1).mean())  # the pairing as given, not the best one

        wrong = [
            ((pe - w2sq) / w2sq, "Take the absolute value: NPE = |PE - W2^2| / W2^2."),
            (abs(pe - w2sq), "Divide by W2^2: the NPE is relative, so that data sets of any scale compare."),
            (abs(pe - w2sq ** 0.5) / w2sq ** 0.5, "Use W2 squared: the path energy has units of squared distance."),
            (npe(pe * num_steps), "Multiply by dt: the path energy is the integral of |v|^2 over time, "
                                  "sum_k |v(x_k, t_k)|^2 dt."),
            (npe(_euler_energy(field, x0, num_steps, coord="mean")), "Sum |v|^2 over the coordinates "
                                                                       "(.sum(1)), don't average them."),
            (npe(_euler_energy(field, x0, num_steps, times="backwards")),
             "Time runs backwards inside your loop: the field is evaluated at t = 1 - k dt. The flow goes from the "
             "noise at t = 0 to the data at t = 1, so step k evaluates v(x_k, k dt)."),
            (npe(_euler_energy(field, x0, num_steps, times="end")),
             "Off by one step in time: you evaluated the field at the end of each step, (k + 1) dt. Euler evaluates "
             "v(x_k, t_k) at the start, t_k = k dt, for k = 0 .. num_steps - 1."),
            (npe(_euler_energy(field, x0, num_steps, times="frozen")),
             "The time never advances: every step evaluated the field at t = 0. Pass t_k = k dt at step k."),
            (abs(pe - rows) / rows, "Your least energy pairs row i of x0 with row i of x1_data, as they come: the "
                                    "cheapest flow may send each particle to any data point, so it uses the best "
                                    "pairing of the two clouds, whose mean squared distance is W2^2."),
        ]
        for value, message in wrong:
            if abs(got - value) <= 1e-7 * max(abs(value), 1.0):
                raise CheckFailure(f"For {name}: " + message)
        raise CheckFailure(f"For {name} with num_steps = {num_steps} the NPE should be {expected:.9g}, got "
                           f"{got:.9g}. PE = mean over particles of the sum of |v(x_k, t_k)|^2 dt along Euler steps "
                           "from x0, t_k = k dt; W2^2 = utils.metrics.w2(x0, x1_data) ** 2.")
    return ("0 for a straight constant-speed map, 0.75 for one that stops half way, large for a quarter turn, "
            "and the right time grid on a time-dependent field.")


def _rotation(x, t):
    """u(x, t) = (1 + 3 t^2) J x: the flow rotates by t + t^3 (fast late, so the time grid matters)."""
    return (1 + 3 * _tcol(t, x) ** 2) * torch.stack([-x[:, 1], x[:, 0]], 1)


def _euler_path(field, x0, num_steps, times="start", steps_taken=None):
    x, dt = x0, 1.0 / num_steps
    for k in range(num_steps if steps_taken is None else steps_taken):
        tk = {"start": k * dt, "end": (k + 1) * dt, "backwards": 1 - k * dt}[times]
        x = x + (dt if times != "backwards" else -dt) * field(x, torch.full((len(x),), tk, dtype=x.dtype))
    return x


@exercise("6.4", title="Reflow pairs", notebook=NB, answer="reflow_pairs", reference=showdown.reflow_pairs,
          minutes=10, practises="a trained flow defines a deterministic coupling; rectification (Liu et al. 2023)")
def check_6_4(answer):
    g = torch.Generator().manual_seed(64)
    x0 = torch.randn(100, 2, generator=g, dtype=torch.float64)
    num_steps = 40  # not the default of utils.solvers, so that ignoring it shows
    a, b = _pair(call(answer, _rotation, x0.clone(), num_steps, name="reflow_pairs"), "reflow_pairs")
    a, b = expect_tensor(a, (100, 2), "the first output"), expect_tensor(b, (100, 2), "the second output")
    angle = 2.0  # int_0^1 (1 + 3 t^2) dt
    R = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=torch.float64)
    exact, euler = x0 @ R.T, _euler_path(_rotation, x0, num_steps)
    if torch.allclose(b.double(), x0) and not torch.allclose(a.double(), x0):
        raise CheckFailure("The pair is the wrong way round: return (x0, x1_hat), noise first.")
    if not torch.allclose(a.double(), x0):
        if _is_permutation_of(a, x0):
            raise CheckFailure("x0 came back reordered: keep each noise point beside its own image under the flow.")
        raise CheckFailure("The first output should be x0 itself, unchanged.")
    b = b.detach().double()
    # deterministic inputs: Euler with num_steps steps agrees to rounding; an accurate solver (RK4, dopri5)
    # agrees with the exact rotation to 1e-5, while every mistake below is off by more than 1e-2
    if torch.allclose(b, euler, atol=1e-9, rtol=1e-9) or torch.allclose(b, exact, atol=1e-5, rtol=0):
        return f"x1_hat is where the flow takes x0 ({num_steps} Euler steps of a time-dependent rotation)."
    one_step = x0 + _rotation(x0, torch.zeros(100, dtype=torch.float64))
    mistakes = [
        (one_step, "That is a single Euler step: integrate with num_steps steps (utils.solvers.solve_ode)."),
        (_euler_path(_rotation, x0, num_steps, "end"),
         "Off by one step in time: the field was evaluated at the end of each step, t_k = (k + 1) dt. Euler uses "
         "the start, t_k = k dt for k = 0 .. num_steps - 1."),
        (_euler_path(_rotation, x0, num_steps, steps_taken=num_steps + 1),
         "You took num_steps + 1 steps of dt = 1 / num_steps: the last one runs past t = 1."),
        (_euler_path(_rotation, x0, num_steps, steps_taken=num_steps - 1),
         "You took num_steps - 1 steps of dt = 1 / num_steps: the flow stops one step short of t = 1."),
        (_euler_path(_rotation, x0, num_steps + 1), "You took num_steps + 1 steps (dt = 1 / (num_steps + 1)): "
                                                   "take num_steps steps of dt = 1 / num_steps."),
        (_euler_path(_rotation, x0, num_steps - 1), "You took num_steps - 1 steps (dt = 1 / (num_steps - 1)): "
                                                   "take num_steps steps of dt = 1 / num_steps."),
        (_euler_path(_rotation, x0, 100), f"You took 100 steps, not the num_steps = {num_steps} passed in."),
        (_euler_path(_rotation, x0, num_steps, "backwards"),
         "You integrated backwards (from t=1 to t=0): the flow runs from the noise at t=0 to the data at t=1."),
    ]
    for value, message in mistakes:
        if torch.allclose(b, value, atol=1e-7, rtol=1e-7):
            raise CheckFailure(message)
    err = (b - euler).norm(dim=1)
    k = int(err.argmax())
    raise CheckFailure(f"x1_hat is not where {num_steps} Euler steps of the flow take x0: for x0 = "
                       f"{fmt(x0[k], 6)} it should be {fmt(euler[k], 6)}, got {fmt(b[k], 6)} (largest distance "
                       f"{err.max():.3g}).")


def _spiral(x, t):
    """u(x, t) = (1 + 2 t) A x + (t^2, -t): time-dependent and not linear in t, so every time slip shows."""
    a = torch.tensor([[-0.4, -1.0], [1.2, 0.1]], dtype=x.dtype)
    tc = _tcol(t, x)
    return (1 + 2 * tc) * (x @ a.T) + torch.cat([tc**2, -tc], 1)


class _Counted:
    def __init__(self, u):
        self.u, self.calls = u, 0

    def __call__(self, x, t):
        self.calls += 1
        return self.u(x, t)


def heun_step(v_theta, x, t, dt):
    """Reference of exercise 6.5: the trapezoid over the step, its unknown end predicted by an Euler step."""
    k1 = v_theta(x, t)
    k2 = v_theta(x + dt * k1, t + dt)
    return x + 0.5 * dt * (k1 + k2)


@exercise("6.5", title="Heun's step: a trapezoid over the step", notebook=NB, answer="heun_step",
          reference=heun_step, points=2, minutes=20,
          practises="deriving a second-order step from the trapezoidal rule; where it beats Euler at equal NFE")
def check_6_5(answer):
    g = torch.Generator().manual_seed(65)
    x = torch.randn(40, 2, generator=g, dtype=torch.float64)
    t, dt = 0.3, 0.25
    u = _Counted(_spiral)
    got = call(answer, u, x.clone(), t, dt, name="heun_step")
    got = expect_tensor(got, x.shape, f"heun_step(u, x, t={t}, dt={dt})")
    if u.calls != 2:
        raise CheckFailure(f"This step may evaluate the field exactly twice (its cost, 2 NFE): once at the start and "
                           f"once at the predicted end. Yours called it {u.calls} time(s).")
    k1 = _spiral(x, t)
    x_end = x + dt * k1  # the end point, predicted by an Euler step
    k2 = _spiral(x_end, t + dt)
    half = x + 0.5 * dt * k1
    expect_close(got, x + 0.5 * dt * (k1 + k2), f"one Heun step of u(x, t) = (1 + 2t) A x + (t^2, -t) from t = {t}, "
                                                f"dt = {dt}", atol=1e-10, rtol=1e-10, inputs=x, mistakes=[
        (x + dt * k1, "That is an Euler step: the trapezoid averages the slope at the start with the slope at the "
                      "(predicted) end of the step."),
        (x + dt * k2, "You stepped with the end slope alone: the trapezoid averages both ends, "
                      "x + dt/2 (k1 + k2)."),
        (x + dt * (k1 + k2), "The trapezoid's weights are 1/2 each: x + dt/2 (k1 + k2), not x + dt (k1 + k2)."),
        (x + 0.5 * dt * (k1 + _spiral(x_end, t)), "The end slope belongs to the end of the step: evaluate it at "
                                                  "t + dt, not at t."),
        (x + 0.5 * dt * (k1 + _spiral(half, t + 0.5 * dt)), "The end slope must be taken at the predicted END point "
                                                            "x + dt k1 and time t + dt, not half way."),
        (x + dt * _spiral(half, t + 0.5 * dt), "That is the midpoint step of notebook 03 (also second order, also 2 "
                                               "NFE); this exercise asks for the trapezoid over the step."),
        (x + 0.5 * dt * (k1 + _spiral(half, t + dt)), "The end point is predicted by a FULL Euler step, x + dt k1, "
                                                      "not x + dt/2 k1."),
        (x_end + 0.5 * dt * (k1 + k2), "The step starts from x: x + dt/2 (k1 + k2), not from the predicted end."),
        (x_end, "You returned the predicted end point, an Euler step: correct it with the average of both slopes."),
    ])
    # order of convergence on a whole trajectory, with the student's own step
    x0 = x[:8]
    ref = x0
    for k in range(256):
        ref = solvers.rk4_step(_spiral, ref, k / 256, 1 / 256)
    errs = []
    for n in (8, 16):
        y = x0
        for k in range(n):
            y = call(answer, _spiral, y, k / n, 1 / n, name="heun_step")
        errs.append(float((y - ref).abs().max()))
    ratio = errs[0] / errs[1]
    if not 3.0 < ratio < 5.5:  # second order: about 4
        raise CheckFailure(f"Halving dt should divide the error of a Heun solve by about 2^2 = 4; yours was "
                           f"divided by {ratio:.3g}.")
    return f"Two evaluations a step, and halving dt divides the error by {ratio:.1f}: second order."
