"""Checks of notebook 05 (flow matching)."""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import cfm, paths
from ..datasets import moons
from .core import CheckFailure, call, exercise, expect_close, expect_tensor, fmt

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
          practises="u_t(x | x1) = sigma'/sigma (x - mu) + mu' from the conditional flow psi_t(x0) = mu_t + sigma_t x0")
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
        ])
    return "It equals the time derivative of the conditional flow psi_t(x0) = mu_t + sigma_t x0."


def _fixed_field(x, t):
    """A fixed nonlinear v(x, t) for checking losses."""
    t = t.reshape(-1, 1).to(x.dtype)
    W = torch.tensor([[0.8, -0.5], [0.3, 1.1]], dtype=x.dtype)
    return torch.tanh(x @ W) * (1 + 2 * t) + torch.sin(3 * t) - 0.4 * x


@exercise("5.3", title="The CFM loss of a batch", notebook=NB, answer="cfm_loss", reference=cfm.cfm_loss,
          minutes=12, practises="regressing v_theta(xt, t) on the conditional field; what the network may see")
def check_5_3(answer):
    g = torch.Generator().manual_seed(53)
    n = 64
    x0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
    x1 = moons(n, seed=53).double()
    t = torch.rand(n, generator=g, dtype=torch.float64) * 0.95
    tc = t[:, None]
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
        if torch.allclose(got.double(), expected / 2, rtol=1e-5):
            got = got * 2  # the mean over coordinates as well is fine: a constant factor
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
        expect_close(got, expected, f"the CFM loss for {path!r}", rtol=1e-5, atol=1e-8, mistakes=wrong)
    # gradients must flow to the network's parameters
    net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 2)).double()
    model = lambda x, t: net(torch.cat([x, t.reshape(-1, 1).to(x.dtype)], 1))  # noqa: E731
    path = paths.OTPath(0.1)
    loss = call(answer, model, path, x0, x1, t, name="cfm_loss")
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        raise CheckFailure("The loss does not depend on the network's parameters any more (was it detached, "
                           "or computed under torch.no_grad()?): training needs its gradient.")
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


def _standard(z: torch.Tensor) -> bool:
    return bool(z.mean(0).abs().max() < 0.15 and (z.std(0) - 1).abs().max() < 0.12)


@exercise("5.4", title="A CFM training step", notebook=NB, answer="training_step", reference=cfm.training_step,
          minutes=15, practises="sampling x0 and t, the CFM loss, and one optimiser step")
def check_5_4(answer):
    path = paths.OTPath(sigma_min=0.05)
    x1 = moons(512, seed=54)
    spy, lr = _Spy(), 0.05
    opt = torch.optim.SGD(spy.parameters(), lr=lr)
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
            scale = 0.5  # the mean over coordinates too: a constant factor, fine
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
    return "It feeds (xt, t) to the network, regresses on the conditional field and takes one optimiser step."

