"""Checks of notebook 02 accept correct answers written differently and reject plausible mistakes."""
from __future__ import annotations

import functools

import torch
from torch import distributions as D
from torch import nn

from tests import checkcases
from utils import flows
from utils.changevars import standard_normal_log_prob


# ---- 2.1: a differently written correct layer: separate nets, index splitting, zero-initialised outputs
class CouplingSplit(nn.Module):
    def __init__(self, mask, hidden=32):
        super().__init__()
        self.register_buffer("keep", mask.bool())
        k, m = int(mask.sum()), int((1 - mask).sum())
        self.s = nn.Sequential(nn.Linear(k, hidden), nn.Tanh(), nn.Linear(hidden, m))
        self.t = nn.Sequential(nn.Linear(k, hidden), nn.Tanh(), nn.Linear(hidden, m))
        for net in (self.s, self.t):
            nn.init.zeros_(net[-1].weight)
            nn.init.zeros_(net[-1].bias)

    def forward(self, z):
        a, b = z[:, self.keep], z[:, ~self.keep]
        s = self.s(a)
        x = z.clone()
        x[:, ~self.keep] = b * torch.exp(s) + self.t(a)
        return x, s.sum(1)

    def inverse(self, x):
        a, b = x[:, self.keep], x[:, ~self.keep]
        s = self.s(a)
        z = x.clone()
        z[:, ~self.keep] = (b - self.t(a)) / torch.exp(s)
        return z, -s.sum(1)


class CouplingLogdetAll(flows.AffineCoupling):
    def forward(self, z):
        x, _ = super().forward(z)
        return x, self.scale_shift(z * self.mask)[0].sum(-1)


class CouplingInverseTimes(flows.AffineCoupling):
    def inverse(self, x):
        m = self.mask
        s, t = self.scale_shift(x * m)
        return m * x + (1 - m) * (x - t) * torch.exp(s), -((1 - m) * s).sum(-1)


class CouplingInverseOrder(flows.AffineCoupling):
    def inverse(self, x):
        m = self.mask
        s, t = self.scale_shift(x * m)
        return m * x + (1 - m) * (x * torch.exp(-s) - t), -((1 - m) * s).sum(-1)


class CouplingInverseSign(flows.AffineCoupling):
    def inverse(self, x):
        return super().inverse(x)[0], -super().inverse(x)[1]


class CouplingExpLogdet(flows.AffineCoupling):
    def forward(self, z):
        x, _ = super().forward(z)
        return x, ((1 - self.mask) * torch.exp(self.scale_shift(z * self.mask)[0])).sum(-1)


class CouplingAdditive(flows.AffineCoupling):
    def forward(self, z):
        t = self.scale_shift(z * self.mask)[1]
        return z + (1 - self.mask) * t, z.new_zeros(z.shape[0])

    def inverse(self, x):
        t = self.scale_shift(x * self.mask)[1]
        return x - (1 - self.mask) * t, x.new_zeros(x.shape[0])


class CouplingWrongHalf(flows.AffineCoupling):
    def forward(self, z):  # transforms the kept half, conditioned on itself: not invertible this way
        m = self.mask
        s, t = self.scale_shift(z * m)
        return (1 - m) * z + m * (z * torch.exp(s) + t), (m * s).sum(-1)


class CouplingUnmasked(flows.AffineCoupling):
    def forward(self, z):
        m = self.mask
        s, t = self.scale_shift(z)
        return m * z + (1 - m) * (z * torch.exp(s) + t), ((1 - m) * s).sum(-1)


class CouplingShiftFirst(flows.AffineCoupling):
    def forward(self, z):
        m = self.mask
        s, t = self.scale_shift(z * m)
        return m * z + (1 - m) * (z + t) * torch.exp(s), ((1 - m) * s).sum(-1)


class CouplingNoExp(flows.AffineCoupling):
    def forward(self, z):
        m = self.mask
        s, t = self.scale_shift(z * m)
        return m * z + (1 - m) * (z * s + t), ((1 - m) * s).sum(-1)


class CouplingWhere(flows.AffineCoupling):
    """Differently written: torch.where on the mask, the log-det from the log of the scale."""
    def forward(self, z):
        s, t = self.scale_shift(z * self.mask)
        keep = self.mask.bool()
        scale = torch.where(keep, torch.ones_like(s), torch.exp(s))
        return torch.where(keep, z, z * scale + t), torch.log(scale).sum(dim=1)

    def inverse(self, x):
        s, t = self.scale_shift(x * self.mask)
        keep = self.mask.bool()
        return torch.where(keep, x, (x - t) / torch.exp(s)), -torch.where(keep, torch.zeros_like(s), s).sum(1)


class CouplingLogdetDetached(flows.AffineCoupling):
    """Issue 20: the values are right, but the log-det is cut off from training."""
    def inverse(self, x):
        z, ld = super().inverse(x)
        return z, ld.detach()


class CouplingNoGrad(flows.AffineCoupling):
    def forward(self, z):
        with torch.no_grad():
            return super().forward(z)


# ---- 2.2
class FlowReduce(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    @staticmethod
    def _step(carry, fn):
        x, ld = carry
        y, d = fn(x)
        return y, ld + d

    def forward(self, z):
        return functools.reduce(self._step, list(self.layers), (z, 0.0))

    def inverse(self, x):
        return functools.reduce(self._step, [l.inverse for l in self.layers[::-1]], (x, 0.0))


class FlowSameOrder(flows.Flow):
    def inverse(self, x):
        total = 0
        for layer in self.layers:
            x, ld = layer.inverse(x)
            total = total + ld
        return x, total


class FlowLastLogdet(flows.Flow):
    def forward(self, z):
        for layer in self.layers:
            z, ld = layer(z)
        return z, ld


class FlowFirstLogdet(flows.Flow):
    def forward(self, z):
        total = None
        for layer in self.layers:
            z, ld = layer(z)
            total = ld if total is None else total
        return z, total


class FlowReversedForward(flows.Flow):
    def forward(self, z):
        total = 0
        for layer in reversed(self.layers):
            z, ld = layer(z)
            total = total + ld
        return z, total


class FlowInverseCallsForward(flows.Flow):
    def inverse(self, x):
        total = 0
        for layer in reversed(self.layers):
            x, ld = layer(x)
            total = total + ld
        return x, total


class FlowInverseLogdetSign(flows.Flow):
    def inverse(self, x):
        z, ld = super().inverse(x)
        return z, -ld


class FlowLoop(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, z):
        lds = []
        for i in range(len(self.layers)):
            z, ld = self.layers[i](z)
            lds.append(ld)
        return z, torch.stack(lds).sum(0)

    def inverse(self, x):
        lds = []
        for i in range(len(self.layers) - 1, -1, -1):
            x, ld = self.layers[i].inverse(x)
            lds.append(ld)
        return x, torch.stack(lds).sum(0)


class FlowPlainList(flows.Flow):
    def __init__(self, layers):
        nn.Module.__init__(self)
        self._layers = list(layers)

    @property
    def layers(self):
        return self._layers


class FlowLogdetItem(flows.Flow):
    """Issue 20: log-dets added as numbers (the values right, the gradient gone)."""
    def inverse(self, x):
        total = torch.zeros(x.shape[0], dtype=x.dtype)
        for layer in reversed(self.layers):
            x, ld = layer.inverse(x)
            total = total + torch.tensor(ld.tolist(), dtype=x.dtype)
        return x, total


# ---- 2.3
def nll_distributions(flow, x):
    z, log_det = flow.inverse(x)
    return -(D.Normal(0.0, 1.0).log_prob(z).sum(dim=1) + log_det).sum() / x.shape[0]


def nll_no_logdet(flow, x):
    return -standard_normal_log_prob(flow.inverse(x)[0]).mean()


def nll_logdet_sign(flow, x):
    z, ld = flow.inverse(x)
    return -(standard_normal_log_prob(z) - ld).mean()


def nll_forward(flow, x):
    z, ld = flow(x)
    return -(standard_normal_log_prob(z) + ld).mean()


def nll_sum(flow, x):
    z, ld = flow.inverse(x)
    return -(standard_normal_log_prob(z) + ld).sum()


def nll_per_point(flow, x):
    z, ld = flow.inverse(x)
    return -(standard_normal_log_prob(z) + ld)


def nll_logdet_detached(flow, x):  # issue 20: values right, the log-det cut off from training
    z, log_det = flow.inverse(x)
    return -(torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1) + log_det.detach()).mean()


def nll_no_grad(flow, x):
    with torch.no_grad():
        return flows.flow_nll(flow, x)


def nll_manual(flow, x):
    z, log_det = flow.inverse(x)
    d = x.shape[1]
    log_pz = -0.5 * (z**2).sum(-1) - 0.5 * d * torch.log(torch.tensor(2 * torch.pi, dtype=x.dtype))
    return torch.mean(-log_pz - log_det)


def log_likelihood(flow, x):
    z, ld = flow.inverse(x)
    return (standard_normal_log_prob(z) + ld).mean()


CORRECT = {
    "2.1": [flows.AffineCoupling, CouplingSplit, CouplingWhere],
    "2.2": [flows.Flow, FlowReduce, FlowLoop],
    "2.3": [flows.flow_nll, nll_distributions, nll_manual],
}
WRONG = {
    "2.1": [(CouplingLogdetAll, "every coordinate"), (CouplingInverseTimes, "exp(-s)"),
            (CouplingInverseOrder, "undo the shift"), (CouplingInverseSign, "sign"),
            (CouplingExpLogdet, "not of exp(s)"), (CouplingAdditive, "additive"),
            (CouplingWrongHalf, "unchanged"), (CouplingUnmasked, "pass z * mask"),
            (CouplingShiftFirst, "shifted before scaling"), (CouplingNoExp, "scaled by s itself"),
            (CouplingLogdetDetached, "log-det of `inverse(x)` with mask [1, 0] carries no gradient"), (CouplingNoGrad, "carry no gradient")],
    "2.2": [(FlowSameOrder, "reversed"), (FlowLastLogdet, "last layer's only"), (FlowPlainList, "ModuleList"),
            (FlowFirstLogdet, "first layer's only"), (FlowReversedForward, "reverse order"),
            (FlowInverseCallsForward, "layer.inverse(x)"), (FlowInverseLogdetSign, "sign of the forward's"),
            (FlowLogdetItem, "log-det of `inverse(x)` carries no gradient")],
    "2.3": [(nll_logdet_detached, "gradient of the NLL with respect to `A` is not"),
            (nll_no_grad, "carries no gradient"), (nll_no_logdet, "missing"), (nll_logdet_sign, "wrong sign"), (nll_forward, "inverse"),
            (nll_sum, "mean"), (nll_per_point, "scalar"), (log_likelihood, "minus the log-likelihood")],
}

test_accepts, test_rejects = checkcases.parametrize_cases(CORRECT, WRONG)
