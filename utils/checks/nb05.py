"""Checks of notebook 05 (flow matching)."""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import cfm, paths
from ..datasets import moons
from .core import CheckFailure, exercise
from .expect import call, expect_close, expect_gradient, expect_log_space, expect_tensor, fmt

NB = "05_flow_matching"
SWAPPED = ("The time convention is swapped: in flow matching t=0 is the noise (mu_0 = 0, sigma_0 = 1) and "
           "t=1 is the data (mu_1 = x1, sigma_1 = sigma_min). You used 1 - t where t belongs.")
FED_X1 = ("The network was fed x1 instead of xt: v_theta must see the noisy point xt = mu_t(x1) + sigma_t x0 "
          "(and t), never the data point x1 itself, which it will not know at sampling time.")


def ot_mean_std(x1: torch.Tensor, t: torch.Tensor, sigma_min: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference of exercise 5.1: mu_t = t x1, sigma_t = 1 - (1 - sigma_min) t, sigma as a column (n, 1)."""
    return paths.OTPath(sigma_min).mean_std(x1, t)


def _column(sigma, n: int, name: str) -> torch.Tensor:
    if isinstance(sigma, (int, float)):
        raise CheckFailure(f"{name} should be a tensor with one value per point, shape ({n}, 1); got a number.")
    sigma = expect_tensor(sigma, None, name)
    if tuple(sigma.shape) == (n,):
        sigma = sigma[:, None]
    if tuple(sigma.shape) != (n, 1):
        raise CheckFailure(f"Wrong shape: {name} should have shape ({n}, 1) (one value per point, "
                           f"broadcastable against x1), got {tuple(sigma.shape)}.")
    return sigma


@exercise("5.1", title="The OT path's mean and standard deviation", notebook=NB, answer="ot_mean_std",
          reference=ot_mean_std, minutes=8,
          practises="the boundary conditions of a conditional Gaussian path; t=0 noise, t=1 data")
def check_5_1(answer):
    g = torch.Generator().manual_seed(51)
    x1 = torch.randn(40, 2, generator=g, dtype=torch.float64) * 2
    t = torch.rand(40, generator=g, dtype=torch.float64)
    t[:2] = torch.tensor([0.0, 1.0], dtype=torch.float64)
    for sigma_min in (0.1, 0.0):
        out = call(answer, x1, t, sigma_min, name="ot_mean_std")
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise CheckFailure("`ot_mean_std` should return a pair (mu, sigma).")
        mu = expect_tensor(out[0], (40, 2), "mu")
        if isinstance(out[1], torch.Tensor) and tuple(out[1].shape) == (40,):
            raise CheckFailure("Wrong shape: sigma has shape (40,), one value per point but as a row; the "
                               "statement asks for a column, shape (40, 1). Only a column broadcasts against x1 "
                               "of shape (40, 2) point by point: sigma * x0 with shape (40,) fails, and with as "
                               "many points as coordinates it silently scales coordinates instead of points. "
                               "Use t[:, None] (or keepdim) before computing sigma.")
        sigma = _column(out[1], 40, "sigma")
        tc = t[:, None]
        mu_ok, sigma_ok = t[:, None] * x1, 1 - (1 - sigma_min) * tc
        if (torch.allclose(mu.double(), (1 - tc) * x1, atol=1e-6) and
                torch.allclose(sigma.double(), 1 - (1 - sigma_min) * (1 - tc), atol=1e-6)):
            raise CheckFailure(SWAPPED)
        expect_close(mu, mu_ok, f"mu_t (sigma_min = {sigma_min})", atol=1e-6, mistakes=[
            ((1 - tc) * x1, SWAPPED), (x1.expand(40, 2), "mu_t should move from 0 at t=0 to x1 at t=1: "
                                                         "mu_t = t x1, not x1 at every t.")])
        expect_close(sigma, sigma_ok, f"sigma_t (sigma_min = {sigma_min})", atol=1e-6, mistakes=[
            (1 - tc, "sigma_t = 1 - t ignores sigma_min: at t=1 the path should keep a little noise, "
                     "sigma_1 = sigma_min, so sigma_t = 1 - (1 - sigma_min) t."),
            (1 - (1 - sigma_min) * (1 - tc), SWAPPED),
            (1 - tc + sigma_min, "sigma_t = 1 - t + sigma_min breaks sigma_0 = 1: "
                                 "use sigma_t = 1 - (1 - sigma_min) t."),
            ((1 - (1 - sigma_min) * tc) ** 2, "That is the variance sigma_t^2; return the standard deviation.")])
    return "mu_0 = 0, sigma_0 = 1, mu_1 = x1 and sigma_1 = sigma_min, as a path from noise to data must."


def _custom_path(t):
    """mu_t = sin(pi t / 2) x1, sigma_t = cos(pi t / 2) + 0.05 t: a path that is neither OT nor VP."""
    a, s = torch.sin(math.pi * t / 2), torch.cos(math.pi * t / 2) + 0.05 * t
    da, ds = math.pi / 2 * torch.cos(math.pi * t / 2), -math.pi / 2 * torch.sin(math.pi * t / 2) + 0.05
    return a, s, da, ds


@exercise("5.2", title="The conditional field of a general Gaussian path", notebook=NB,
          answer="conditional_velocity", reference=paths.gaussian_conditional_velocity, minutes=12,
          practises="deriving the conditional field from the conditional flow psi_t(x0) = mu_t + sigma_t x0")
def check_5_2(answer):
    g = torch.Generator().manual_seed(52)
    x0 = torch.randn(30, 2, generator=g, dtype=torch.float64)
    x1 = torch.randn(30, 2, generator=g, dtype=torch.float64) * 2
    t = (torch.rand(30, generator=g, dtype=torch.float64) * 0.9 + 0.05)[:, None]
    for name in ("a custom path (mu = sin(pi t/2) x1, sigma = cos(pi t/2) + 0.05 t)", "the VP path"):
        if name.startswith("a custom"):
            a, s, da, ds = _custom_path(t)
            flow = lambda tt: _custom_path(tt)[0] * x1 + _custom_path(tt)[1] * x0  # noqa: E731
        else:
            vp = paths.VPPath()
            a, s, da, ds = vp._schedule(t)
            flow = lambda tt: vp.sample(x0, x1, tt[:, 0])  # noqa: E731
        mu, dmu, xt = a * x1, da * x1, a * x1 + s * x0
        got = call(answer, xt, mu, s, dmu, ds, name="conditional_velocity")
        got = expect_tensor(got, (30, 2), f"the conditional field for {name}")
        h = 1e-6  # the time derivative of the flow, by central differences: an independent reference
        fd = (flow(t + h) - flow(t - h)) / (2 * h)
        expect_close(got, fd, f"u_t(xt | x1) for {name}", atol=1e-5, rtol=1e-5, mistakes=[
            (ds * (xt - mu) + dmu, "You multiplied (xt - mu_t) by sigma_t' but did not divide by sigma_t: "
                                   "the factor is sigma_t' / sigma_t."),
            (s / ds * (xt - mu) + dmu, "The ratio is upside down: the factor is sigma_t' / sigma_t."),
            (ds / s * (xt - mu), "The term mu_t' is missing: the mean moves too, u = sigma'/sigma (x - mu) + mu'."),
            (ds / s * xt + dmu, "Subtract the mean first: the factor sigma_t'/sigma_t multiplies (xt - mu_t)."),
            (ds / s * (mu - xt) + dmu, "The sign of (xt - mu_t) is flipped."),
            (ds * xt + dmu, "You used xt where x0 belongs: the flow is psi_t(x0) = mu_t + sigma_t x0, so "
                            "u = sigma_t' x0 + mu_t' with x0 = (xt - mu_t) / sigma_t, the noise that flows to xt."),
            (ds / s * (xt - mu) - dmu, "The sign of mu_t' is flipped: u = sigma_t'/sigma_t (xt - mu_t) + mu_t'."),
        ])
    return "It equals the time derivative of the conditional flow psi_t(x0) = mu_t + sigma_t x0."


def _fixed_field(x, t):
    """A fixed nonlinear v(x, t) for checking losses."""
    t = t.reshape(-1, 1).to(x.dtype)
    W = torch.tensor([[0.8, -0.5], [0.3, 1.1]], dtype=x.dtype)
    return torch.tanh(x @ W) * (1 + 2 * t) + torch.sin(3 * t) - 0.4 * x


@exercise("5.5", title="The CFM loss of a batch", notebook=NB, answer="cfm_loss", reference=cfm.cfm_loss,
          minutes=15, practises="finding a loss that needs only samples, with the FM loss's gradient; what the network may see")
def check_5_5(answer):
    g = torch.Generator().manual_seed(53)
    n = 64
    x0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
    x1 = moons(n, seed=53).double()
    t = torch.rand(n, generator=g, dtype=torch.float64) * 0.95
    tc = t[:, None]
    halved = False
    for path in (paths.OTPath(sigma_min=0.1), paths.VPPath()):
        got = call(answer, _fixed_field, path, x0.clone(), x1.clone(), t.clone(), name="cfm_loss")
        if isinstance(got, float):
            raise CheckFailure("Return the loss as a tensor (not .item()): training needs its gradient.")
        got = expect_tensor(got, (), f"the loss for {path!r}")
        if isinstance(path, paths.OTPath):  # closed forms, independent of utils.paths
            xt, ut = tc * x1 + (1 - 0.9 * tc) * x0, x1 - 0.9 * x0
        else:
            xt = path.sample(x0, x1, t)
            ut = path.velocity(xt, x1, t)
        per = lambda v, target: ((v - target) ** 2).sum(1).mean()  # noqa: E731
        expected = per(_fixed_field(xt, t), ut)
        if torch.allclose(got.double(), expected / 2, rtol=1e-5) and not torch.allclose(got.double(), expected,
                                                                                       rtol=1e-5):
            got = got * 2  # the mean over coordinates as well: a constant factor 1/d, accepted and said
            halved = True
        wrong = []
        for scale in (1.0, 0.5):
            wrong += [
                (per(_fixed_field(x1, t), ut) * scale, FED_X1),
                (per(_fixed_field(x0, t), ut) * scale, "The network was fed x0 instead of xt: it must see the "
                                                       "point on the path, xt = mu_t(x1) + sigma_t x0."),
                (per(_fixed_field(xt, 1 - t), ut) * scale, SWAPPED),
                (per(_fixed_field(path.sample(x0, x1, 1 - t), t), path.velocity(path.sample(x0, x1, 1 - t), x1, 1 - t))
                 * scale, SWAPPED),
                (per(_fixed_field(xt, t), x1) * scale, "The target is the conditional field u_t(xt | x1) "
                                                       "(path.velocity), not the data point x1."),
            ]
            if isinstance(path, paths.OTPath):
                wrong.append((per(_fixed_field(xt, t), x1 - x0) * scale,
                              "The target x1 - x0 is the field of the path with sigma_min = 0; this path has "
                              "sigma_min = 0.1. Use path.velocity(xt, x1, t)."))
        wrong.append((((_fixed_field(xt, t) - ut) ** 2).sum(), "Average over the batch, do not sum: the loss "
                                                                "should not grow with the batch size."))
        wrong.append((per(_fixed_field(xt, t), path.marginal_velocity(xt, x1, t)),
                      "You regressed on the marginal field of the batch itself, the batch taken as the data set: "
                      "that is not the marginal field of the data distribution, and it costs n^2 work. Regress on "
                      "what each example knows exactly, its conditional field u_t(xt | x1) (path.velocity): its "
                      "average given xt is the marginal field, so the gradients agree."))
        expect_close(got, expected, f"the CFM loss for {path!r}", rtol=1e-5, atol=1e-8, mistakes=wrong)
    # gradients must flow to the network's parameters
    net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 2)).double()
    model = lambda x, t: net(torch.cat([x, t.reshape(-1, 1).to(x.dtype)], 1))  # noqa: E731
    path = paths.OTPath(0.1)
    loss = call(answer, model, path, x0, x1, t, name="cfm_loss")
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        raise CheckFailure("The loss does not depend on the network's parameters any more (was it detached, "
                           "or computed under torch.no_grad()?): training needs its gradient.")
    if halved:
        return ("It matches the closed form for the OT and VP paths up to a factor: you averaged over the "
                "coordinates too (a mean over all n x d entries), which gives 1/2 of the asked loss (1/d, d = 2). "
                "Same minimiser; the gradients are half as large, as if the learning rate were halved.")
    return "It matches the closed form for the OT and VP paths and carries gradients to the network."


class _Spy(nn.Module):
    """An affine v_theta(x, t) that records what it is fed."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[0.3, -0.2, 0.5], [0.1, 0.4, -0.3]]))
            self.lin.bias.copy_(torch.tensor([0.05, -0.1]))
        self.calls = []

    def forward(self, x, t):
        if not isinstance(t, torch.Tensor):
            t = torch.full((x.shape[0],), float(t))
        t = t.reshape(-1).to(x.dtype)
        if t.numel() == 1:
            t = t.expand(x.shape[0])
        self.calls.append((x.detach().clone(), t.detach().clone()))
        return self.lin(torch.cat([x, t[:, None]], 1))


# z = (x - mu_t) / sigma_t is exactly the x0 the answer drew: n = 512 i.i.d. N(0, 1) per coordinate.
# The sample mean is N(0, 1/n): sd 1/sqrt(512) = 0.0442. The sample sd is close to N(1, 1/(2n)): sd 0.0313.
# Two coordinates, two calls: 8 statistics. Each gets 5.4 of its sds (two-sided p = 6.7e-8), so a correct
# answer is falsely rejected with probability below 8 * 6.7e-8 = 5.4e-7 < 1e-6. Tolerances: 5.4 * 0.0442 =
# 0.239 for the mean, and 0.2 for the sd (5.4 * 0.0313 = 0.169, widened for the chi tail's skew).
# The mistakes it must catch (xt built at 1 - t, x0 fed in) move these statistics by whole units.
MEAN_TOL, STD_TOL = 0.239, 0.2


def _standard(z: torch.Tensor) -> bool:
    return bool(z.mean(0).abs().max() < MEAN_TOL and (z.std(0) - 1).abs().max() < STD_TOL)


@exercise("5.6", title="A CFM training step", notebook=NB, answer="training_step", reference=cfm.training_step,
          minutes=15, practises="sampling x0 and t, the CFM loss, and one optimiser step")
def check_5_6(answer):
    with torch.random.fork_rng(devices=[]):  # the spies' initialisation must not move the student's global RNG
        return _check_5_6(answer)


def _check_5_6(answer):
    path = paths.OTPath(sigma_min=0.05)
    x1 = moons(512, seed=54)
    spy, lr = _Spy(), 0.05
    opt = torch.optim.SGD(spy.parameters(), lr=lr)
    halved = False
    for call_no in (1, 2):
        before = [p.detach().clone() for p in spy.parameters()]
        spy.calls.clear()
        got = call(answer, spy, opt, path, x1.clone(), torch.Generator().manual_seed(540 + call_no),
                   name="training_step")
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, float):
            raise CheckFailure(f"`training_step` should return the loss as a float (loss.item()), got "
                               f"{type(got).__name__}.")
        if len(spy.calls) != 1:
            raise CheckFailure(f"The network was called {len(spy.calls)} times in one step; call it once, "
                               "on the whole batch.")
        x, t = spy.calls[0]
        if x.shape != x1.shape or t.shape != (512,):
            raise CheckFailure(f"The network was fed x of shape {tuple(x.shape)} and t of shape {tuple(t.shape)}; "
                               f"expected ({512}, 2) and ({512},): one time per sample.")
        if torch.allclose(x, x1):
            raise CheckFailure(FED_X1)
        if (t < 0).any() or (t > 1).any():
            raise CheckFailure(f"Times must lie in [0, 1]; got values from {fmt(t.min())} to {fmt(t.max())}.")
        if t.std() < 1e-6:
            raise CheckFailure("Every sample got the same time: draw one t per sample, t ~ U[0, 1).")
        # t ~ U[0, 1): the mean of 512 has sd 0.289 / sqrt(512) = 0.0128, so 0.08 is 6.3 sds (p = 3e-10);
        # P(min >= 0.1) = 0.9^512 < 1e-23. A correct answer is never rejected here in practice.
        if not (0.42 < t.mean() < 0.58 and t.min() < 0.1 and t.max() > 0.9):
            raise CheckFailure(f"The times do not look uniform on [0, 1] (mean {fmt(t.mean())}, range "
                               f"{fmt(t.min())} to {fmt(t.max())}): draw t = torch.rand(n).")
        mu, sigma = path.mean_std(x1, t)
        z = (x - mu) / sigma
        if not _standard(z):
            mu_s, sigma_s = path.mean_std(x1, 1 - t)
            if _standard((x - mu_s) / sigma_s):
                raise CheckFailure(SWAPPED + " (The network was given t, but xt was built at time 1 - t.)")
            if _standard(x) and (x - x1).abs().mean() > 0.5:
                raise CheckFailure("The network was fed x0 instead of xt: give it path.sample(x0, x1, t).")
            raise CheckFailure("The network's input is not a sample of p_t(x | x1) at the time it was given: "
                               "build xt = path.sample(x0, x1, t) with x0 ~ N(0, I) and feed (xt, t).")
        # the loss and the update, recomputed from what the network saw, with the parameters before the step
        params = list(spy.parameters())
        after = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, b in zip(params, before):
                p.copy_(b)
        ut = path.velocity(x, x1, t)
        out = spy.lin(torch.cat([x, t[:, None]], 1))
        loss = ((out - ut) ** 2).sum(1).mean()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, a in zip(params, after):
                p.copy_(a)
        value, tol = loss.item(), 1e-4 * max(1.0, loss.item())
        if abs(got - value / 2) < tol:
            scale, halved = 0.5, True  # the mean over coordinates too: a constant factor, accepted and said
        elif abs(got - value) < tol:
            scale = 1.0
        else:
            wrong = ((out.detach() - (x1 - z)) ** 2).sum(1).mean().item()
            if min(abs(got - wrong), abs(got - wrong / 2)) < 1e-4 * max(1.0, wrong):
                raise CheckFailure("The target should be the path's conditional field, path.velocity(xt, x1, t); "
                                   "x1 - x0 is the field of the path only when sigma_min = 0 (here 0.05).")
            raise CheckFailure(f"The returned loss {fmt(got)} is not the CFM loss of the batch the network saw "
                               f"({fmt(value)}): the mean over the batch of |v_theta(xt, t) - u_t(xt | x1)|^2.")
        if all(torch.allclose(a, b) for a, b in zip(after, before)):
            raise CheckFailure("The parameters did not change: call optimizer.step() after loss.backward().")
        if not all(torch.allclose(a, b - lr * scale * g, atol=1e-6) for a, b, g in zip(after, before, grads)):
            raise CheckFailure("The update is not one gradient step on this batch's loss"
                               + (" (in the second call): call optimizer.zero_grad() before loss.backward(), "
                                  "or gradients pile up across steps." if call_no == 2 else "."))
    _check_generator(answer, path, x1)
    return ("It feeds (xt, t) to the network, regresses on the conditional field, takes one optimiser step, "
            "and draws x0 and t from `generator` alone (runs can be reproduced)."
            + (" Your loss is the mean over the coordinates too: 1/2 of the asked loss (1/d, d = 2), the same "
               "minimiser with half the gradient." if halved else ""))


def _fed(answer, path, x1, seed: int, global_seed: int):
    """What one step feeds the network, for a given generator seed and global RNG seed."""
    spy = _Spy()
    opt = torch.optim.SGD(spy.parameters(), lr=0.0)
    with torch.random.fork_rng(devices=[]):  # the student's global RNG state is left as it was
        torch.manual_seed(global_seed)
        call(answer, spy, opt, path, x1.clone(), torch.Generator().manual_seed(seed), name="training_step")
    return spy.calls[0]


def _check_generator(answer, path, x1):
    """The statement says: draw x0 and t with `generator`. Same generator, other global state: same inputs."""
    (xa, ta), (xb, tb) = _fed(answer, path, x1, 7, 1), _fed(answer, path, x1, 7, 2)
    noise = lambda x, t: (x - path.mean_std(x1, t)[0]) / path.mean_std(x1, t)[1]  # noqa: E731  the x0 drawn
    same_t = torch.equal(ta, tb)
    same_x0 = torch.allclose(noise(xa, ta), noise(xb, tb), atol=1e-5)
    drawn = {(False, False): "x0 and t were", (True, False): "x0 was", (False, True): "The times t were"}
    if not (same_t and same_x0):
        what = drawn[(same_t, same_x0)]
        raise CheckFailure(f"{what[0].upper()}{what[1:]} drawn from the global random generator: with the same "
                           "`generator` and another global seed your step drew other values. Pass "
                           "generator=generator to torch.randn and torch.rand, so that a run can be reproduced.")
    xc, tc = _fed(answer, path, x1, 8, 1)
    if torch.equal(ta, tc) and torch.equal(xa, xc):
        raise CheckFailure("Your step draws the same x0 and t whatever `generator` it is given (was a seed set "
                           "inside it?): draw both from `generator`, and do not reseed.")



# ---------------------------------------------------------------- 5.3 the marginal field of a data set

def marginal_velocity(x: torch.Tensor, data: torch.Tensor, t: float, path: paths.GaussianPath) -> torch.Tensor:
    """Reference of exercise 5.3: the posterior average of the conditional fields (utils.paths)."""
    return path.marginal_velocity(x, data, t)


def cosine_schedule(t: torch.Tensor, sigma_min: float):
    """Reference of exercise 5.7: mu_t = sin(pi t / 2) x1, sigma_t = sigma_min + (1 - sigma_min) cos(pi t / 2)."""
    a = torch.sin(math.pi * t / 2)
    sigma = sigma_min + (1 - sigma_min) * torch.cos(math.pi * t / 2)
    da = math.pi / 2 * torch.cos(math.pi * t / 2)
    dsigma = -(1 - sigma_min) * math.pi / 2 * torch.sin(math.pi * t / 2)
    return a, sigma, da, dsigma


COSINE = paths.SchedulePath(lambda t: cosine_schedule(t, 0.05), name="cosine, sigma_min = 0.05")


def _posterior_average(x, data, t, path, logits_fn, normalise=True, with_dmu=True):
    """sum_j w_j u_t(x | x1_j) with weights from ``logits_fn(sq_dist, sigma)``: builds the named mistakes."""
    mu, sigma = path.mean_std(data, t)  # (m, d), (m, 1)
    dmu, dsigma = path.mean_std_derivatives(data, t)
    sq = ((x[:, None, :] - mu[None]) ** 2).sum(-1)  # (n, m)
    w = logits_fn(sq, sigma[:, 0][None])
    if normalise:
        w = torch.softmax(w, dim=1)
    u = dsigma[None] / sigma[None] * (x[:, None, :] - mu[None]) + (dmu[None] if with_dmu else 0)  # (n, m, d)
    return (w[:, :, None] * u).sum(1)


@exercise("5.3", title="The marginal field of a data set", notebook=NB, answer="marginal_velocity",
          reference=marginal_velocity, points=2, minutes=20,
          practises="deriving the field that generates a mixture of conditional paths (Bayes), computed stably in logs")
def check_5_3(answer):
    g = torch.Generator().manual_seed(55)
    data = moons(9, seed=55).double()
    x = torch.randn(50, 2, generator=g, dtype=torch.float64) * 1.5
    gauss = lambda sq, s: -sq / (2 * s**2)  # noqa: E731
    # the most telling case first: OT with sigma_t of 0.3 gives sharp, unequal weights
    cases = [(paths.OTPath(sigma_min=0.05), 0.7), (COSINE, 0.5), (paths.VPPath(), 0.8), (paths.OTPath(0.0), 0.3)]
    for path, t in cases:
        got = call(answer, x.clone(), data.clone(), t, path, name="marginal_velocity")
        got = expect_tensor(got, (50, 2), f"the marginal field ({path!r}, t = {t})")
        expected = path.marginal_velocity(x, data, t)
        m = data.shape[0]
        mistakes = [
            (_posterior_average(x, data, 1 - t, path, gauss), SWAPPED),
            (_posterior_average(x, data, t, path, lambda sq, s: torch.zeros_like(sq)),
             "You averaged the conditional fields with equal weights 1/m: those are the prior weights. The "
             "posterior weights depend on x: w_j(x) = p_t(x | x1_j) / sum_k p_t(x | x1_k)."),
            (_posterior_average(x, data, t, path, lambda sq, s: torch.exp(-sq / (2 * s**2)), normalise=False),
             "The weights do not sum to 1 over the data points: you used exp(-|x - mu_j|^2 / (2 sigma_t^2)) "
             "as it is. Normalise over j (a softmax), w_j = p_t(x | x1_j) / sum_k p_t(x | x1_k)."),
            (_posterior_average(x, data, t, path, lambda sq, s: torch.exp(-sq / (2 * s**2)) / (2 * math.pi * s**2),
                                normalise=False),
             "The weights do not sum to 1 over the data points: you used the densities p_t(x | x1_j) as "
             "weights. Divide by their sum over j (a softmax of the log-densities)."),
            (_posterior_average(x, data, t, path, lambda sq, s: torch.exp(-sq / (2 * s**2)) / (2 * math.pi * s**2)
                                / m, normalise=False),
             "The weights do not sum to 1 over the data points: p_t(x | x1_j) / m is the joint density of x and "
             "x1_j, not the posterior. Divide by p_t(x), the sum over j."),
            (_posterior_average(x, data, t, path, lambda sq, s: torch.exp(-sq / (2 * s**2))),
             "You took the softmax of the densities: softmax exponentiates its input, so give it the "
             "log-densities -|x - mu_t(x1_j)|^2 / (2 sigma_t^2), not exp of them."),
            (_posterior_average(x, data, t, path, lambda sq, s: sq / (2 * s**2)),
             "The weights favour the data points farthest from x: the log-density is -|x - mu_t(x1_j)|^2 / "
             "(2 sigma_t^2), with a minus sign."),
            (_posterior_average(x, data, t, path, lambda sq, s: -sq),
             "The log-densities are not divided by 2 sigma_t^2: the weights must sharpen as sigma_t shrinks."),
            (_posterior_average(x, data, t, path, lambda sq, s: -sq / 2),
             "The log-densities are not divided by sigma_t^2 (only by 2): the weights must sharpen as sigma_t "
             "shrinks."),
            (_posterior_average(x, data, t, path, lambda sq, s: -sq / (2 * s)),
             "You divided by 2 sigma_t instead of 2 sigma_t^2: the Gaussian's log-density has the variance."),
            (_posterior_average(x, data, t, path, gauss, with_dmu=False),
             "Each conditional field misses its mu_t' term: u_t(x | x1) is the full time derivative of the "
             "flow, and the mean moves too."),
        ]
        mu_sq = ((x[:, None, :] - data[None]) ** 2).sum(-1)  # distance to x1 instead of mu_t(x1)
        w_x1 = torch.softmax(-mu_sq / (2 * path.mean_std(data, t)[1][:, 0][None] ** 2), dim=1)
        dmu, dsigma = path.mean_std_derivatives(data, t)
        mu, sigma = path.mean_std(data, t)
        cond = dsigma[None] / sigma[None] * (x[:, None, :] - mu[None]) + dmu[None]
        mistakes.append(((w_x1[:, :, None] * cond).sum(1),
                         "The weights measure the distance from x to the data point x1_j; at time t the "
                         "conditional path is centred at mu_t(x1_j), so use |x - mu_t(x1_j)|^2."))
        sq = ((x[:, None, :] - mu[None]) ** 2).sum(-1)
        w_wrong_dim = torch.softmax(-sq / (2 * sigma[:, 0][None] ** 2), dim=0)
        mistakes.append(((w_wrong_dim[:, :, None] * cond).sum(1),
                         "The softmax runs over the query points x instead of the data points: normalise the "
                         "weights of each x over j = 1..m (dim=1 of an (n, m) array)."))
        expect_close(got, expected, f"u_t(x) for {path!r} at t = {t}", atol=1e-6, rtol=1e-6, mistakes=mistakes)
    # far from the data and at a small sigma_t every Gaussian density underflows: only log space survives
    far = torch.tensor([[30.0, 30.0], [-25.0, 40.0], [0.3, -0.2], [60.0, -45.0]], dtype=torch.float64)
    for path, t, where in [(paths.OTPath(0.05), 0.5, "at points far from the data, such as (30, 30)"),
                           (paths.OTPath(0.0), 0.999, "at t = 0.999, where sigma_t = 0.001 is small")]:
        got = call(answer, far.clone(), data.clone(), t, path, name="marginal_velocity")
        expect_log_space(got, path.marginal_velocity(far, data, t), f"the marginal field ({path!r}, t = {t})", where)
    # the next cell differentiates p_t u_t in x by autograd: the gradient must be the reference's
    path = paths.OTPath(0.05)
    xg = x[:8].clone().requires_grad_(True)
    out = call(answer, xg, data.clone(), 0.5, path, name="marginal_velocity")
    expect_gradient(out, path.marginal_velocity(xg, data, 0.5), [xg], ["x"], "the field",
                    why="The next cell differentiates p_t u_t in x by autograd (the continuity equation), and "
                        "would report a large residual. Compute the weights with gradients on.")
    return ("It is the posterior average of the conditional fields, for the OT, VP and a cosine path: "
            "flow matching's target, on a finite data set.")


# ---------------------------------------------------------------- 5.4 score to velocity

def velocity_from_score(x: torch.Tensor, score: torch.Tensor, t: float, path: paths.GaussianPath) -> torch.Tensor:
    """Reference of exercise 5.4 (utils.fields)."""
    from ..fields import velocity_from_score as convert

    return convert(x, score, t, path)


def _vp_beta(s: float) -> float:
    """beta(s) of the VP defaults (beta_min = 0.1, beta_max = 20) at diffusion time s."""
    return 0.1 + s * (20.0 - 0.1)


@exercise("5.4", title="From a score to a velocity", notebook=NB, answer="velocity_from_score",
          reference=velocity_from_score, minutes=15,
          practises="Tweedie's formula turns a score into the flow matching field; diffusion and flow matching "
                    "learn one object")
def check_5_4(answer):
    g = torch.Generator().manual_seed(56)
    data = moons(12, seed=56).double()
    x = torch.randn(40, 2, generator=g, dtype=torch.float64) * 1.5
    for path, t in [(paths.VPPath(), 0.6), (COSINE, 0.4), (paths.OTPath(0.05), 0.7), (paths.VPPath(), 0.9)]:
        xg = x.clone().requires_grad_(True)
        score = torch.autograd.grad(path.marginal_log_prob(xg, data, t).sum(), xg)[0]  # exact, by autograd
        got = call(answer, x.clone(), score.clone(), t, path, name="velocity_from_score")
        got = expect_tensor(got, (40, 2), f"the velocity ({path!r}, t = {t})")
        expected = path.marginal_velocity(x, data, t)  # the posterior average: no score in it
        a, s, da, ds = path.schedule(t)
        a1, s1, da1, ds1 = path.schedule(1 - t)
        expect_close(got, expected, f"u_t(x) for {path!r} at t = {t}", atol=1e-6, rtol=1e-6, mistakes=[
            (da1 / a1 * x + (s1**2 * da1 / a1 - ds1 * s1) * score, SWAPPED),
            (da / a * x - (s**2 * da / a - ds * s) * score,
             "The score term has the wrong sign: Tweedie's formula reads a_t E[x1 | x] = x + sigma_t^2 grad log p_t(x)."),
            (da / a * x + (s**2 * da / a + ds * s) * score,
             "The sign of the sigma_t' sigma_t term is flipped: the coefficient of the score is "
             "sigma_t^2 a_t'/a_t - sigma_t' sigma_t."),
            (da / a * x + (da / a - ds * s) * score,
             "The a_t'/a_t part of the score's coefficient lacks its sigma_t^2 (from x + sigma_t^2 score)."),
            (da / a * x + (s**2 * da / a - ds / s) * score,
             "You used sigma_t'/sigma_t where sigma_t' sigma_t belongs in the score's coefficient."),
            ((s**2 * da / a - ds * s) * score,
             "The term a_t'/a_t x is missing: the field is not a multiple of the score alone."),
            (_vp_beta(1 - t) / 2 * (x + score),
             "That is the VP path's formula, beta(1 - t)/2 (x + score) (notebook 04's probability flow ODE), "
             "used for every path: take a_t, sigma_t and their derivatives from the path given, path.schedule(t)."),
            (da / a * x + (s * da / a - ds * s) * score,
             "You used sigma_t where sigma_t^2 belongs: Tweedie's formula reads a_t E[x1 | x] = x + sigma_t^2 "
             "grad log p_t(x), so the score's coefficient is sigma_t^2 a_t'/a_t - sigma_t' sigma_t."),
            (da * x + (s**2 * da - ds * s) * score,
             "You did not divide by a_t: E[x1 | x] = (x + sigma_t^2 score) / a_t, so the field has a_t'/a_t x "
             "and sigma_t^2 a_t'/a_t in the score's coefficient."),
            (da / a * x + 0.5 * (s**2 * da / a - ds * s) * score,
             "The score term carries an extra factor 1/2: that 1/2 belongs to the probability flow ODE's g^2 in "
             "notebook 04; here the coefficient is sigma_t^2 a_t'/a_t - sigma_t' sigma_t, without it."),
            (0.5 * (da / a * x + (s**2 * da / a - ds * s) * score),
             "Your field is half the right one: there is no factor 1/2 in u = a_t'/a_t x + (sigma_t^2 a_t'/a_t - "
             "sigma_t' sigma_t) score."),
            (da / a * x + (s**2 * da / a - ds * s) * (-score * s),
             "You treated the score as a noise prediction: here `score` is grad log p_t(x) itself "
             "(the noise prediction would be -sigma_t times it)."),
        ])
    return ("u_t(x) = a'/a x + (sigma^2 a'/a - sigma' sigma) grad log p_t(x) matches the posterior average of "
            "the conditional fields, for the VP, OT and a cosine path.")


# ---------------------------------------------------------------- 5.7 design a path

def _schedule_columns(answer, t, sigma_min, n):
    """a, sigma, da, dsigma as (n, 1) float64 columns. With sigma_min = 0, sigma' may be infinite at t = 1
    (sigma = sqrt(1 - t^2) has a vertical tangent there): the statement asks sigma > 0 only for t < 1, and
    training and sampling never evaluate t = 1 (they stop at utils.cfm.T_MAX), so that edge is accepted."""
    out = call(answer, t.clone(), sigma_min, name="path_schedule")
    if not isinstance(out, (tuple, list)) or len(out) != 4:
        raise CheckFailure("`path_schedule` should return four tensors (a, sigma, da, dsigma).")
    cols = []
    for name, v in zip(("a", "sigma", "da", "dsigma"), out):
        if isinstance(v, (int, float)):
            v = torch.full((n, 1), float(v), dtype=t.dtype)
        at_one = t[:, 0] == 1
        edge = name == "dsigma" and sigma_min == 0 and bool(at_one.any())
        v = expect_tensor(v, None, f"`{name}`", finite=not edge)
        if edge:  # an infinite sigma'(1) is fine; everything else must be finite
            rest = v.reshape(-1)[~at_one] if v.numel() == n else v.reshape(-1)
            expect_tensor(rest, None, f"`{name}` (at t < 1)")
            if torch.isnan(v).any():
                expect_tensor(v, None, f"`{name}`")
        if tuple(v.shape) == (n,):
            v = v[:, None]
        if tuple(v.shape) != (n, 1):
            raise CheckFailure(f"Wrong shape: `{name}` should have shape ({n}, 1), one value per time of the "
                               f"column t; got {tuple(v.shape)}.")
        cols.append(v.double())
    return cols


def _derivative(name, dname, got, fd, t):
    if torch.allclose(got, fd, atol=1e-5, rtol=1e-4):
        return
    if fd.abs().max() > 1e-3 and torch.allclose(got, -fd, atol=1e-5, rtol=1e-4):
        raise CheckFailure(f"`{dname}` has the wrong sign: it is minus the time derivative of `{name}`.")
    k = float((got * fd).sum() / (fd * fd).sum()) if fd.abs().max() > 1e-3 else 0.0
    if k and abs(k - 1) > 1e-3 and torch.allclose(got, k * fd, atol=1e-5, rtol=1e-4):
        raise CheckFailure(f"`{dname}` is {k:.6g} times the time derivative of `{name}`: a chain-rule factor is "
                           "missing or extra (d/dt sin(c t) = c cos(c t)).")
    i = int((got - fd).abs().argmax())
    raise CheckFailure(f"`{dname}` is not the time derivative of `{name}`: at t = {float(t[i]):.4f} a central "
                       f"finite difference gives {float(fd[i]):.6g}, you return {float(got[i]):.6g}.")


@exercise("5.7", title="Design a path", notebook=NB, answer="path_schedule", reference=cosine_schedule,
          points=2, minutes=20,
          practises="the boundary conditions of a path from noise to data, and its time derivatives")
def check_5_7(answer):
    t = torch.linspace(0, 1, 41, dtype=torch.float64)[:, None]
    inner = torch.linspace(0.02, 0.98, 25, dtype=torch.float64)[:, None]
    h = 1e-6
    straight = True
    for sigma_min in (0.05, 0.0):
        a, s, da, ds = _schedule_columns(answer, t, sigma_min, 41)
        a0, s0, a1, s1 = float(a[0]), float(s[0]), float(a[-1]), float(s[-1])
        at = f" (sigma_min = {sigma_min})"
        tol = 1e-6
        if abs(a0 - 1) < tol and abs(a1) < tol:
            raise CheckFailure(SWAPPED)
        if abs(a0) > tol:
            raise CheckFailure(f"mu_0 = a_0 x1 must be 0: at t=0 every conditional path is the noise N(0, I), "
                               f"whatever x1. Your a_0 = {a0:.6g}{at}.")
        if abs(s0 - 1) > tol:
            raise CheckFailure(f"sigma_0 must be 1 (the noise N(0, I) at t=0); your sigma_0 = {s0:.6g}{at}.")
        if abs(a1 - 1) > tol:
            raise CheckFailure(f"mu_1 = x1 needs a_1 = 1; your a_1 = {a1:.6g}{at}.")
        if abs(s1 - sigma_min) > tol:
            if sigma_min > 0 and abs(s1 - sigma_min**2) < tol:
                raise CheckFailure(f"sigma_1 = {s1:.6g} = sigma_min^2: that is a variance; sigma_t is the standard "
                                   "deviation, sigma_1 = sigma_min.")
            if sigma_min > 0 and abs(s1) < tol:
                raise CheckFailure(f"sigma_1 = 0 ignores sigma_min: at t=1 the path keeps a little noise, "
                                   f"sigma_1 = sigma_min = {sigma_min}.")
            raise CheckFailure(f"sigma_1 must be sigma_min = {sigma_min}; your sigma_1 = {s1:.6g}.")
        if (s[:-1] <= 0).any():
            k = int((s[:-1] <= 0).nonzero()[0, 0])
            raise CheckFailure(f"sigma_t must stay positive for t < 1 (it is a standard deviation, and the field "
                               f"divides by it): at t = {float(t[k]):.3f} yours is {float(s[k]):.4g}{at}.")
        ai, si, dai, dsi = _schedule_columns(answer, inner, sigma_min, 25)
        ap, sp, _, _ = _schedule_columns(answer, inner + h, sigma_min, 25)
        am, sm, _, _ = _schedule_columns(answer, inner - h, sigma_min, 25)
        _derivative("a", "da", dai[:, 0], ((ap - am) / (2 * h))[:, 0], inner[:, 0])
        _derivative("sigma", "dsigma", dsi[:, 0], ((sp - sm) / (2 * h))[:, 0], inner[:, 0])
        straight &= bool(torch.allclose(a[:, 0], t[:, 0], atol=1e-9)
                         and torch.allclose(s[:, 0], 1 - (1 - sigma_min) * t[:, 0], atol=1e-9))
    return ("Your path runs from N(0, I) at t=0 to N(x1, sigma_min^2 I) at t=1, sigma_t stays positive, and "
            "both derivatives match finite differences."
            + (" (It is the OT path itself: try a curved one and see how it fares below.)" if straight else ""))
