"""Learning the score by denoising score matching (taught in notebook 04, reused in 06).

    model, losses = train_score_model(sde, data, num_steps=1500)   # a ScoreModel(x, s), s diffusion time
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .errors import InputError, check_points
from .runtime import progress
from .sde import Score, _SDE, _as_times

__all__ = ["dsm_loss", "ScoreModel", "train_score_model"]


def dsm_loss(score: Score, x_data: torch.Tensor, s: torch.Tensor, noise: torch.Tensor, sde: _SDE) -> torch.Tensor:
    """Denoising score matching with weight sigma_s^2: mean_i || sigma_{s_i} score(x_s, s_i) + noise_i ||^2.

    x_s = alpha_s x_data + sigma_s noise has conditional score -noise / sigma_s; the sigma_s^2 weight makes every s
    count alike (Song et al. 2021). Mean over the batch, sum over coordinates.
    """
    s = _as_times(s, x_data)
    _, b = sde.kernel(s)
    xs = sde.perturb(x_data, s, noise)
    return ((b[:, None] * score(xs, s) + noise) ** 2).sum(1).mean()


class ScoreModel(nn.Module):
    """score(x, s) = -eps(x, s) / sigma_s: a network that predicts the noise, read as a score.

    eps(x, s) = sigma_s x / (alpha_s^2 + sigma_s^2) + net(x, s): the first term is the exact noise prediction
    for data N(0, I) (score -x / (alpha_s^2 + sigma_s^2)), so the network only learns the departure from it; near the noise
    end, where the probability flow multiplies score errors by g^2 / 2, that departure is small.
    ``s`` is diffusion time. sigma_s is clamped below at sigma_{s_min}, so the score stays finite at s = 0.
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
                      s_min: float = 1e-3, dtype: torch.dtype | None = None,
                      callback: Callable | None = None) -> tuple[ScoreModel, list[float]]:
    """Train a :class:`ScoreModel` (a TimeMLP 3x64) by denoising score matching; return it and the losses.

    ``data`` is a tensor (n, 2) of training points (batches are drawn from it) or a sampler
    ``data(batch_size, generator)``. Times s ~ U(s_min, 1). Adam with a cosine-decayed learning
    rate. Runs on the CPU in seconds for 2D data; the model is left in eval mode.
    ``dtype`` (default: torch's default dtype): torch.float64 trains in double precision (slower, but its results no longer depend at
    printed precision on which SIMD kernels the CPU picks; notebook 04 uses it).
    ``callback(step)``, if given, is called after every optimiser step (``utils.references``).
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
        if callback is not None:
            callback(step + 1)
    model.eval()
    return model, losses
