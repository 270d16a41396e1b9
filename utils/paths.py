"""Gaussian probability paths for flow matching (taught in notebook 05, used in 06 and 07).

A conditional Gaussian path p_t(x | x1) = N(mu_t(x1), sigma_t^2 I) runs from
the noise N(0, I) at t=0 to (nearly) the data point x1 at t=1. Its
conditional flow is psi_t(x0) = mu_t(x1) + sigma_t x0 and its conditional
vector field is

    u_t(x | x1) = sigma_t' / sigma_t (x - mu_t(x1)) + mu_t'(x1).

    path = OTPath(sigma_min=0.0)               # mu_t = t x1, sigma_t = 1 - (1 - sigma_min) t
    path = VPPath(beta_min=0.1, beta_max=20.0) # mu_t = alpha_{1-t} x1, sigma_t = sqrt(1 - alpha_{1-t}^2)
    mu, sigma = path.mean_std(x1, t)           # (n, d) and (n, 1)
    xt = path.sample(x0, x1, t)                # mu_t(x1) + sigma_t x0
    ut = path.velocity(xt, x1, t)              # u_t(xt | x1)
    u = path.marginal_velocity(x, data, t)     # exact marginal field for the point cloud `data`
    a, sigma, da, dsigma = path.schedule(t)    # mu_t = a_t x1, sigma_t and their time derivatives
    path = SchedulePath(fn, name="cosine")     # any path from fn(t) -> (a, sigma, da, dsigma) (exercise 5.7)

Shapes: x0, x1, xt, x of shape (n, d); t a float or of shape (n,) (or (n, 1)),
in [0, 1]. ``data`` is a point cloud (m, d), the data distribution taken as
uniform on its points; then p_t is a mixture of m Gaussians and the marginal
field is a softmax-weighted average of the m conditional fields.
"""
from __future__ import annotations

import math

import torch

from .errors import InputError, check_points, check_times

__all__ = ["GaussianPath", "OTPath", "VPPath", "SchedulePath", "gaussian_conditional_velocity"]


def gaussian_conditional_velocity(xt: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor,
                                  dmu: torch.Tensor, dsigma: torch.Tensor) -> torch.Tensor:
    """u_t(xt | x1) = sigma'/sigma (xt - mu) + mu' for any Gaussian path (exercise 5.2).

    ``mu``, ``dmu`` broadcast against ``xt`` (n, d); ``sigma``, ``dsigma`` are (n, 1) or scalars.
    """
    return dsigma / sigma * (xt - mu) + dmu


def _times(t, n: int, like: torch.Tensor) -> torch.Tensor:
    """Times as a column (n, 1) in the dtype and device of ``like``."""
    if isinstance(t, torch.Tensor) and t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    checked = check_times(t, n)
    if isinstance(t, (int, float)):  # keep full precision in float64 work
        return torch.full((n, 1), float(t), dtype=like.dtype, device=like.device)
    return checked.to(dtype=like.dtype, device=like.device)[:, None]


class GaussianPath:
    """A conditional Gaussian path, given by mu_t(x1), sigma_t and their time derivatives.

    Subclasses define ``_schedule(t) -> (a, s, da, ds)`` for a column of times t (n, 1),
    with mu_t(x1) = a(t) x1 and sigma_t = s(t): every path of the course scales the data point.
    """

    name = "gaussian"

    def _schedule(self, t: torch.Tensor):  # pragma: no cover - subclasses define it
        raise NotImplementedError

    # ------------------------------------------------------------- the conditional path
    def schedule(self, t) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a_t, sigma_t, a_t', sigma_t') with mu_t(x1) = a_t x1: what the score-to-velocity conversion needs.

        ``t`` a float in [0, 1] gives 0-d float64 tensors (they broadcast against any batch without
        changing its dtype); a tensor of shape (n,) or (n, 1) gives columns of shape (n, 1) in its dtype.
        """
        if isinstance(t, torch.Tensor) and t.ndim > 0:
            n = t.shape[0]
            cols = self._schedule(_times(t, n, t if t.is_floating_point() else t.double()))
            return tuple(c.expand(n, 1) if c.shape != (n, 1) else c for c in cols)
        if isinstance(t, torch.Tensor):
            t = float(t)
        check_times(t, 1)
        cols = self._schedule(torch.full((1, 1), float(t), dtype=torch.float64))
        return tuple(c.reshape(()) for c in cols)

    def mean_std(self, x1: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """mu_t(x1) of shape (n, d) and sigma_t of shape (n, 1) (broadcastable against x1)."""
        check_points(x1, "x1")
        a, s, _, _ = self._schedule(_times(t, x1.shape[0], x1))
        return a * x1, s

    def mean_std_derivatives(self, x1: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """d mu_t(x1) / dt of shape (n, d) and d sigma_t / dt of shape (n, 1)."""
        check_points(x1, "x1")
        _, _, da, ds = self._schedule(_times(t, x1.shape[0], x1))
        return da * x1, ds

    def sample(self, x0: torch.Tensor, x1: torch.Tensor, t) -> torch.Tensor:
        """xt = psi_t(x0 | x1) = mu_t(x1) + sigma_t x0: a sample of p_t(. | x1) when x0 ~ N(0, I)."""
        self._same(x0, x1, "x0", "x1")
        mu, sigma = self.mean_std(x1, t)
        return mu + sigma * x0

    def velocity(self, xt: torch.Tensor, x1: torch.Tensor, t) -> torch.Tensor:
        """The conditional field u_t(xt | x1) = sigma_t'/sigma_t (xt - mu_t(x1)) + mu_t'(x1)."""
        self._same(xt, x1, "xt", "x1")
        a, s, da, ds = self._schedule(_times(t, xt.shape[0], xt))
        if (s <= 0).any():
            raise InputError(f"sigma_t is 0 at t = 1 for this path ({self!r}): the conditional field is "
                             "undefined there. Use t < 1 (or sigma_min > 0).")
        return gaussian_conditional_velocity(xt, a * x1, s, da * x1, ds)

    # ------------------------------------------------------------- the marginal path of a point cloud
    def _log_weights(self, x: torch.Tensor, data: torch.Tensor, t):
        check_points(x, "x")
        check_points(data, "data", dim=x.shape[1])
        a, s, da, ds = self._schedule(_times(t, x.shape[0], x))  # (n, 1) each
        if (s <= 0).any():
            raise InputError(f"sigma_t is 0 at t = 1 for this path ({self!r}): the marginal field is "
                             "undefined there. Use t < 1 (or sigma_min > 0).")
        data = data.to(dtype=x.dtype, device=x.device)
        mu = a[:, :, None] * data.T[None]  # (n, d, m)
        sq = ((x[:, :, None] - mu) ** 2).sum(1)  # (n, m)
        return -sq / (2 * s**2), mu, a, s, da, ds

    def marginal_velocity(self, x: torch.Tensor, data: torch.Tensor, t) -> torch.Tensor:
        """The exact marginal field u_t(x) = sum_j w_j(x) u_t(x | x1_j) for data uniform on ``data`` (m, d).

        w_j(x) = p_t(x | x1_j) / sum_k p_t(x | x1_k), a softmax over the data points (the posterior of
        x1 given xt = x). Returns (n, d).
        """
        logw, mu, a, s, da, ds = self._log_weights(x, data, t)
        w = torch.softmax(logw, dim=1)  # (n, m)
        mean_mu = torch.einsum("nm,ndm->nd", w, mu)  # E[mu_t(x1) | x]
        mean_x1 = w @ data.to(dtype=x.dtype, device=x.device)  # E[x1 | x]
        # u is affine in x1, so E[u_t(x | x1) | x] = ds/s (x - E[mu_t]) + da E[x1]
        return ds / s * (x - mean_mu) + da * mean_x1

    def marginal_log_prob(self, x: torch.Tensor, data: torch.Tensor, t) -> torch.Tensor:
        """log p_t(x) for data uniform on ``data``: a mixture of m Gaussians. Returns (n,)."""
        logw, _, _, s, _, _ = self._log_weights(x, data, t)
        d, m = x.shape[1], data.shape[0]
        return (torch.logsumexp(logw, dim=1) - math.log(m)
                - d * torch.log(s[:, 0]) - 0.5 * d * math.log(2 * math.pi))

    @staticmethod
    def _same(a: torch.Tensor, b: torch.Tensor, na: str, nb: str) -> None:
        check_points(a, na)
        check_points(b, nb)
        if a.shape != b.shape:
            raise InputError(f"`{na}` and `{nb}` must have the same shape (n, d); got {tuple(a.shape)} "
                             f"and {tuple(b.shape)}.")


class OTPath(GaussianPath):
    """The optimal-transport (straight) path: mu_t = t x1, sigma_t = 1 - (1 - sigma_min) t.

    Its conditional flows psi_t(x0) = t x1 + (1 - (1 - sigma_min) t) x0 are straight lines
    travelled at constant speed x1 - (1 - sigma_min) x0 (Lipman et al. 2023).
    """

    name = "OT"

    def __init__(self, sigma_min: float = 0.0):
        if not isinstance(sigma_min, (int, float)) or not 0.0 <= sigma_min < 1.0:
            raise InputError(f"`sigma_min` must be a number in [0, 1), got {sigma_min!r}.")
        self.sigma_min = float(sigma_min)

    def _schedule(self, t):
        c = 1.0 - self.sigma_min
        return t, 1.0 - c * t, torch.ones_like(t), torch.full_like(t, -c)

    def __repr__(self) -> str:
        return f"OTPath(sigma_min={self.sigma_min:g})"


class VPPath(GaussianPath):
    """The variance-preserving diffusion path in flow time (t=0 noise, t=1 data).

    Diffusion time s = 1 - t runs the other way. With beta(s) = beta_min + s (beta_max - beta_min),
    B(s) = int_0^s beta = beta_min s + (beta_max - beta_min) s^2 / 2 and alpha_s = exp(-B(s) / 2):
    mu_t = alpha_{1-t} x1 and sigma_t = sqrt(1 - alpha_{1-t}^2). At t=0, mu_0 is not exactly 0
    (alpha_1 = 0.0066 for the defaults) and at t=1, sigma_1 = 0.
    """

    name = "VP"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        if not (isinstance(beta_min, (int, float)) and isinstance(beta_max, (int, float))
                and 0 <= beta_min <= beta_max and beta_max > 0):
            raise InputError(f"need 0 <= beta_min <= beta_max, beta_max > 0; got {beta_min!r}, {beta_max!r}.")
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)

    def alpha(self, s: torch.Tensor) -> torch.Tensor:
        """alpha_s = exp(-B(s) / 2) at diffusion time s."""
        big_t = self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s**2
        return torch.exp(-0.5 * big_t)

    def beta(self, s: torch.Tensor) -> torch.Tensor:
        return self.beta_min + s * (self.beta_max - self.beta_min)

    def _schedule(self, t):
        s = 1.0 - t
        a = self.alpha(s)
        da = 0.5 * self.beta(s) * a  # d/dt alpha_{1-t} = -alpha'(s) = beta(s) / 2 alpha_s
        sig = torch.sqrt(torch.clamp(1.0 - a**2, min=0.0))
        dsig = -a * da / torch.where(sig > 0, sig, torch.ones_like(sig))
        return a, sig, da, dsig

    def __repr__(self) -> str:
        return f"VPPath(beta_min={self.beta_min:g}, beta_max={self.beta_max:g})"


class SchedulePath(GaussianPath):
    """A Gaussian path from your own schedule: ``fn(t) -> (a, sigma, da, dsigma)`` with mu_t(x1) = a_t x1.

    ``fn`` gets a column of times t of shape (n, 1) and returns four tensors broadcastable to (n, 1):
    a_t, sigma_t and their time derivatives. A path from noise to data needs a_0 = 0, sigma_0 = 1,
    a_1 = 1, sigma_1 = sigma_min (exercise 5.7 checks these and the derivatives).
    """

    def __init__(self, fn, name: str = "custom"):
        if not callable(fn):
            raise InputError(f"`fn` must be a function fn(t) -> (a, sigma, da, dsigma), got {type(fn).__name__}.")
        self.fn, self.name = fn, str(name)

    def _schedule(self, t):
        out = self.fn(t)
        if not isinstance(out, (tuple, list)) or len(out) != 4:
            raise InputError("the schedule function must return four tensors (a, sigma, da, dsigma).")
        n, cols = t.shape[0], []
        for name, v in zip(("a", "sigma", "da", "dsigma"), out):
            v = torch.as_tensor(v, dtype=t.dtype, device=t.device)
            if v.numel() not in (1, n):
                raise InputError(f"the schedule's `{name}` should have one value per time, shape ({n}, 1); "
                                 f"got {tuple(v.shape)}.")
            cols.append(v.reshape(-1, 1).expand(n, 1))
        return tuple(cols)

    def __repr__(self) -> str:
        return f"SchedulePath({self.name})"
