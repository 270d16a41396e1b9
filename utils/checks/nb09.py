"""Checks of notebook 09 (discrete flow matching on the digits' 17 grey levels, with guidance)."""
from __future__ import annotations

import torch

from .. import discrete
from .core import CheckFailure, exercise
from .expect import call, expect_close, expect_tensor

NB = "09_discrete_flow_matching"


# ---------------------------------------------------------------- 9.1 sampling x_t from the mixture path

@exercise("9.1", title="A sample of the mixture path", notebook=NB, answer="mixture_path_sample",
          reference=discrete.mixture_path_sample, minutes=10,
          practises="Bernoulli masks per token with a torch.Generator; torch.where on integer tokens")
def check_9_1(answer):
    n, d = 4000, 12
    g = torch.Generator().manual_seed(91)
    x1 = torch.randint(0, 5, (n, d), generator=g)
    x0 = torch.randint(5, 10, (n, d), generator=g)  # disjoint levels: each token says where it came from
    kappa = torch.rand(n, generator=g, dtype=torch.float64)
    run = lambda seed: call(answer, x1.clone(), x0.clone(), kappa.clone(), torch.Generator().manual_seed(seed),  # noqa: E731
                            name="mixture_path_sample")
    got = run(0)
    got = expect_tensor(got, (n, d), "x_t")
    if got.is_floating_point():
        raise CheckFailure("x_t holds floating-point numbers: tokens are categories (grey levels, words), and "
                           "kappa_t x1 + (1 - kappa_t) x0 is not a level of either. Each token must be a copy "
                           "of x1's token or of x0's token, chosen at random.")
    from_1, from_0 = got == x1, got == x0
    if not (from_1 | from_0).all():
        raise CheckFailure("Some tokens of x_t are neither x1's nor x0's token at the same position: each token is "
                           "chosen between the two at its own position, never moved or invented.")
    if torch.equal(got, run(0)) and torch.equal(got, run(1)):
        raise CheckFailure("Two different seeds gave the same x_t: the choice must be random, drawn from `generator`.")
    if not torch.equal(got, run(0)):
        raise CheckFailure("The same seed gave two different x_t: draw the random numbers from `generator` "
                           "(torch.rand(..., generator=generator)), not from torch's global generator.")
    kept = from_1.double()
    per_row = kept.mean(1)
    if ((per_row == 0) | (per_row == 1)).all():
        raise CheckFailure("Every row of x_t is either all x1 or all x0: you drew one coin per row. The mixture "
                           "path is factorised: each token flips its own coin with probability kappa_t.")
    if (kept.std(0) == 0).all() or (kept == kept[:1]).all():
        raise CheckFailure("All rows kept the same positions: draw one coin per row and token, shape (n, D).")
    slope = float(((per_row - per_row.mean()) * (kappa - kappa.mean())).sum() / ((kappa - kappa.mean())**2).sum())
    if slope < -0.5:
        raise CheckFailure("Tokens come from x1 with probability 1 - kappa_t: the roles are swapped. At t = 1, "
                           "kappa_t = 1, x_t must be the data x1; at t = 0, the source x0.")
    if abs(slope - 1) > 0.1 or abs(float(per_row.mean() - kappa.mean())) > 0.02:
        raise CheckFailure(f"The fraction of tokens taken from x1 should be kappa_t in each row (slope 1 against "
                           f"kappa_t); yours has slope {slope:.2f}. Keep x1's token where a uniform number is "
                           "below kappa_t.")
    return "Each token copies x1 with probability kappa_t and x0 otherwise, on its own coin."


# ---------------------------------------------------------------- 9.2 the token cross-entropy

@exercise("9.2", title="The loss that learns a posterior", notebook=NB, answer="token_cross_entropy",
          reference=discrete.token_cross_entropy, minutes=15,
          practises="log_softmax and gather over a vocabulary axis; the discrete counterpart of the CFM loss")
def check_9_2(answer):
    g = torch.Generator().manual_seed(92)
    n, d, s = 16, 6, 5
    logits = torch.randn(n, d, s, generator=g, dtype=torch.float64, requires_grad=True)
    x1 = torch.randint(s, (n, d), generator=g)
    got = call(answer, logits, x1.clone(), name="token_cross_entropy")
    ref = discrete.token_cross_entropy(logits, x1)
    if isinstance(got, torch.Tensor) and got.ndim and got.numel() in (n, n * d):
        raise CheckFailure(f"Return one number (shape ()), the loss of the batch; you returned shape "
                           f"{tuple(got.shape)}. Sum over the tokens, average over the batch.")
    got = expect_tensor(got, (), "the loss", finite=False)
    lp = torch.log_softmax(logits, -1).gather(-1, x1.unsqueeze(-1)).squeeze(-1)
    p = torch.softmax(logits, -1).gather(-1, x1.unsqueeze(-1)).squeeze(-1)
    onehot = torch.nn.functional.one_hot(x1, s).double()
    expect_close(got.detach(), ref.detach(), "the loss", atol=1e-8, rtol=1e-8, mistakes=[
        (-lp.mean(), "You averaged over the tokens too: the loss of a row is the SUM over its D tokens (the "
                     "log-probability of the whole factorised posterior), then average over the batch."),
        (-lp.sum(), "You summed over the batch: average over the rows, so the loss does not grow with the "
                    "batch size."),
        (-logits.gather(-1, x1.unsqueeze(-1)).squeeze(-1).sum(-1).mean(),
         "You used the raw logit of the true level: normalise first, with torch.log_softmax over the levels."),
        (-p.sum(-1).mean(), "You used probabilities, not log-probabilities: take torch.log_softmax."),
        (-torch.log_softmax(logits, 1).gather(-1, x1.unsqueeze(-1)).squeeze(-1).sum(-1).mean(),
         "You normalised over the tokens (dim 1): the posterior of each token is a distribution over its "
         "levels, the last dimension."),
        (((torch.softmax(logits, -1) - onehot) ** 2).sum((1, 2)).mean(),
         "That is a squared error between probabilities and one-hot targets: the posterior is learned by "
         "cross-entropy, -log p(x1^i | x_t)."),
    ], sign_hint="The cross-entropy is minus the log-probability of the data: it is positive.")
    # extreme logits: log(softmax) underflows to -inf
    big = torch.tensor([[[800.0, 0.0, -800.0]]], dtype=torch.float64)
    far = call(answer, big, torch.tensor([[2]]), name="token_cross_entropy")
    want = discrete.token_cross_entropy(big, torch.tensor([[2]]))
    far = expect_tensor(far, (), "the loss for logits of size 800", finite=False)
    if not torch.isfinite(far) or not torch.allclose(far.detach().double(), want, rtol=1e-9):
        raise CheckFailure("For logits (800, 0, -800) and the true level 2 your loss is "
                           f"{float(far):.4g}, not {float(want):.4g}: softmax underflowed to 0 and its log is "
                           "-inf. Use torch.log_softmax, which subtracts the largest logit first.")
    (gg,) = torch.autograd.grad(got, logits) if got.requires_grad else (None,)
    (gr,) = torch.autograd.grad(ref, logits)
    if gg is None or not torch.allclose(gg, gr, atol=1e-10):
        raise CheckFailure("The value is right, but no (or a wrong) gradient reaches the logits: do not "
                           "detach or use .item(); the optimiser needs the loss as a tensor.")
    return "It matches the sum over tokens of F.cross_entropy, averaged over the batch, also for huge logits."


# ---------------------------------------------------------------- 9.3 one Euler step of the CTMC

def _step_cases():
    g = torch.Generator().manual_seed(93)
    n, d, s = 30, 4, 3
    p1 = torch.softmax(torch.randn(n, d, s, generator=g, dtype=torch.float64), -1)
    x = torch.randint(s + 1, (n, d), generator=g)  # with the mask token s
    t = torch.rand(n, generator=g, dtype=torch.float64) * 0.6
    sq, sqrt = discrete.Schedule(2.0), discrete.Schedule(0.5)
    return [("a small step, kappa_t = t^2", x, p1, t, 0.05, sq),
            ("steps that would pass t = 1, kappa_t = t^2", x, p1, t + 0.35, 0.8, sq),
            ("large steps from t = 0.3, kappa_t = t^2", x, p1, torch.full((n,), 0.3, dtype=torch.float64), 0.6, sq),
            ("steps of 0.1 near t = 0, kappa_t = sqrt(t)", x, p1, t * 0.003 + 1e-4, 0.1, sqrt)]


def _variant(x, p1, t, h, sched, vocab, *, kappa=None, inv=True, cap_h=True, cap_c=True, delta=True):
    t3 = t.reshape(-1, 1, 1)
    hh = torch.minimum(torch.as_tensor(h, dtype=p1.dtype), 1 - t3) if cap_h else torch.as_tensor(h, dtype=p1.dtype)
    k = sched.kappa(t3) if kappa is None else kappa(t3)
    c = hh * sched.dkappa(t3) / ((1 - k) if inv else 1)
    c = c.clamp(max=1) if cap_c else c
    pad = torch.nn.functional.pad(p1, (0, vocab - p1.shape[-1]))
    return ((1 - c) if delta else 0) * torch.nn.functional.one_hot(x, vocab).double() + c * pad


@exercise("9.3", title="One Euler step of the CTMC sampler", notebook=NB, answer="ctmc_step_probs",
          reference=discrete.ctmc_step_probs, minutes=15,
          practises="a rate matrix turned into jump probabilities; staying on the simplex and inside [0, 1]")
def check_9_3(answer):
    vocab = 3 + 1
    for name, x, p1, t, h, sched in _step_cases():
        got = call(answer, x.clone(), p1.clone(), t.clone(), h, sched, vocab, name="ctmc_step_probs")
        if isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(p1.shape):
            raise CheckFailure(f"Shape {tuple(got.shape)}: one column per data level. The result needs one per "
                               f"level of the vocabulary (vocab = {vocab}: the mask too, where a token may stay); "
                               "pad the posterior with a zero column.")
        got = expect_tensor(got, (x.shape[0], x.shape[1], vocab), f"the step probabilities ({name})")
        want = discrete.ctmc_step_probs(x, p1, t, h, sched, vocab)
        if torch.allclose(got, want, atol=1e-9):
            continue
        v = lambda **kw: _variant(x, p1, t, h, sched, vocab, **kw)  # noqa: E731
        if (got < -1e-12).any() and close_any(got, [v(cap_c=False), v(cap_c=False, cap_h=False)]):
            raise CheckFailure(f"For {name} some probabilities are negative: the jump probability "
                               "c = h kappa'/(1 - kappa) exceeded 1 and the stay probability 1 - c went below 0. "
                               "Cap c at 1 (.clamp(max=1)): the step must stay on the simplex.")
        expect_close(got, want, f"the step probabilities ({name})", atol=1e-9, rtol=1e-9, mistakes=[
            (v(kappa=lambda tt: tt), "You divided by 1 - t: the rate is kappa_t'/(1 - kappa_t), with "
                                    "schedule.kappa(t) where kappa_t belongs (here kappa_t is not t)."),
            (v(inv=False), "You dropped the factor 1/(1 - kappa_t): the rate of leaving a token's current level "
                           "is kappa_t'/(1 - kappa_t), which grows as t approaches 1."),
            (v(cap_h=False), "Your step went past t = 1: cut h to 1 - t (the path ends at t = 1, where "
                             "kappa = 1), before computing the jump probability."),
            (v(delta=False), "You left out delta_x: a token stays at its level with probability 1 - c; your "
                             "probabilities do not sum to 1."),
            (want - _one_hot(x, vocab), "You returned h u_t, the change, not delta_x + h u_t: add the current "
                                         "token's one-hot."),
        ])
    return "It stays on the simplex, stops at t = 1, and equals delta_x + h u_t where that is a distribution."


def _one_hot(x, vocab):
    return torch.nn.functional.one_hot(x, vocab).double()


def close_any(got, candidates) -> bool:
    return any(torch.allclose(got.double(), c, atol=1e-9) for c in candidates)


# ---------------------------------------------------------------- 9.4 the guided posterior

@exercise("9.4", title="The guided posterior", notebook=NB, answer="guided_posterior",
          reference=discrete.guided_posterior, minutes=15,
          practises="classifier-free guidance in log space; normalising per token")
def check_9_4(answer):
    g = torch.Generator().manual_seed(94)
    lc = torch.randn(8, 5, 4, generator=g, dtype=torch.float64) * 2
    lu = torch.randn(8, 5, 4, generator=g, dtype=torch.float64) * 2
    pc, pu = torch.softmax(lc, -1), torch.softmax(lu, -1)
    for w in (1.5, 0.0):
        got = call(answer, lc.clone(), lu.clone(), w, name="guided_posterior")
        want = discrete.guided_posterior(lc, lu, w)
        lin = (1 + w) * pc - w * pu
        tilt = pc ** (1 + w) * pu ** (-w)
        expect_close(got, want, f"the guided posterior at w = {w}", atol=1e-9, rtol=1e-7, mistakes=[
            (torch.softmax(w * torch.log(pc) - (w - 1) * torch.log(pu), -1) if w else pu,
             "At w = 0 the guided posterior must be the conditional one: weight the conditional log-posterior "
             "by 1 + w and the unconditional by -w (this notebook's w, as in notebook 07)."),
            (torch.softmax((1 + w) * torch.log(pu) - w * torch.log(pc), -1),
             "The roles are swapped: (1 + w) multiplies the conditional posterior (with the label), -w the "
             "unconditional one."),
            (lin, "You combined probabilities linearly, as 07 combines velocities: here the combination is of "
                  "log-probabilities, p_c^(1+w) p_u^(-w), then normalised (a linear mix can go negative)."),
            (tilt, "Normalise per token: p_c^(1+w) p_u^(-w) does not sum to 1 over the levels."),
            (torch.softmax((1 + w) * torch.log(pc) - w * torch.log(pu), 1),
             "You normalised over the tokens (dim 1): normalise over the levels, the last dimension."),
            (torch.softmax((1 + w) * lc - w * lu, 1),
             "You normalised over the tokens (dim 1): normalise over the levels, the last dimension."),
            ((lin.clamp(min=0) / lin.clamp(min=0).sum(-1, keepdim=True)),
             "You mixed probabilities linearly and clipped: mix log-probabilities instead, then softmax."),
        ])
    big = call(answer, lc * 300, lu * 300, 2.0, name="guided_posterior")
    want = discrete.guided_posterior(lc * 300, lu * 300, 2.0)
    big = expect_tensor(big, want.shape, "the guided posterior for logits in the hundreds", finite=False)
    if not torch.allclose(big.double(), want, atol=1e-9):
        raise CheckFailure("For logits in the hundreds your guided posterior has NaN or wrong values: softmax "
                           "probabilities underflow to 0 and their log is -inf. Work with torch.log_softmax "
                           "(or the logits themselves) and finish with torch.softmax.")
    return "It is softmax((1 + w) log p(.|x, y) - w log p(.|x)) per token, also for huge logits."
