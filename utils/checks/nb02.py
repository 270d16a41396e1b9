"""Checks of notebook 02 (normalizing flows).

Every check tests properties any correct answer has, against autograd and
closed forms: inverse(forward(z)) = z, the log-determinant equals log|det| of
autograd's full Jacobian, and the NLL of an affine flow equals the exact
Gaussian's. Known mistakes are named when the wrong value matches them.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import changevars as cv
from .. import flows
from .core import CheckFailure, exercise
from .expect import call, expect_close, expect_gradient, expect_tensor

NB = "02_normalizing_flows"


def _randomise(module: nn.Module, seed: int, scale: float = 0.4) -> None:
    """Perturb every parameter, so that no layer is the identity (zero-initialised nets included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _pair(out, what: str) -> tuple:
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise CheckFailure(f"{what} should return a pair (points, log_det), got "
                           f"{type(out).__name__}" + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
                           + ".")
    return out


def _log_det_autograd(f, z: torch.Tensor) -> torch.Tensor:
    return torch.linalg.slogdet(cv.jacobian(lambda v: f(v)[0], z)).logabsdet


TRAINS = ("Notebook 02 trains the flow by backpropagating the NLL through these log-dets into the networks "
          "that compute s and t (its training loop calls loss.backward()).")


def _expect_graph(points: torch.Tensor, what: str) -> None:
    if not points.requires_grad:
        raise CheckFailure(f"The points of {what} carry no gradient: they were computed under torch.no_grad(), "
                           ".detach() or .data. " + TRAINS)


def _expect_log_det_gradient(f, module: nn.Module, y: torch.Tensor, what: str) -> None:
    """The log-det that ``f`` (forward or inverse) returns must carry its gradient to the parameters: the
    reference is log|det| of autograd's Jacobian of ``f``'s points, built with create_graph so that it is a
    function of the parameters too (its values were checked against the same Jacobian before)."""
    v = y.detach().requires_grad_(True)
    with torch.enable_grad():
        points, log_det = _pair(call(f, v), what)
        _expect_graph(points, what)
        rows = [torch.autograd.grad(points[:, i].sum(), v, create_graph=True)[0] for i in range(v.shape[1])]
        expected = torch.linalg.slogdet(torch.stack(rows, dim=1)).logabsdet
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        expect_gradient(log_det, expected, [p for _, p in named], [n for n, _ in named],
                        name=f"the log-det of {what}", why=TRAINS)


# ------------------------------------------------------------------ 2.1

@exercise("2.1", title="Affine coupling layer: forward, inverse and log-det", notebook=NB,
          answer="AffineCoupling", reference=flows.AffineCoupling, minutes=25,
          practises="deriving a coupling's inverse and its triangular Jacobian; log|det| as a sum")
def check_2_1(answer):
    g = torch.Generator().manual_seed(21)
    for mask in (torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0, 1.0, 0.0])):
        d, kept, moved = len(mask), mask.bool(), ~mask.bool()
        layer = call(answer, mask, name="AffineCoupling")
        if not isinstance(layer, nn.Module):
            raise CheckFailure("`AffineCoupling(mask)` should build an nn.Module (keep `super().__init__()`).")
        layer = layer.double()
        _randomise(layer, seed=d)
        z = 1.5 * torch.randn(48, d, generator=g, dtype=torch.float64)
        where = f"with mask {mask.int().tolist()}"
        lead = f"With mask {mask.int().tolist()}"
        x, log_det = _pair(call(layer, z, name="AffineCoupling.forward"), "`forward(z)`")
        x = expect_tensor(x, z.shape, f"x = forward(z) {where}")
        _expect_graph(x, f"`forward(z)` {where}")
        log_det = expect_tensor(log_det, (z.shape[0],), f"the log-det of forward {where}")
        if not torch.allclose(x[:, kept], z[:, kept]):
            raise CheckFailure(f"{lead}: the coordinates where mask is 1 must pass through unchanged "
                               "(they are what the scale and shift are computed from, so the inverse can "
                               "recompute them). Yours change.")
        if torch.allclose(x[:, moved], z[:, moved]):
            raise CheckFailure(f"{lead}: forward leaves the coordinates where mask is 0 unchanged too: "
                               "scale them by exp(s) and shift them by t.")
        if torch.allclose(log_det, torch.zeros_like(log_det)) and torch.allclose(
                _log_det_autograd(layer, z), torch.zeros_like(log_det), atol=1e-9):
            raise CheckFailure(f"{lead}: your layer only shifts (its log-det is 0 everywhere): that is NICE's "
                               "additive coupling. The affine coupling also scales: x = z * exp(s) + t.")
        if hasattr(layer, "scale_shift"):  # the statement's formula, x = m z + (1 - m)(z exp(s) + t)
            m = mask.double()
            with torch.no_grad():
                s, t = layer.scale_shift(z * m)
                s_all, t_all = layer.scale_shift(z)
            expect_close(x, m * z + (1 - m) * (z * torch.exp(s) + t),
                         f"x = forward(z) {where} (against x = m z + (1 - m)(z exp(s) + t))", atol=1e-9, rtol=1e-9,
                         inputs=z, input_name="z", mistakes=[
                (m * z + (1 - m) * (z * torch.exp(s_all) + t_all),
                 f"{lead}: you passed z to scale_shift: pass z * mask, so that s and t depend only on the kept "
                 "coordinates (otherwise the inverse cannot recompute them, and the Jacobian is not triangular)."),
                (m * z + (1 - m) * (z * torch.exp(-s) + t),
                 f"{lead}: forward scales by exp(-s): it is x = z * exp(s) + t where mask is 0."),
                (m * z + (1 - m) * (z + t) * torch.exp(s),
                 f"{lead}: you shifted before scaling, (z + t) * exp(s): forward is z * exp(s) + t."),
                (m * z + (1 - m) * (z * s + t),
                 f"{lead}: you scaled by s itself: the scale is exp(s), x = z * exp(s) + t, so that it is always "
                 "positive and the layer invertible."),
            ])
        expected = _log_det_autograd(layer, z)
        mistakes = []
        if hasattr(layer, "scale_shift"):
            with torch.no_grad():
                s, _ = layer.scale_shift(z * mask.double())
            mistakes = [
                (s.sum(-1), f"{lead}: you summed s over every coordinate. Only the coordinates where mask "
                            "is 0 are scaled: sum (1 - mask) * s."),
                (((1 - mask.double()) * torch.exp(s)).sum(-1),
                 f"{lead}: the log-det is the sum of s (the log of the scale), not of exp(s)."),
            ]
        mistakes.append((torch.zeros_like(expected),
                         f"{lead}: the log-det of forward is 0, which is right only for the additive (NICE) "
                         "coupling. The affine one scales by exp(s), which adds s to log|det|."))
        expect_close(log_det, expected, f"the log-det of forward {where} (against autograd's full Jacobian)",
                     atol=1e-6, inputs=z, input_name="z", mistakes=mistakes,
                     sign_hint="forward multiplies by exp(s), so its log-det is + sum of s.")
        back, log_det_inv = _pair(call(layer.inverse, x, name="AffineCoupling.inverse"), "`inverse(x)`")
        back = expect_tensor(back, z.shape, f"inverse(forward(z)) {where}")
        log_det_inv = expect_tensor(log_det_inv, (z.shape[0],), f"the log-det of inverse {where}")
        inv_mistakes = []
        if hasattr(layer, "scale_shift"):
            with torch.no_grad():
                s, t = layer.scale_shift(x * mask.double())
            m = mask.double()
            inv_mistakes = [
                (m * x + (1 - m) * (x - t) * torch.exp(s),
                 f"{lead}: inverse(forward(z)) is not z: you multiplied by exp(s). Undoing a scaling by "
                 "exp(s) divides by it: z = (x - t) * exp(-s)."),
                (m * x + (1 - m) * (x * torch.exp(-s) - t),
                 f"{lead}: inverse(forward(z)) is not z: undo the shift before the scale, "
                 "z = (x - t) * exp(-s), not x * exp(-s) - t."),
            ]
        expect_close(back, z, f"inverse(forward(z)) {where}", atol=1e-6, inputs=z, input_name="z",
                     mistakes=inv_mistakes)
        expect_close(log_det_inv, -log_det.detach(), f"the log-det of inverse {where}", atol=1e-6, mistakes=[
            (log_det.detach(), f"{lead}: the inverse's log-det has the sign of the forward's. "
                               "log|det J_{f^-1}(x)| = -log|det J_f(z)|: it is minus the sum of s.")],
                     sign_hint="log|det J_{f^-1}(x)| = -log|det J_f(z)|.")
        y = 1.5 * torch.randn(48, d, generator=g, dtype=torch.float64)
        expect_close(call(layer.inverse, y)[1], _log_det_autograd(layer.inverse, y),
                     f"the log-det of inverse {where} (against autograd's full Jacobian)", atol=1e-6)
        expect_close(call(layer, call(layer.inverse, y)[0])[0], y, f"forward(inverse(x)) {where}", atol=1e-6)
        _expect_log_det_gradient(layer.inverse, layer, y, f"`inverse(x)` {where}")
        _expect_log_det_gradient(layer, layer, z, f"`forward(z)` {where}")
    return "inverse(forward(z)) = z, and both log-dets equal autograd's log|det J|, gradients included."


# ------------------------------------------------------------------ 2.2

def _test_layers(seed: int = 22) -> list[nn.Module]:
    """Couplings and a swap that do not commute, so the order of the layers matters."""
    layers = [flows.AffineCoupling(torch.tensor([1.0, 0.0]), hidden=16), flows.Permutation([1, 0]),
              flows.AffineCoupling(torch.tensor([1.0, 0.0]), hidden=16),
              flows.AffineCoupling(torch.tensor([0.0, 1.0]), hidden=16)]
    for k, layer in enumerate(layers):
        layer.double()
        _randomise(layer, seed + k, scale=0.5)
    return layers


@exercise("2.2", title="A stack of layers as one flow", notebook=NB, answer="Flow",
          reference=flows.Flow, minutes=15,
          practises="composition: log-dets add; the inverse undoes the layers in reverse order")
def check_2_2(answer):
    layers = _test_layers()
    flow = call(answer, layers, name="Flow")
    if not isinstance(flow, nn.Module):
        raise CheckFailure("`Flow(layers)` should build an nn.Module (keep `super().__init__()`).")
    if len(list(flow.parameters())) != sum(len(list(l.parameters())) for l in layers):
        raise CheckFailure("The flow does not hold its layers' parameters, so an optimizer would not see "
                           "them: keep the layers in an nn.ModuleList.")
    z = torch.randn(40, 2, generator=torch.Generator().manual_seed(23), dtype=torch.float64)
    x, log_det = _pair(call(flow, z, name="Flow.forward"), "`forward(z)`")
    x = expect_tensor(x, z.shape, "x = forward(z)")
    _expect_graph(x, "`forward(z)`")
    log_det = expect_tensor(log_det, (40,), "the log-det of forward")
    want, lds = z, []
    for layer in layers:
        want, ld = layer(want)
        lds.append(ld.detach())
    reversed_order = z
    for layer in reversed(layers):
        reversed_order = layer(reversed_order)[0]
    expect_close(x, want.detach(), "forward(z)", atol=1e-6, inputs=z, input_name="z", mistakes=[
        (reversed_order.detach(), "forward applies the layers in reverse order: forward goes first to last.")])
    expected = _log_det_autograd(flow, z)
    expect_close(log_det, expected, "the log-det of forward (against autograd's full Jacobian)", atol=1e-6,
                 inputs=z, input_name="z", mistakes=[
        (lds[-1], "The log-det is the last layer's only: add up the log-dets of every layer."),
        (lds[0], "The log-det is the first layer's only: add up the log-dets of every layer."),
    ])
    back, log_det_inv = _pair(call(flow.inverse, x, name="Flow.inverse"), "`inverse(x)`")
    back = expect_tensor(back, z.shape, "inverse(forward(z))")
    same_order = x.detach()
    for layer in layers:
        same_order = layer.inverse(same_order)[0]
    forward_again = x.detach()
    for layer in reversed(layers):
        forward_again = layer(forward_again)[0]
    expect_close(back, z, "inverse(forward(z))", atol=1e-6, inputs=z, input_name="z", mistakes=[
        (same_order.detach(), "inverse(forward(z)) is not z: you undid the layers first to last. The last "
                              "layer applied by forward must be undone first: loop over reversed(layers)."),
        (forward_again.detach(), "inverse(forward(z)) is not z: inverse called each layer forward, layer(x). "
                                 "Undo each layer with layer.inverse(x).")])
    log_det_inv = expect_tensor(log_det_inv, (40,), "the log-det of inverse")
    expect_close(log_det_inv, -expected, "the log-det of inverse", atol=1e-6, mistakes=[
        (expected, "The inverse's log-det has the sign of the forward's: sum the log-dets that each "
                   "layer.inverse returns (each is minus the forward's).")])
    _expect_log_det_gradient(flow.inverse, flow, x.detach(), "`inverse(x)`")
    _expect_log_det_gradient(flow, flow, z, "`forward(z)`")
    return "forward and inverse compose the layers in the right orders, and log-dets add up, gradients included."


# ------------------------------------------------------------------ 2.3

class _AffineFlow(nn.Module):
    """x = A z + b: a flow whose density is N(b, A A^T) exactly."""

    def __init__(self, A: torch.Tensor, b: torch.Tensor):
        super().__init__()
        self.A, self.b = A, b

    def forward(self, z):
        return z @ self.A.T + self.b, torch.linalg.slogdet(self.A).logabsdet.expand(z.shape[0])

    def inverse(self, x):
        return (torch.linalg.solve(self.A, (x - self.b).T).T,
                -torch.linalg.slogdet(self.A).logabsdet.expand(x.shape[0]))


class _SinhFlow(nn.Module):
    """x = sinh(z) elementwise: a log-det that varies from point to point."""

    def forward(self, z):
        return torch.sinh(z), torch.log(torch.cosh(z)).sum(-1)

    def inverse(self, x):
        return torch.asinh(x), -0.5 * torch.log1p(x**2).sum(-1)


@exercise("2.3", title="The negative log-likelihood of a batch", notebook=NB, answer="flow_nll",
          reference=flows.flow_nll, minutes=10,
          practises="log p(x) = log N(f^-1(x)) + log|det J_{f^-1}(x)|; maximum likelihood as a loss")
def check_2_3(answer):
    g = torch.Generator().manual_seed(24)
    A = torch.tensor([[1.5, 0.0], [0.8, 0.5]], dtype=torch.float64)  # log|det A| = log 0.75 < 0
    b = torch.tensor([1.0, -2.0], dtype=torch.float64)
    x = torch.randn(500, 2, generator=g, dtype=torch.float64) @ A.T + b  # Gaussian data, N(b, A A^T)
    exact = -torch.distributions.MultivariateNormal(b, covariance_matrix=A @ A.T).log_prob(x).mean()
    flow = _AffineFlow(A, b)
    cases = [("an affine flow x = A z + b on Gaussian data (exact: N(b, A A^T))", flow, x, exact)]
    y = torch.sinh(torch.randn(300, 2, generator=g, dtype=torch.float64))
    sinh_exact = -cv.pushforward_log_prob(y, cv.standard_normal_log_prob, torch.asinh,
                                          lambda v: 1 / torch.sqrt(1 + v**2)).mean()
    cases.append(("the flow x = sinh(z)", _SinhFlow(), y, sinh_exact))
    for name, fl, pts, want in cases:
        got = call(answer, fl, pts, name="flow_nll")
        if isinstance(got, torch.Tensor) and got.shape == (pts.shape[0],):
            raise CheckFailure(f"For {name} you returned one NLL per point, shape {tuple(got.shape)}: return "
                               "their mean over the batch, a scalar (it is the training loss).")
        z, ld = fl.inverse(pts)
        zf, ldf = fl(pts)
        base = cv.standard_normal_log_prob(z)
        n = pts.shape[0]
        expect_close(got, want, f"the NLL for {name}", atol=1e-6, mistakes=[
            (-base.mean(), f"For {name} the log-det term is missing: log p(x) = log N(f^-1(x); 0, I) "
                           "+ log|det J_{f^-1}(x)|."),
            (-(base - ld).mean(), f"For {name} the log-det term has the wrong sign: it is "
                                  "+ log|det J_{f^-1}(x)|, the log-det that `flow.inverse` returns."),
            (-(cv.standard_normal_log_prob(zf) + ldf).mean(),
             f"For {name} you pushed x through `flow(x)`, the sampling direction: the density needs "
             "`flow.inverse(x)`."),
            (want * n, f"For {name} you summed over the batch: take the mean, so the loss does not grow "
                       "with the batch size."),
        ], sign_hint="The NLL is minus the log-likelihood, a positive number here.")
    # the training loop calls loss.backward() on it: the gradient must reach the flow's parameters
    A_p, b_p = A.clone().requires_grad_(True), b.clone().requires_grad_(True)
    flow = _AffineFlow(A_p, b_p)
    got = call(answer, flow, x.clone(), name="flow_nll")
    expect_gradient(got, flows.flow_nll(flow, x), [A_p, b_p], ["A", "b"], "the NLL",
                    why="The training loop calls loss.backward() on it to fit the flow's parameters: every term, "
                        "the log-det included, must stay in the graph.")
    return "On Gaussian data it equals the exact NLL of N(b, A A^T)."
