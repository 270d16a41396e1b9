"""Discrete flow matching: mixture paths over tokens, a learned factorised posterior, a CTMC sampler
(taught in notebook 09; Gat et al. 2024, Campbell et al. 2024).

A state is D tokens, each one of S levels (the digits: 64 pixels, 17 grey levels 0..16). The source
p_0 is either uniform over the S levels, or the **mask** source: every token is the extra level
``MASK`` = S (the vocabulary then has V = S + 1 entries). Time t runs from 0 (source) to 1 (data).

    sched = Schedule(power=1.0)                       # kappa_t = t^power, kappa_t' = power t^(power-1)
    x0 = source_sample((n, D), S, "mask", g)          # all MASK (= S), or uniform levels
    xt = mixture_path_sample(x1, x0, sched.kappa(t), g)  # each token: x1 with prob. kappa_t, else x0
    model = PosteriorMLP(D, S, mask=True, num_classes=10)  # logits of p_{1|t}(x1^i | x_t, y), (n, D, S)
    loss = token_cross_entropy(model(xt, t, y), x1)   # sum over tokens, mean over the batch
    u = probability_velocity(p1, xt, sched.kappa(t), sched.dkappa(t))   # (n, D, V), sums to 0 over V
    probs = ctmc_step_probs(xt, p1, t, h, sched)      # one Euler step: stays on the simplex, stops at t=1
    x1 = sample_ctmc(posterior_fn, x0, S, sched, num_steps, g)   # the sampler
    p = guided_posterior(logits_cond, logits_uncond, w)            # softmax((1+w) l_c - w l_u)

The probability velocity of the mixture path with posterior p_{1|t}(y | x) is, token by token,
u_t(y, x) = kappa_t' / (1 - kappa_t) (p_{1|t}(y | x) - delta_x(y)): a rate kappa'/(1 - kappa) of
jumping away from x, to a level drawn from the posterior. For an enumerable distribution
``exact_posterior`` computes p_{1|t} by brute force (the 2D warm-up and the tests use it).
"""
from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from .errors import InputError
from .models import time_features
from .runtime import progress

__all__ = ["Schedule", "source_sample", "mixture_path_sample", "sample_xt", "PosteriorMLP", "token_cross_entropy",
           "probability_velocity", "ctmc_step_probs", "sample_ctmc", "guided_posterior", "exact_posterior",
           "enumerate_states", "chain_distribution", "to_tokens", "from_tokens", "SOURCES", "train_posterior",
           "TRAINING", "log_state_count"]

SOURCES = ("uniform", "mask")
TRAINING = dict(num_steps=300, batch_size=128, lr=2e-3, p_uncond=0.2, hidden=128, depth=3, seed=0)  # notebook 09


class Schedule:
    """kappa_t = t^power (power > 0): kappa_0 = 0 (all source), kappa_1 = 1 (all data)."""

    def __init__(self, power: float = 1.0):
        if not power > 0:
            raise InputError(f"`power` must be positive, got {power}.")
        self.power = float(power)

    def kappa(self, t):
        return torch.as_tensor(t) ** self.power

    def dkappa(self, t):
        t = torch.as_tensor(t)
        return self.power * t.clamp(min=1e-300) ** (self.power - 1) if self.power != 1 else torch.ones_like(t)

    def __repr__(self) -> str:
        return f"Schedule(power={self.power:g})"


def _source(source: str) -> str:
    if source not in SOURCES:
        raise InputError(f"`source` must be one of {SOURCES}, got {source!r}.")
    return source


def source_sample(shape, num_levels: int, source: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """x0 ~ p_0: uniform levels 0..S-1, or every token MASK = S. int64 of the given shape."""
    if _source(source) == "mask":
        return torch.full(tuple(shape), num_levels, dtype=torch.int64)
    return torch.randint(num_levels, tuple(shape), generator=generator)


def _tokens(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.is_floating_point():
        got = f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"`{name}` must be integer tokens of shape (n, D), got {got}.")
    return x


def mixture_path_sample(x1: torch.Tensor, x0: torch.Tensor, kappa_t: torch.Tensor,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """x_t ~ p_t(. | x0, x1): each token independently is x1's with probability kappa_t, else x0's
    (exercise 9.1). x1, x0: (n, D) int; kappa_t: (n,). One uniform number per token from ``generator``."""
    _tokens(x1, "x1"), _tokens(x0, "x0")
    keep = torch.rand(x1.shape, generator=generator) < kappa_t.reshape(-1, 1).cpu()
    return torch.where(keep.to(x1.device), x1, x0)


def sample_xt(x1, t, schedule: Schedule, num_levels: int, source: str, generator=None) -> torch.Tensor:
    """Draw x0 from the source and x_t from the mixture path at times t (n,)."""
    x0 = source_sample(x1.shape, num_levels, source, generator).to(x1.device)
    return mixture_path_sample(x1, x0, schedule.kappa(t), generator)


def to_tokens(x: torch.Tensor, num_levels: int = 17, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    """Values in [low, high] -> the nearest of num_levels evenly spaced levels, as int64 0..S-1."""
    return ((x - low) / (high - low) * (num_levels - 1)).round().clamp(0, num_levels - 1).long()


def from_tokens(k: torch.Tensor, num_levels: int = 17, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    """Levels 0..S-1 -> values in [low, high] (a MASK token, level S, is drawn as the mid value)."""
    v = low + (high - low) * k.to(torch.get_default_dtype()) / (num_levels - 1)
    return torch.where(k >= num_levels, torch.full_like(v, (low + high) / 2), v)


class PosteriorMLP(nn.Module):
    """Logits of the factorised posterior p_{1|t}(x1^i | x_t, y), shape (n, D, S).

    Reads the one-hot tokens of x_t (V = S + 1 levels with the mask), time features and a learned
    label embedding (``null_label`` = num_classes: "no label"; num_classes=0: unconditional); SELU
    layers of width ``hidden``. Token i's logits over the S data levels: the mask is never predicted.
    """

    def __init__(self, num_tokens: int, num_levels: int, mask: bool = True, num_classes: int = 0,
                 hidden: int = 256, depth: int = 3, num_freqs: int = 4):
        super().__init__()
        self.num_tokens, self.num_levels, self.mask = num_tokens, num_levels, mask
        self.vocab = num_levels + int(mask)
        self.num_classes, self.null_label, self.num_freqs = num_classes, num_classes, num_freqs
        self.inp = nn.Linear(num_tokens * self.vocab + 1 + 2 * num_freqs, hidden)
        self.label_embedding = nn.Embedding(num_classes + 1, hidden)
        layers = []
        for _ in range(depth - 1):
            layers += [nn.SELU(), nn.Linear(hidden, hidden)]
        layers += [nn.SELU(), nn.Linear(hidden, num_tokens * num_levels)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t, y: torch.Tensor | None = None) -> torch.Tensor:
        _tokens(x, "x")
        n = x.shape[0]
        if x.shape[1] != self.num_tokens or (n and (x.min() < 0 or x.max() >= self.vocab)):
            raise InputError(f"`x` must hold {self.num_tokens} tokens in 0..{self.vocab - 1} per row, "
                             f"got shape {tuple(x.shape)}.")
        dtype = self.inp.weight.dtype
        t = torch.as_tensor(t, dtype=dtype, device=x.device).expand(n) if not isinstance(t, torch.Tensor) \
            or t.ndim == 0 else t.to(dtype=dtype, device=x.device)
        y = torch.full((n,), self.null_label, dtype=torch.int64, device=x.device) if y is None else y
        one_hot = nn.functional.one_hot(x, self.vocab).to(dtype).flatten(1)
        h = self.inp(torch.cat([one_hot, time_features(t, self.num_freqs)], dim=1)) + self.label_embedding(y)
        return self.net(h).view(n, self.num_tokens, self.num_levels)


def token_cross_entropy(logits: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """-sum_i log p_{1|t}(x1^i | x_t), averaged over the batch (exercise 9.2). logits (n, D, S), x1 (n, D)."""
    log_p = torch.log_softmax(logits, dim=-1)
    return -log_p.gather(-1, x1.unsqueeze(-1)).squeeze(-1).sum(-1).mean()


def _pad(p1: torch.Tensor, vocab: int) -> torch.Tensor:
    """Posterior probabilities over S levels -> over the vocabulary (zero on the mask)."""
    return nn.functional.pad(p1, (0, vocab - p1.shape[-1]))


def probability_velocity(p1: torch.Tensor, x: torch.Tensor, kappa_t, dkappa_t, vocab: int | None = None):
    """u_t(y, x^i) = kappa'/(1 - kappa) (p_{1|t}(y | x) - delta_{x^i}(y)), shape (n, D, V).

    p1: posterior probabilities (n, D, S); x: current tokens (n, D); kappa_t, dkappa_t: (n,) or numbers.
    It sums to zero over y, and is nonnegative for y != x^i (rates)."""
    vocab = vocab or max(p1.shape[-1], int(x.max()) + 1)
    rate = (torch.as_tensor(dkappa_t, dtype=p1.dtype) / (1 - torch.as_tensor(kappa_t, dtype=p1.dtype)))
    rate = rate.reshape(-1, 1, 1) if rate.ndim else rate
    return rate * (_pad(p1, vocab) - nn.functional.one_hot(x, vocab).to(p1.dtype))


def ctmc_step_probs(x: torch.Tensor, p1: torch.Tensor, t: torch.Tensor, h: float, schedule: Schedule,
                    vocab: int | None = None) -> torch.Tensor:
    """The distribution of each token after one Euler step of size h from time t (exercise 9.3):
    delta_x + h u_t(., x), with h cut to 1 - t (never past t = 1) and the jump probability
    c = h kappa'/(1 - kappa) capped at 1 (never off the simplex). (n, D, V)."""
    vocab = vocab or max(p1.shape[-1], int(x.max()) + 1)
    t = torch.as_tensor(t, dtype=p1.dtype).reshape(-1, 1, 1)
    h = torch.minimum(torch.as_tensor(h, dtype=p1.dtype), 1 - t)
    kappa = schedule.kappa(t)
    c = torch.where(kappa < 1, h * schedule.dkappa(t) / (1 - kappa).clamp(min=1e-300), torch.ones_like(t))
    c = c.clamp(max=1.0)
    return (1 - c) * nn.functional.one_hot(x, vocab).to(p1.dtype) + c * _pad(p1, vocab)


def sample_ctmc(posterior_fn, x0: torch.Tensor, num_levels: int, schedule: Schedule, num_steps: int,
                generator: torch.Generator | None = None, return_path: bool = False, desc: str = ""):
    """Euler CTMC sampler from t = 0 to 1 in ``num_steps`` steps: posterior_fn(x, t) -> (n, D, S)
    probabilities. The last step lands on t = 1, where kappa = 1: every token is drawn from the posterior
    (for kappa_t = t the Euler step does exactly that; for other schedules its capped jump would not).
    With the mask source a revealed token keeps its level: the path's exact posterior there is delta_x, and
    it replaces the network's (which only approximates it). Returns the tokens at t = 1 (and the list of states with return_path)."""
    x, path = x0, [x0]
    vocab = max(num_levels, int(x0.max()) + 1)
    steps = range(num_steps)
    for k in (progress(steps, desc=desc) if desc else steps):
        t = torch.full((x.shape[0],), k / num_steps)
        with torch.no_grad():
            p1 = posterior_fn(x, t)
            if vocab > num_levels:  # mask source: a revealed token is the data's (the exact posterior is delta_x)
                p1 = torch.where((x < num_levels).unsqueeze(-1),
                                 nn.functional.one_hot(x.clamp(max=num_levels - 1), num_levels).to(p1.dtype), p1)
            probs = ctmc_step_probs(x, p1, t, 1 / num_steps, schedule, vocab) if k < num_steps - 1 \
                else _pad(p1, vocab)  # the last step ends at kappa_1 = 1: no token may stay at the source
        u = torch.rand(x.shape + (1,), generator=generator, dtype=probs.dtype).to(probs.device)
        x = (probs.cumsum(-1) < u).sum(-1).clamp(max=vocab - 1)  # inverse CDF: one uniform number per token
        path.append(x)
    return (x, path) if return_path else x


def guided_posterior(logits_cond: torch.Tensor, logits_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """softmax((1 + w) log p(. | x, y) - w log p(. | x)) per token (exercise 9.4): the conditional
    posterior tilted by the implicit classifier p(y | x1^i, x)^w, normalised again over the S levels."""
    log_c, log_u = torch.log_softmax(logits_cond, -1), torch.log_softmax(logits_uncond, -1)
    return torch.softmax((1 + w) * log_c - w * log_u, dim=-1)


# ---------------------------------------------------------------- brute force on enumerable distributions

def enumerate_states(num_tokens: int, vocab: int) -> torch.Tensor:
    """All vocab^D states, (vocab^D, D) int64, in lexicographic order (state index = base-vocab number)."""
    return torch.tensor(list(itertools.product(range(vocab), repeat=num_tokens)), dtype=torch.int64)


def _source_probs(num_levels: int, source: str, vocab: int) -> torch.Tensor:
    p0 = torch.zeros(vocab, dtype=torch.float64)
    if _source(source) == "mask":
        p0[num_levels] = 1.0
    else:
        p0[:num_levels] = 1.0 / num_levels
    return p0


def exact_posterior(x: torch.Tensor, t, data_probs: torch.Tensor, num_levels: int, source: str,
                    schedule: Schedule) -> torch.Tensor:
    """p_{1|t}(x1^i = a | x_t = x) for data with probability table ``data_probs`` (S^D,) over
    ``enumerate_states(D, S)``, by enumeration: (n, D, S) float64."""
    num_tokens = x.shape[1]
    vocab = num_levels + int(source == "mask")
    states = enumerate_states(num_tokens, num_levels)  # (M, D)
    if data_probs.shape != (states.shape[0],):
        raise InputError(f"`data_probs` must have {states.shape[0]} = {num_levels}^{num_tokens} entries, "
                         f"got shape {tuple(data_probs.shape)}.")
    p0 = _source_probs(num_levels, source, vocab)
    kappa = schedule.kappa(torch.as_tensor(t, dtype=torch.float64)).reshape(-1, 1, 1)  # (n or 1, 1, 1)
    # p_t(x^j | x1^j) for every row, state, token: kappa delta + (1 - kappa) p0(x^j)
    like = kappa * (x[:, None, :] == states[None]).double() + (1 - kappa) * p0[x][:, None, :]
    joint = data_probs.double()[None] * like.prod(-1)  # (n, M)
    total = joint.sum(1, keepdim=True)
    joint = torch.where(total > 0, joint / total.clamp(min=1e-300), 1.0 / joint.shape[1])  # unreachable x: any law
    one_hot = nn.functional.one_hot(states, num_levels).double()  # (M, D, S)
    return torch.einsum("nm,mds->nds", joint, one_hot)


def chain_distribution(data_probs: torch.Tensor, num_tokens: int, num_levels: int, source: str,
                       schedule: Schedule, num_steps: int) -> torch.Tensor:
    """The exact law of ``sample_ctmc`` run with the exact posterior, by propagating the distribution
    over all V^D states through each step's transition matrix: (S^D,) over ``enumerate_states(D, S)``."""
    vocab = num_levels + int(source == "mask")
    states = enumerate_states(num_tokens, vocab)
    dist = _source_probs(num_levels, source, vocab)[states].prod(-1)  # factorised source
    for k in range(num_steps):
        t = torch.full((states.shape[0],), k / num_steps, dtype=torch.float64)
        p1 = exact_posterior(states, t, data_probs, num_levels, source, schedule)
        probs = ctmc_step_probs(states, p1, t, 1 / num_steps, schedule, vocab) if k < num_steps - 1 \
            else _pad(p1, vocab)  # as sample_ctmc
        trans = torch.stack([probs[:, i, states[:, i]] for i in range(num_tokens)]).prod(0)  # (M from, M to)
        dist = dist @ trans
    keep = (states < num_levels).all(1)
    return dist[keep]


def train_posterior(tokens: torch.Tensor, labels: torch.Tensor | None, num_levels: int, source: str,
                    schedule: Schedule | None = None, num_steps: int = TRAINING["num_steps"],
                    batch_size: int = TRAINING["batch_size"], lr: float = TRAINING["lr"],
                    p_uncond: float = TRAINING["p_uncond"], hidden: int = TRAINING["hidden"],
                    depth: int = TRAINING["depth"], seed: int = TRAINING["seed"], desc: str = "training",
                    model: PosteriorMLP | None = None, callback=None):
    """Cross-entropy training of a PosteriorMLP on data tokens (n, D), with label dropout when labels are
    given; Adam with a cosine learning rate. Random numbers from one CPU generator. Returns (model, losses).
    ``model``: train this one (built after ``seed_everything(seed)``) instead of a new one; ``callback(step)``
    after every optimiser step (``utils.references``)."""
    from .guidance import drop_labels

    schedule = schedule or Schedule()
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    num_classes = 0 if labels is None else int(labels.max()) + 1
    if model is None:
        model = PosteriorMLP(tokens.shape[1], num_levels, mask=source == "mask", num_classes=num_classes,
                             hidden=hidden, depth=depth)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched_lr = torch.optim.lr_scheduler.CosineAnnealingLR(opt, num_steps)
    losses = []
    for _ in progress(range(num_steps), desc=desc):
        idx = torch.randint(tokens.shape[0], (batch_size,), generator=g)
        x1 = tokens[idx]
        y = None if labels is None else drop_labels(labels[idx], p_uncond, model.null_label, g)
        t = torch.rand(batch_size, generator=g)
        xt = sample_xt(x1, t, schedule, num_levels, source, g)
        loss = token_cross_entropy(model(xt, t, y), x1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched_lr.step()
        losses.append(loss.item())
        if callback is not None:
            callback(len(losses))
    return model.eval(), losses


def log_state_count(num_tokens: int, num_levels: int) -> float:
    """log10 of the number of states S^D (for the digits: 64 log10 17, about 79)."""
    return num_tokens * math.log10(num_levels)
