"""Checks of notebook 09 accept correct answers written differently and reject plausible mistakes."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tests import checkcases
from utils import discrete


# ---- 9.1 mixture path
def path_bernoulli(x1, x0, kappa_t, generator):
    keep = torch.bernoulli(kappa_t[:, None].expand(x1.shape).double(), generator=generator).bool()
    return torch.where(keep, x1, x0)


def path_clone(x1, x0, kappa_t, generator):
    out = x0.clone()
    keep = torch.rand(x1.shape, generator=generator) < kappa_t.unsqueeze(1)
    out[keep] = x1[keep]
    return out


def path_soft(x1, x0, kappa_t, generator):
    return kappa_t[:, None] * x1 + (1 - kappa_t[:, None]) * x0


def path_swapped(x1, x0, kappa_t, generator):
    return torch.where(torch.rand(x1.shape, generator=generator) < kappa_t[:, None], x0, x1)


def path_one_coin_per_row(x1, x0, kappa_t, generator):
    return torch.where(torch.rand(x1.shape[0], 1, generator=generator) < kappa_t[:, None], x1, x0)


def path_shared_coins(x1, x0, kappa_t, generator):
    return torch.where(torch.rand(1, x1.shape[1], generator=generator) < kappa_t[:1, None], x1, x0)


def path_global_rng(x1, x0, kappa_t, generator):
    return torch.where(torch.rand(x1.shape) < kappa_t[:, None], x1, x0)


def path_fixed(x1, x0, kappa_t, generator):
    return torch.where(kappa_t[:, None] > 0.5, x1, x0)


def path_half(x1, x0, kappa_t, generator):
    return torch.where(torch.rand(x1.shape, generator=generator) < 0.5, x1, x0)


# ---- 9.2 cross-entropy
def ce_torch(logits, x1):
    return F.cross_entropy(logits.permute(0, 2, 1), x1, reduction="none").sum(1).mean()


def ce_one_hot(logits, x1):
    return -(F.one_hot(x1, logits.shape[-1]) * torch.log_softmax(logits, -1)).sum((1, 2)).mean()


def ce_token_mean(logits, x1):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x1.reshape(-1))


def ce_batch_sum(logits, x1):
    return -torch.log_softmax(logits, -1).gather(-1, x1[..., None]).sum()


def ce_raw_logit(logits, x1):
    return -logits.gather(-1, x1[..., None]).squeeze(-1).sum(-1).mean()


def ce_log_of_softmax(logits, x1):
    return -torch.log(torch.softmax(logits, -1)).gather(-1, x1[..., None]).squeeze(-1).sum(-1).mean()


def ce_wrong_dim(logits, x1):
    return -torch.log_softmax(logits, 1).gather(-1, x1[..., None]).squeeze(-1).sum(-1).mean()


def ce_no_minus(logits, x1):
    return torch.log_softmax(logits, -1).gather(-1, x1[..., None]).squeeze(-1).sum(-1).mean()


def ce_mse(logits, x1):
    return ((torch.softmax(logits, -1) - F.one_hot(x1, logits.shape[-1])) ** 2).sum((1, 2)).mean()


def ce_per_row(logits, x1):
    return -torch.log_softmax(logits, -1).gather(-1, x1[..., None]).squeeze(-1).sum(-1)


def ce_detached(logits, x1):
    return ce_torch(logits.detach(), x1)


# ---- 9.3 Euler CTMC step
def _pad(p1, vocab):
    return F.pad(p1, (0, vocab - p1.shape[-1]))


def step_loop(x, p1, t, h, schedule, vocab):
    out = torch.zeros(x.shape + (vocab,), dtype=p1.dtype)
    for i in range(x.shape[0]):
        ti = float(t[i])
        hi = min(h, 1 - ti)
        c = min(1.0, hi * float(schedule.dkappa(torch.tensor(ti))) / (1 - float(schedule.kappa(torch.tensor(ti)))))
        out[i] = c * _pad(p1[i], vocab)
        out[i, torch.arange(x.shape[1]), x[i]] += 1 - c
    return out


def step_velocity(x, p1, t, h, schedule, vocab):  # delta + h u, with h u capped: the same formula via the velocity
    t3 = t[:, None, None]
    hh = torch.clamp(1 - t3, max=h)
    u = discrete.probability_velocity(p1, x, schedule.kappa(t), schedule.dkappa(t), vocab)
    c = (hh * schedule.dkappa(t3) / (1 - schedule.kappa(t3)))
    scale = torch.where(c > 1, 1 / c, torch.ones_like(c))
    return F.one_hot(x, vocab).to(p1.dtype) + hh * scale * u


def _step(x, p1, t, h, schedule, vocab, *, kappa=None, inv=True, cap_h=True, cap_c=True, delta=True, pad=True):
    t3 = t[:, None, None]
    hh = torch.clamp(1 - t3, max=h) if cap_h else torch.full_like(t3, h)
    k = schedule.kappa(t3) if kappa is None else kappa(t3)
    c = hh * schedule.dkappa(t3) / ((1 - k) if inv else 1)
    c = c.clamp(max=1) if cap_c else c
    if not pad:
        return (1 - c) * F.one_hot(x.clamp(max=p1.shape[-1] - 1), p1.shape[-1]).to(p1.dtype) + c * p1
    return ((1 - c) if delta else 0) * F.one_hot(x, vocab).to(p1.dtype) + c * _pad(p1, vocab)


def step_t_for_kappa(x, p1, t, h, schedule, vocab):
    return _step(x, p1, t, h, schedule, vocab, kappa=lambda s: s)


def step_no_inverse(x, p1, t, h, schedule, vocab):
    return _step(x, p1, t, h, schedule, vocab, inv=False)


def step_past_one(x, p1, t, h, schedule, vocab):
    return _step(x, p1, t, h, schedule, vocab, cap_h=False)


def step_off_simplex(x, p1, t, h, schedule, vocab):
    return _step(x, p1, t, h, schedule, vocab, cap_c=False)


def step_no_delta(x, p1, t, h, schedule, vocab):
    return _step(x, p1, t, h, schedule, vocab, delta=False)


def step_change_only(x, p1, t, h, schedule, vocab):
    return _step(x, p1, t, h, schedule, vocab) - F.one_hot(x, vocab).to(p1.dtype)


def step_no_pad(x, p1, t, h, schedule, vocab):
    return _step(x, p1, t, h, schedule, vocab, pad=False)


# ---- 9.4 guided posterior
def guided_logits(logits_cond, logits_uncond, w):  # log_softmax's constant cancels in the softmax
    return torch.softmax((1 + w) * logits_cond - w * logits_uncond, -1)


def guided_extrapolate(logits_cond, logits_uncond, w):
    lc, lu = torch.log_softmax(logits_cond, -1), torch.log_softmax(logits_uncond, -1)
    return torch.softmax(lc + w * (lc - lu), -1)


def guided_w_prime(logits_cond, logits_uncond, w):
    return torch.softmax(w * torch.log_softmax(logits_cond, -1) - (w - 1) * torch.log_softmax(logits_uncond, -1), -1)


def guided_swapped(logits_cond, logits_uncond, w):
    return guided_logits(logits_uncond, logits_cond, w)


def guided_linear(logits_cond, logits_uncond, w):
    return (1 + w) * torch.softmax(logits_cond, -1) - w * torch.softmax(logits_uncond, -1)


def guided_unnormalised(logits_cond, logits_uncond, w):
    return torch.softmax(logits_cond, -1) ** (1 + w) * torch.softmax(logits_uncond, -1) ** (-w)


def guided_wrong_dim(logits_cond, logits_uncond, w):
    return torch.softmax((1 + w) * logits_cond - w * logits_uncond, 1)


def guided_linear_clipped(logits_cond, logits_uncond, w):
    p = guided_linear(logits_cond, logits_uncond, w).clamp(min=0)
    return p / p.sum(-1, keepdim=True)


def guided_log_of_softmax(logits_cond, logits_uncond, w):
    pc, pu = torch.softmax(logits_cond, -1), torch.softmax(logits_uncond, -1)
    return torch.softmax((1 + w) * torch.log(pc) - w * torch.log(pu), -1)


CORRECT = {
    "9.1": [discrete.mixture_path_sample, path_bernoulli, path_clone],
    "9.2": [discrete.token_cross_entropy, ce_torch, ce_one_hot],
    "9.3": [discrete.ctmc_step_probs, step_loop, step_velocity],
    "9.4": [discrete.guided_posterior, guided_logits, guided_extrapolate],
}

WRONG = {
    "9.1": [(path_soft, "categories"), (path_swapped, "roles are swapped"), (path_one_coin_per_row, "one coin per row"),
            (path_shared_coins, "same positions"), (path_global_rng, "from `generator`"),
            (path_fixed, "two different seeds"), (path_half, "slope")],
    "9.2": [(ce_token_mean, "averaged over the tokens"), (ce_batch_sum, "summed over the batch"),
            (ce_raw_logit, "raw logit"), (ce_log_of_softmax, "log_softmax, which subtracts"),
            (ce_wrong_dim, "over the tokens (dim 1)"), (ce_no_minus, "wrong sign"), (ce_mse, "squared error"),
            (ce_per_row, "one number"), (ce_detached, "gradient")],
    "9.3": [(step_t_for_kappa, "1 - t"), (step_no_inverse, "1/(1 - kappa_t)"), (step_past_one, "past t = 1"),
            (step_off_simplex, "negative"), (step_no_delta, "delta_x"), (step_change_only, "the change"),
            (step_no_pad, "pad the posterior")],
    "9.4": [(guided_w_prime, "w = 0"), (guided_swapped, "roles are swapped"), (guided_linear, "linearly"),
            (guided_unnormalised, "normalise per token"), (guided_wrong_dim, "over the tokens"),
            (guided_linear_clipped, "clipped"), (guided_log_of_softmax, "hundreds")],
}

test_accepts, test_rejects = checkcases.parametrize_cases(CORRECT, WRONG)
