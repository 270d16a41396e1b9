"""Diffusion SDEs, exact scores of Gaussian mixtures, and their two samplers (taught in notebook 04, reused in 06).

**Time convention, once for the whole course.** Diffusion models run their
time ``s`` from data to noise: ``s = 0`` is data, ``s = 1`` is (almost) pure
noise. Flows and flow matching, everywhere else in the course, run their time
``t`` from noise to data: ``t = 0`` is noise, ``t = 1`` is data. The two are
tied by

    t = 1 - s        (flow_time(s))        and        s = 1 - t   (diffusion_time(t)).

In this module every argument named ``s`` is diffusion time (the SDE's own
quantities: drift f(x, s), diffusion g(s), transition kernels, marginals,
scores), and every argument named ``t`` is flow time (what the samplers and
``utils.solvers`` see). Since dt = -ds, a drift in diffusion time becomes
its negative in flow time.

Forward SDEs dx = f(x, s) ds + g(s) dW, with Gaussian transition kernels
x_s | x_data ~ N(a(s) x_data, b(s)^2 I):

- :class:`VPSDE` (variance preserving, linear beta schedule):
  f = -beta(s) x / 2, g = sqrt(beta(s)), a = exp(-B(s)/2), b^2 = 1 - a^2,
  with B(s) = int_0^s beta.
- :class:`VESDE` (variance exploding): f = 0, g = sigma(s) sqrt(2 log(sigma_max/sigma_min)),
  sigma(s) = sigma_min (sigma_max/sigma_min)^s, a = 1, b^2 = sigma(s)^2 - sigma_min^2.

A :class:`GaussianMixture` target stays a Gaussian mixture under these
kernels, so its marginal density and its score are exact at every s
(:meth:`GaussianMixture.marginal_log_prob`, :meth:`GaussianMixture.marginal_score`).

Samplers (x0 is noise, as everywhere in the course; they return samples at flow time 1):

    score = target.score_fn(sde)                               # exact score(x, s)
    sde_out = sample_reverse_sde(sde, score, x0, num_steps=100, generator=g)   # Euler-Maruyama
    ode_out = sample_probability_flow(sde, score, x0, num_steps=10, method="rk4")
    u = probability_flow_field(sde, score)                     # u(x, t) for utils.solvers.solve_ode
    sde_drift, ode_field = flow_time_drifts(x, t, sde.drift, sde.diffusion, score)   # both, in flow time

Both return a :class:`~utils.solvers.ODESolution` (x, nfe, times in flow time, path).

Learning the score (denoising score matching):

    model, losses = train_score_model(sde, data, num_steps=1500)   # a ScoreModel(x, s)

Measuring (notebooks 04 and 06, ``tools/quality_04.py``): W2 to the target against NFE,
averaged over independent repeats, beside the finite-sample floor and its spread:

    rows = quality_against_nfe(sde, score, target, sde_steps=[10, 100], ode=[("rk4", 5), ("dopri5", 1e-3)])
    floor, spread = w2_floor_spread(target, n=500)                 # what an exact sample scores, and its spread
    ceiling = w2_noise_ceiling(sde, target, n=500)                 # what the untouched noise x0 scores
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .errors import InputError, batch_times, check_points
from .runtime import progress
from .solvers import ODESolution, solve_ode

__all__ = [
    "flow_time", "diffusion_time", "VPSDE", "VESDE", "GaussianMixture", "eight_gaussians_mixture",
    "mixture_log_prob", "mixture_score", "probability_flow_drift", "probability_flow_field",
    "reverse_sde_drift", "em_step", "sample_reverse_sde", "sample_probability_flow", "dsm_loss",
    "ScoreModel", "train_score_model", "w2_floor_spread", "w2_noise_ceiling", "quality_against_nfe", "fewest_nfe",
    "flow_time_drifts",
]

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------- the time convention

def flow_time(s):
    """Flow time t (0 noise, 1 data) of diffusion time s (0 data, 1 noise): t = 1 - s."""
    return 1 - s


def diffusion_time(t):
    """Diffusion time s (0 data, 1 noise) of flow time t (0 noise, 1 data): s = 1 - t."""
    return 1 - t


def _as_times(s, x: torch.Tensor) -> torch.Tensor:
    """s as a tensor of shape (n,) matching the batch x (n, d)."""
    return batch_times(s, x, "times")


def _tensor(s) -> torch.Tensor:
    return s if isinstance(s, torch.Tensor) else torch.tensor(float(s), dtype=torch.float64)


# ---------------------------------------------------------------- forward SDEs

class _SDE:
    """Common interface: drift f(x, s), diffusion g(s), kernel (a(s), b(s)), prior samples."""

    name = "SDE"
    prior_std = 1.0

    def drift(self, x: torch.Tensor, s) -> torch.Tensor:
        raise NotImplementedError

    def diffusion(self, s) -> torch.Tensor:
        raise NotImplementedError

    def kernel(self, s) -> tuple[torch.Tensor, torch.Tensor]:
        """(a(s), b(s)): x_s | x_data ~ N(a(s) x_data, b(s)^2 I)."""
        raise NotImplementedError

    def perturb(self, x_data: torch.Tensor, s, noise: torch.Tensor) -> torch.Tensor:
        """A sample of x_s given x_data: a(s) x_data + b(s) noise (noise ~ N(0, I) given)."""
        s = _as_times(s, x_data)
        a, b = self.kernel(s)
        return a[:, None] * x_data + b[:, None] * noise

    def prior_sample(self, n: int, generator: torch.Generator | None = None,
                     dtype: torch.dtype | None = None) -> torch.Tensor:
        """Samples of the prior N(0, prior_std^2 I) that the samplers start from (flow time 0)."""
        return self.prior_std * torch.randn(n, 2, generator=generator, dtype=dtype)


class VPSDE(_SDE):
    """Variance preserving SDE with the linear schedule beta(s) = beta_min + s (beta_max - beta_min).

    dx = -beta(s) x / 2 ds + sqrt(beta(s)) dW (Song et al. 2021; the continuous DDPM).
    """

    name = "VP"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        if not 0 < beta_min <= beta_max:
            raise InputError(f"need 0 < beta_min <= beta_max, got {beta_min}, {beta_max}.")
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)

    def beta(self, s):
        return self.beta_min + _tensor(s) * (self.beta_max - self.beta_min)

    def integrated_beta(self, s):
        """B(s) = int_0^s beta."""
        s = _tensor(s)
        return self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s**2

    def drift(self, x, s):
        s = _as_times(s, x)
        return -0.5 * self.beta(s)[:, None] * x

    def diffusion(self, s):
        return torch.sqrt(self.beta(s))

    def kernel(self, s):
        a = torch.exp(-0.5 * self.integrated_beta(s))
        return a, torch.sqrt(-torch.expm1(-self.integrated_beta(s)))  # b^2 = 1 - a^2, stably

    def __repr__(self):
        return f"VPSDE(beta_min={self.beta_min}, beta_max={self.beta_max})"


class VESDE(_SDE):
    """Variance exploding SDE: dx = sigma(s) sqrt(2 log(sigma_max / sigma_min)) dW, no drift.

    sigma(s) = sigma_min (sigma_max / sigma_min)^s (Song et al. 2021; the continuous SMLD/NCSN).
    """

    name = "VE"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 10.0):
        if not 0 < sigma_min < sigma_max:
            raise InputError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}.")
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.prior_std = self.sigma_max

    def sigma(self, s):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** _tensor(s)

    def drift(self, x, s):
        return torch.zeros_like(x)

    def diffusion(self, s):
        return self.sigma(s) * math.sqrt(2 * math.log(self.sigma_max / self.sigma_min))

    def kernel(self, s):
        sig = self.sigma(s)
        return torch.ones_like(sig), torch.sqrt(sig**2 - self.sigma_min**2)

    def __repr__(self):
        return f"VESDE(sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"


# ---------------------------------------------------------------- Gaussian mixtures, exact scores

def _component_terms(x, means, stds, weights, mean_scale, noise_std):
    """log(w_k N(x; a m_k, v_k I)) for every point and component, and the means and variances."""
    a = torch.as_tensor(mean_scale, dtype=x.dtype, device=x.device)
    b = torch.as_tensor(noise_std, dtype=x.dtype, device=x.device)
    a = a.reshape(-1, 1) if a.ndim else a.reshape(1, 1)  # (n or 1, 1)
    b = b.reshape(-1, 1) if b.ndim else b.reshape(1, 1)
    means, stds, weights = (v.to(dtype=x.dtype, device=x.device) for v in (means, stds, weights))
    var = a**2 * stds[None, :] ** 2 + b**2  # (n or 1, K)
    centres = a[:, :, None] * means.T[None]  # (n or 1, d, K)
    diff = x[:, :, None] - centres  # (n, d, K)
    d = x.shape[1]
    log_comp = (-0.5 * (diff**2).sum(1) / var - 0.5 * d * torch.log(2 * math.pi * var)
                + torch.log(weights / weights.sum())[None])
    return log_comp, diff, var


def mixture_log_prob(x, means, stds, weights, mean_scale=1.0, noise_std=0.0) -> torch.Tensor:
    """log p(x) for p = sum_k w_k N(a m_k, (a^2 std_k^2 + b^2) I): a mixture seen through the kernel (a, b).

    x (n, d); means (K, d); stds, weights (K,); a = mean_scale and b = noise_std floats or (n,).
    """
    log_comp, _, _ = _component_terms(x, means, stds, weights, mean_scale, noise_std)
    return torch.logsumexp(log_comp, dim=1)


def mixture_score(x, means, stds, weights, mean_scale=1.0, noise_std=0.0) -> torch.Tensor:
    """grad_x log p(x) of the same mixture: sum_k r_k(x) (a m_k - x) / v_k, r = responsibilities."""
    log_comp, diff, var = _component_terms(x, means, stds, weights, mean_scale, noise_std)
    resp = torch.softmax(log_comp, dim=1)  # (n, K)
    return -(resp[:, None, :] * diff / var[:, None, :]).sum(-1)


@dataclass
class GaussianMixture:
    """sum_k w_k N(m_k, std_k^2 I) in 2D: a target whose noised marginals are known exactly."""

    means: torch.Tensor  # (K, 2)
    stds: torch.Tensor  # (K,)
    weights: torch.Tensor  # (K,), normalised on use

    def __post_init__(self):
        self.means = torch.as_tensor(self.means, dtype=torch.float64)
        self.stds = torch.as_tensor(self.stds, dtype=torch.float64).reshape(-1)
        self.weights = torch.as_tensor(self.weights, dtype=torch.float64).reshape(-1)
        K = self.means.shape[0]
        if self.means.ndim != 2 or self.stds.shape != (K,) or self.weights.shape != (K,):
            raise InputError(f"means (K, d), stds (K,), weights (K,) expected; got {tuple(self.means.shape)}, "
                             f"{tuple(self.stds.shape)}, {tuple(self.weights.shape)}.")
        if (self.stds <= 0).any() or (self.weights < 0).any() or self.weights.sum() <= 0:
            raise InputError("stds must be positive and weights non-negative with a positive sum.")

    def sample(self, n: int, generator: torch.Generator | int | None = None, s=0.0, sde: _SDE | None = None,
               dtype: torch.dtype | None = None, stratified: bool = False) -> torch.Tensor:
        """n samples of the target (s = 0) or of its exact marginal at diffusion time s under ``sde``.

        ``stratified``: each component gets exactly its share n w_k of the points (largest remainders),
        instead of a multinomial count. A stratified *reference* halves the sampling noise of W2 on
        multimodal targets, since only the sample being judged then has random mode counts.
        """
        dtype = dtype or torch.get_default_dtype()
        if isinstance(generator, int) or generator is None:
            generator = torch.Generator().manual_seed(0 if generator is None else generator)
        w = self.weights / self.weights.sum()
        if stratified:
            share = n * w
            counts = share.floor().long()
            extra = torch.argsort(share - counts, descending=True)[: n - int(counts.sum())]
            counts[extra] += 1
            k = torch.repeat_interleave(torch.arange(len(w)), counts)
        else:
            k = torch.multinomial(w, n, replacement=True, generator=generator)
        x = self.means[k] + self.stds[k, None] * torch.randn(n, self.means.shape[1], generator=generator,
                                                             dtype=torch.float64)
        if sde is not None and float(s) > 0:
            a, b = sde.kernel(torch.tensor(float(s), dtype=torch.float64))
            x = a * x + b * torch.randn(x.shape, generator=generator, dtype=torch.float64)
        return x.to(dtype)

    def _kernel(self, x, s, sde):
        if sde is None:
            return 1.0, 0.0
        s = _as_times(s, x)
        return sde.kernel(s)

    def marginal_log_prob(self, x: torch.Tensor, s=0.0, sde: _SDE | None = None) -> torch.Tensor:
        """Exact log p_s(x) of the noised target at diffusion time s (float or (n,))."""
        check_points(x, "x", dim=self.means.shape[1])
        a, b = self._kernel(x, s, sde)
        return mixture_log_prob(x, self.means, self.stds, self.weights, a, b)

    def marginal_score(self, x: torch.Tensor, s=0.0, sde: _SDE | None = None) -> torch.Tensor:
        """Exact score grad_x log p_s(x) at diffusion time s (float or (n,))."""
        check_points(x, "x", dim=self.means.shape[1])
        a, b = self._kernel(x, s, sde)
        return mixture_score(x, self.means, self.stds, self.weights, a, b)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.marginal_log_prob(x)

    def score_fn(self, sde: _SDE) -> Score:
        """The exact score as a function score(x, s) of diffusion time s, for the samplers."""
        return lambda x, s: self.marginal_score(x, s, sde)

    def log_prob_fn(self, sde: _SDE) -> Callable:
        """log p_s(x) as a function of (x, s)."""
        return lambda x, s: self.marginal_log_prob(x, s, sde)


def eight_gaussians_mixture(radius: float = 2.0, std: float = 0.2) -> GaussianMixture:
    """The exact mixture behind ``utils.datasets.eight_gaussians``: 8 equal modes on a circle."""
    angle = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
    means = radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    return GaussianMixture(means, torch.full((8,), float(std)), torch.ones(8))


# ---------------------------------------------------------------- reverse SDE and probability flow

def reverse_sde_drift(sde: _SDE, score: Score, x: torch.Tensor, s) -> torch.Tensor:
    """Drift of the reverse-time SDE in diffusion time (Anderson 1982): f - g^2 score."""
    s = _as_times(s, x)
    return sde.drift(x, s) - (sde.diffusion(s) ** 2)[:, None] * score(x, s)


def probability_flow_drift(x: torch.Tensor, s, drift: Callable, diffusion: Callable, score: Score) -> torch.Tensor:
    """dx/ds of the probability flow ODE: f(x, s) - g(s)^2 score(x, s) / 2 (Song et al. 2021)."""
    s = _as_times(s, x)
    return drift(x, s) - 0.5 * (diffusion(s) ** 2)[:, None] * score(x, s)


def probability_flow_field(sde: _SDE, score: Score) -> Callable:
    """The probability flow as a field u(x, t) in FLOW time, for ``utils.solvers.solve_ode`` from t=0 to 1.

    u(x, t) = -[f(x, s) - g(s)^2 score(x, s) / 2] at s = diffusion_time(t): the minus because dt = -ds.
    Times just outside [0, 1], which adaptive solvers probe when choosing a first step, are clamped.
    """
    def u(x, t):
        s = diffusion_time(_as_times(t, x)).clamp(0.0, 1.0)
        return -probability_flow_drift(x, s, sde.drift, sde.diffusion, score)
    return u


def flow_time_drifts(x: torch.Tensor, t, drift: Callable, diffusion: Callable,
                     score: Score) -> tuple[torch.Tensor, torch.Tensor]:
    """The reverse SDE's drift and the probability flow's field in FLOW time t (exercise 4.4's reference).

    ``drift(x, s)``, ``diffusion(s)`` and ``score(x, s)`` are the forward SDE's, in diffusion time s.
    At s = diffusion_time(t), and with dt = -ds, both drifts change sign:

        reverse SDE:       dx = -[f(x, s) - g(s)^2 score(x, s)] dt + g(s) dW
        probability flow:  dx/dt = -[f(x, s) - g(s)^2 score(x, s) / 2]

    The Brownian term keeps its form (-dW is again a Brownian increment). Returns both drifts, (n, d) each.
    """
    s = diffusion_time(_as_times(t, x))
    g2 = (diffusion(s) ** 2)[:, None]
    f, sc = drift(x, s), score(x, s)
    return -(f - g2 * sc), -(f - 0.5 * g2 * sc)


def em_step(x: torch.Tensor, t, dt: float, drift: Callable, diffusion: Callable, noise: torch.Tensor) -> torch.Tensor:
    """One Euler-Maruyama step of dx = drift(x, t) dt + diffusion(t) dW: the noise is given, N(0, I).

    x + drift(x, t) dt + diffusion(t) sqrt(dt) noise. Works in any time variable (dt > 0).
    """
    t = _as_times(t, x)
    return x + drift(x, t) * dt + diffusion(t)[:, None] * math.sqrt(dt) * noise


def sample_reverse_sde(sde: _SDE, score: Score, x0: torch.Tensor, num_steps: int = 1000,
                       generator: torch.Generator | None = None, return_path: bool = False,
                       noise_last_step: bool = False) -> ODESolution:
    """Sample by Euler-Maruyama on the reverse-time SDE, from noise x0 (flow t=0) to data (flow t=1).

    In flow time the reverse SDE reads dx = [-f(x, s) + g(s)^2 score(x, s)] dt + g(s) dW with s = 1 - t.
    One score evaluation per step (nfe = num_steps). As in DDPM and Song et al., the last step adds
    no noise unless ``noise_last_step``. ``generator`` seeds the Brownian increments.
    """
    check_points(x0, "x0")
    if not isinstance(num_steps, int) or num_steps < 1:
        raise InputError(f"`num_steps` must be a positive integer, got {num_steps!r}.")
    dt = 1.0 / num_steps
    times = torch.linspace(0.0, 1.0, num_steps + 1, dtype=x0.dtype)
    calls = [0]

    def counted(x, s):
        calls[0] += 1
        return score(x, s)

    drift = lambda x, t: -reverse_sde_drift(sde, counted, x, diffusion_time(t))  # noqa: E731
    diffusion = lambda t: sde.diffusion(diffusion_time(t)).to(x0.dtype)  # noqa: E731
    x, path = x0, [x0] if return_path else None
    for k in range(num_steps):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        if k == num_steps - 1 and not noise_last_step:
            noise = torch.zeros_like(noise)
        x = em_step(x, k * dt, dt, drift, diffusion, noise)
        if path is not None:
            path.append(x)
    return ODESolution(x, calls[0], times, torch.stack(path) if path is not None else None)


def sample_probability_flow(sde: _SDE, score: Score, x0: torch.Tensor, num_steps: int = 100,
                            method: str = "euler", return_path: bool = False, rtol: float = 1e-5,
                            atol: float = 1e-5) -> ODESolution:
    """Sample by solving the probability flow ODE from noise x0 (flow t=0) to data (flow t=1).

    Any method of ``utils.solvers.solve_ode`` ("euler", "midpoint", "rk4", "dopri5"); nfe counts
    score evaluations.
    """
    return solve_ode(probability_flow_field(sde, score), x0, 0.0, 1.0, num_steps=num_steps, method=method,
                     return_path=return_path, rtol=rtol, atol=atol)


# ---------------------------------------------------------------- learning the score

def dsm_loss(score: Score, x_data: torch.Tensor, s: torch.Tensor, noise: torch.Tensor, sde: _SDE) -> torch.Tensor:
    """Denoising score matching with weight b(s)^2: mean_i || b(s_i) score(x_s, s_i) + noise_i ||^2.

    x_s = a(s) x_data + b(s) noise has conditional score -noise / b(s); the b^2 weight makes every s
    count alike (Song et al. 2021). Mean over the batch, sum over coordinates.
    """
    s = _as_times(s, x_data)
    _, b = sde.kernel(s)
    xs = sde.perturb(x_data, s, noise)
    return ((b[:, None] * score(xs, s) + noise) ** 2).sum(1).mean()


class ScoreModel(nn.Module):
    """score(x, s) = -eps(x, s) / b(s): a network that predicts the noise, read as a score.

    eps(x, s) = b x / (a^2 + b^2) + net(x, s): the first term is the exact noise prediction for data
    N(0, I) (score -x / (a^2 + b^2)), so the network only learns the departure from it; near the noise
    end, where the probability flow multiplies score errors by g^2 / 2, that departure is small.
    ``s`` is diffusion time. b(s) is clamped below at b(s_min), so the score stays finite at s = 0.
    """

    def __init__(self, sde: _SDE, net: nn.Module | None = None, s_min: float = 1e-3):
        super().__init__()
        from .models import TimeMLP

        self.sde, self.s_min = sde, float(s_min)
        self.net = net if net is not None else TimeMLP(dim=2, hidden=64, depth=3)

    def forward(self, x: torch.Tensor, s) -> torch.Tensor:
        s = _as_times(s, x)
        a, b = (v[:, None] for v in self.sde.kernel(s.clamp(min=self.s_min)))
        eps = b * x / (a**2 + b**2) + self.net(x, s)  # skip term: the exact eps for unit-Gaussian data
        return -eps / b


def train_score_model(sde: _SDE, data: torch.Tensor | Callable, num_steps: int = 1500, batch_size: int = 512,
                      lr: float = 3e-3, model: ScoreModel | None = None, seed: int = 0,
                      s_min: float = 1e-3, dtype: torch.dtype | None = None) -> tuple[ScoreModel, list[float]]:
    """Train a :class:`ScoreModel` (a TimeMLP 3x64) by denoising score matching; return it and the losses.

    ``data`` is a tensor (n, 2) of training points (batches are drawn from it) or a sampler
    ``data(batch_size, generator)``. Times s ~ U(s_min, 1). Adam with a cosine-decayed learning
    rate. Runs on the CPU in seconds for 2D data; the model is left in eval mode.
    ``dtype`` (default: torch's default dtype): torch.float64 trains in double precision (slower, but its results no longer depend at
    printed precision on which SIMD kernels the CPU picks; notebook 04 uses it).
    """
    dtype = dtype or torch.get_default_dtype()
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if isinstance(data, torch.Tensor):
        check_points(data, "data", dim=2)
        data_t = data.to(dtype)
        draw = lambda n: data_t[torch.randint(0, data_t.shape[0], (n,), generator=g)]  # noqa: E731
    elif callable(data):
        draw = lambda n: data(n, g).to(dtype)  # noqa: E731
    else:
        raise InputError(f"`data` must be a tensor (n, 2) or a sampler data(n, generator), got {type(data).__name__}.")
    if model is None:
        model = ScoreModel(sde, s_min=s_min).to(dtype)
        if dtype != torch.get_default_dtype():  # initialise in the working precision: float32 fills differ by CPU kernel
            torch.manual_seed(seed)
            for layer in model.modules():
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()
    model = model.to(dtype)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, num_steps)
    losses = []
    model.train()
    for step in progress(range(num_steps), desc="training"):
        x_data = draw(batch_size)
        s = s_min + (1 - s_min) * torch.rand(batch_size, generator=g, dtype=dtype)
        noise = torch.randn(batch_size, 2, generator=g, dtype=dtype)
        loss = dsm_loss(model, x_data, s, noise, sde)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return model, losses


# ---------------------------------------------------------------- measuring sample quality

def w2_floor_spread(target: GaussianMixture, n: int = 500, pairs: int = 6, seed: int = 1000, s=0.0,
                    sde: _SDE | None = None) -> tuple[float, float]:
    """Mean and standard deviation of W2 between an exact n-sample and a stratified exact n-sample.

    This is what an exact i.i.d. sampler scores in :func:`quality_against_nfe` (whose references are
    stratified): the mean is the finite-sample floor (no i.i.d. sampler beats it on average; a
    stratified sample can), the standard deviation the sampling noise of a single W2 measurement.
    With ``sde`` and ``s``: the same for the marginal at diffusion time s. Beside it, report the
    ceiling, :func:`w2_noise_ceiling`.
    """
    from .metrics import w2

    vals = [w2(target.sample(n, seed + 2 * k, s=s, sde=sde),
               target.sample(n, seed + 2 * k + 1, s=s, sde=sde, stratified=True)) for k in range(pairs)]
    mean = sum(vals) / pairs
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (pairs - 1))


def _clouds(sde: _SDE, target: GaussianMixture, n: int, repeats: int, seed: int, dtype: torch.dtype):
    """The shared set-up of :func:`quality_against_nfe` and :func:`w2_noise_ceiling`: noise x0, references, W2."""
    from .metrics import w2

    dtype = dtype or torch.get_default_dtype()
    g = torch.Generator().manual_seed(seed)
    x0 = sde.prior_sample(n * repeats, g).to(dtype)  # drawn in the default dtype whatever dtype: one x0 for every dtype
    refs = [target.sample(n, seed + 101 + r, stratified=True, dtype=dtype) for r in range(repeats)]

    def quality(x):
        return sum(w2(x[r * n:(r + 1) * n], refs[r]) for r in range(repeats)) / repeats

    return x0, quality


def w2_noise_ceiling(sde: _SDE, target: GaussianMixture, n: int = 500, repeats: int = 2, seed: int = 0,
                     dtype: torch.dtype | None = None) -> float:
    """What doing nothing scores: W2 of the untouched noise x0 of :func:`quality_against_nfe` (same n, repeats,
    seed) against the same references. A sampler no better than this has not produced samples at all."""
    x0, quality = _clouds(sde, target, n, repeats, seed, dtype)
    return quality(x0)


def quality_against_nfe(sde: _SDE, score: Score, target: GaussianMixture, sde_steps=(1, 10, 100, 1000),
                        ode=(("euler", 10), ("rk4", 5), ("dopri5", 1e-3)), n: int = 500, repeats: int = 2,
                        seed: int = 0, dtype: torch.dtype | None = None, desc: str = "sampler runs") -> list[dict]:
    """W2 between samples and the target for the reverse SDE and the probability flow ODE.

    Every run starts from the same noise: ``repeats`` independent clouds of ``n`` points, sampled
    together; each cloud is compared with its own stratified exact target sample and the W2 values
    are averaged. Compare with :func:`w2_floor_spread` at the same n (the floor) and with
    :func:`w2_noise_ceiling` (what the untouched noise scores).
    ``sde_steps``: Euler-Maruyama step counts. ``ode``: (method, num_steps) pairs, or ("dopri5", tol).
    ``dtype``: of the noise and the runs (float64 makes the numbers independent of the CPU's kernels;
    the score must accept it). A progress bar counts the runs (silenced under COURSE_QUIET=1).
    Returns rows with keys sampler ("SDE" or "ODE"), method, setting, nfe, w2.
    """
    x0, quality = _clouds(sde, target, n, repeats, seed, dtype)
    runs = [("SDE", "euler-maruyama", int(k)) for k in sde_steps] + [("ODE", m, v) for m, v in ode]
    rows = []
    with torch.no_grad():
        for sampler, method, setting in progress(runs, desc=desc):
            if sampler == "SDE":
                out = sample_reverse_sde(sde, score, x0, setting, generator=torch.Generator().manual_seed(seed + 1))
            elif method == "dopri5":
                out = sample_probability_flow(sde, score, x0, method="dopri5", rtol=setting, atol=setting)
            else:
                out = sample_probability_flow(sde, score, x0, int(setting), method=method)
            rows.append(dict(sampler=sampler, method=method, setting=setting, nfe=out.nfe, w2=quality(out.x)))
    return rows


def fewest_nfe(rows: list[dict], sampler: str, bar: float) -> tuple[int, str] | None:
    """(nfe, method): the smallest NFE from which every run of one of ``sampler``'s methods scores at most ``bar``.

    ``rows`` as returned by :func:`quality_against_nfe`; None when no method gets there and stays.
    """
    best = None
    for method in sorted({r["method"] for r in rows if r["sampler"] == sampler}):
        runs = sorted((r["nfe"], r["w2"]) for r in rows if r["method"] == method)
        ok = [nfe for i, (nfe, _) in enumerate(runs) if all(q <= bar for _, q in runs[i:])]
        if ok and (best is None or ok[0] < best[0]):
            best = (ok[0], method)
    return best
