"""Checks of notebook 04 (from SDE to ODE: the probability flow)."""
from __future__ import annotations

import math

import torch

from .. import mixtures, samplers, score_matching
from ..sde import VESDE, VPSDE
from .core import CheckFailure, exercise
from .expect import call, expect_close, expect_log_space, expect_tensor, fmt

NB = "04_sde_to_ode"


def _points(n=7, seed=40, scale=1.5):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def _mixture():
    """Unequal weights and stds, so responsibilities matter."""
    return mixtures.GaussianMixture(torch.tensor([[-1.5, 0.0], [1.0, 1.0], [0.5, -1.5]], dtype=torch.float64),
                             torch.tensor([0.3, 0.5, 0.2], dtype=torch.float64),
                             torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))


# ---------------------------------------------------------------- 4.1

@exercise("4.1", title="The probability flow drift", notebook=NB, answer="probability_flow_drift",
          reference=samplers.probability_flow_drift, minutes=15,
          practises="reading the probability flow ODE off the transport form of Fokker-Planck")
def check_4_1(answer):
    x = _points()
    s = torch.linspace(0.05, 0.95, 7, dtype=torch.float64)
    target = _mixture()
    for sde in (VPSDE(), VESDE()):
        score = target.score_fn(sde)
        got = call(answer, x, s, sde.drift, sde.diffusion, score, name="probability_flow_drift")
        got = expect_tensor(got, x.shape, f"the drift for the {sde.name} SDE",
                            finite_hint="Square the diffusion coefficient g(s), do not divide by it.")
        f, g2, sc = sde.drift(x, s), (sde.diffusion(s) ** 2)[:, None], score(x, s)
        mistakes = [
            (f - g2 * sc, "That is the drift of the reverse-time SDE, f - g^2 score. The ODE with the same "
                          "marginals takes half of it: f - (1/2) g^2 score."),
            (f + 0.5 * g2 * sc, "Wrong sign on the score term: the drift is f - (1/2) g^2 score."),
            (f - 0.5 * sde.diffusion(s)[:, None] * sc, "The score is multiplied by g / 2: square the diffusion "
                                                       "coefficient, g(s)^2 / 2."),
            (0.5 * (f - g2 * sc), "You halved f too: only the score term takes the factor 1/2, "
                                  "f - (1/2) g^2 score."),
        ]
        if sde.name == "VP":
            mistakes.append((-0.5 * g2 * sc, "The SDE's own drift f(x, s) is missing: add it "
                                             "(it is -beta(s) x / 2 for VP)."))
        r = 1 - s  # the same formula evaluated at 1 - s: a conversion to flow time that 4.1 does not ask for
        mistakes.append((sde.drift(x, r) - 0.5 * (sde.diffusion(r) ** 2)[:, None] * score(x, r),
                         "You evaluated f, g and the score at 1 - s: this exercise stays in diffusion time, so "
                         "use s as given (the switch to flow time is exercise 4.4)."))
        expect_close(got, f - 0.5 * g2 * sc, f"the probability flow drift for the {sde.name} SDE", atol=1e-6,
                     inputs=x, mistakes=mistakes)
    # independent of the reference: data N(0, I) is stationary under VP, so nothing may move
    sde = VPSDE()
    got = call(answer, x, s, sde.drift, sde.diffusion, lambda y, _: -y, name="probability_flow_drift")
    if got.abs().max() > 1e-6:
        raise CheckFailure("For data N(0, I) the VP SDE never changes p_s (score -x), so the probability flow "
                           f"must not move anything; your drift is as large as {fmt(got.abs().max())}.")
    return "It is f - g^2 score / 2, and it leaves N(0, I) still under the VP SDE."


# ---------------------------------------------------------------- 4.2

def _ou():
    """An Ornstein-Uhlenbeck-like SDE with time-dependent coefficients (any time variable)."""
    drift = lambda x, t: -(1 + t)[:, None] * x + torch.sin(3 * t)[:, None]  # noqa: E731
    diffusion = lambda t: 0.5 + t  # noqa: E731
    return drift, diffusion


@exercise("4.2", title="An Euler-Maruyama step", notebook=NB, answer="em_step", reference=samplers.em_step,
          minutes=10, practises="discretising dx = f dt + g dW: the noise enters once, scaled by sqrt(dt)")
def check_4_2(answer):
    drift, diffusion = _ou()
    x = _points()
    t = torch.linspace(0.1, 0.9, 7, dtype=torch.float64)
    dt = 0.04
    g = torch.Generator().manual_seed(42)
    noise = torch.randn(7, 2, generator=g, dtype=torch.float64)
    # no noise: a correct step is an Euler step of the drift, whatever random numbers it could draw
    got0 = call(answer, x.clone(), t, dt, drift, diffusion, torch.zeros_like(x), name="em_step")
    got0 = expect_tensor(got0, x.shape, "em_step(...) with noise = 0",
                         finite_hint="diffusion(t) has shape (n,): use diffusion(t)[:, None].")
    if not torch.allclose(got0, x + drift(x, t) * dt, atol=1e-8):
        again = call(answer, x.clone(), t, dt, drift, diffusion, torch.zeros_like(x), name="em_step")
        if not torch.allclose(got0, again, atol=1e-12):
            raise CheckFailure("With noise = 0 your step is still random: it draws its own random numbers "
                               "(torch.randn...). You inject the noise twice: it comes in once, through the "
                               "`noise` argument, as diffusion(t) * sqrt(dt) * noise; the diffusion coefficient "
                               "itself is not random.")
        expect_close(got0, x + drift(x, t) * dt, "the step with noise = 0 (an Euler step of the drift)",
                     atol=1e-8, inputs=x, mistakes=[
            (x + drift(x, t), "With noise = 0 you took x + drift: multiply the drift by dt."),
        ])
    got = call(answer, x.clone(), t, dt, drift, diffusion, noise, name="em_step")
    got = expect_tensor(got, x.shape, "em_step(...)")
    f, gt = drift(x, t), diffusion(t)[:, None]
    expected = x + f * dt + gt * math.sqrt(dt) * noise
    again = call(answer, x.clone(), t, dt, drift, diffusion, noise, name="em_step")
    if not torch.allclose(got, again, atol=1e-12):
        raise CheckFailure("Two calls with the same `noise` gave different results: your step draws fresh random "
                           "numbers besides `noise`, so it injects the noise twice. Use only `noise`.")
    expect_close(got, expected, "x + f dt + g sqrt(dt) noise", atol=1e-8, inputs=x, mistakes=[
        (x + f * dt + gt * math.sqrt(dt) * noise**2,
         "You inject the noise twice: `noise` appears both in the diffusion coefficient and again in the step "
         "(a noise^2 term). The diffusion coefficient g(t) is deterministic; the step adds g(t) sqrt(dt) noise "
         "once."),
        (x + f * dt + 2 * gt * math.sqrt(dt) * noise,
         "You inject the noise twice: the term g(t) sqrt(dt) noise is added two times. Add it once."),
        (x + f * dt + gt * dt * noise,
         "The noise is scaled by dt: Brownian increments have standard deviation sqrt(dt), so the step adds "
         "g(t) * sqrt(dt) * noise."),
        (x + f * dt + gt * noise, "The noise is not scaled by sqrt(dt): the step adds g(t) * sqrt(dt) * noise."),
        (x + f * dt + gt**2 * math.sqrt(dt) * noise,
         "The noise is scaled by g^2: the standard deviation of the step is g(t) sqrt(dt), so use g, not g^2."),
    ])
    # the variance of one step, by simulation: Var = g^2 dt
    x1 = torch.zeros(4000, 2, dtype=torch.float64)
    t1 = torch.full((4000,), 0.5, dtype=torch.float64)
    z = torch.randn(4000, 2, generator=g, dtype=torch.float64)
    step = call(answer, x1, t1, dt, drift, diffusion, z, name="em_step") - x1 - drift(x1, t1) * dt
    var, want = step.var().item(), 1.0**2 * dt
    if abs(var / want - 1) > 0.1:
        raise CheckFailure(f"One step from 4000 points has variance {var:.4g}; g^2 dt = {want:.4g}.")
    return f"The step adds g sqrt(dt) noise once: one step's variance is {var:.4f} against g^2 dt = {want:.4f}."


# ---------------------------------------------------------------- 4.3

def _autograd_score(x, target, a, b):
    """Score by autograd of torch.distributions' log-density of the noised mixture (independent of utils)."""
    comp = torch.distributions.Independent(
        torch.distributions.Normal(a * target.means, torch.sqrt(a**2 * target.stds**2 + b**2)[:, None]
                                   .expand_as(target.means)), 1)
    mix = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(probs=target.weights), comp)
    x = x.clone().requires_grad_(True)
    return torch.autograd.grad(mix.log_prob(x).sum(), x)[0]


@exercise("4.3", title="The exact score of a noised Gaussian mixture", notebook=NB, answer="mixture_score",
          reference=mixtures.mixture_score, minutes=20,
          practises="Gaussian kernels map mixtures to mixtures; the score is a responsibility-weighted average")
def check_4_3(answer):
    target = _mixture()
    m, sd, w = target.means, target.stds, target.weights
    x = _points(9, seed=43, scale=2.0)
    # the last case passes weights that do not sum to 1 (the statement allows it: only their ratios matter)
    for a, b, w in [(1.0, 0.0, w), (0.8, 0.6, w), (0.3, 0.95, w), (1.0, 1.5, 4 * w)]:
        got = call(answer, x, m, sd, w, a, b, name="mixture_score")
        got = expect_tensor(got, x.shape, f"the score at a = {a}, b = {b}",
                            finite_hint="Work with log-weights and torch.softmax / logsumexp: products of "
                                        "small densities underflow.")
        expected = _autograd_score(x, mixtures.GaussianMixture(m, sd, w / w.sum()), a, b)
        var = a**2 * sd**2 + b**2
        comp_scores = (a * m[None] - x[:, None, :]) / var[None, :, None]  # (n, K, d)
        wrong = []
        if a != 1.0:
            v1 = sd**2 + b**2
            r1 = torch.softmax(torch.log(w) - ((x[:, None, :] - a * m[None]) ** 2).sum(-1) / (2 * v1) - torch.log(v1), 1)
            wrong += [(mixtures.mixture_score(x, m, sd, w, 1.0, b),
                       f"At a = {a}: the component means must be scaled too: x_s = a x + b noise moves "
                       "m_k to a m_k."),
                      ((r1[:, :, None] * (a * m[None] - x[:, None, :]) / v1[None, :, None]).sum(1),
                       f"At a = {a}: the component variance is a^2 std_k^2 + b^2 (the data part is scaled "
                       "by a too), not std_k^2 + b^2.")]
        sq = ((x[:, None, :] - a * m[None]) ** 2).sum(-1)  # (n, K)
        logw = torch.log(w / w.sum())
        wrong += [
            ((torch.softmax(logw - sq / (2 * var), 1)[:, :, None] * comp_scores).sum(1),
             "The responsibilities miss the normalising constant of each component: log N_k(x) contains "
             "-(d/2) log v_k, which differs between components of different variance, so it does not cancel "
             "in the softmax."),
            ((torch.softmax(logw - sq / (2 * var) - torch.log(var), 0)[:, :, None] * comp_scores).sum(1),
             "The softmax runs over the points (dim=0): the responsibilities r_k(x) sum to 1 over the "
             "components k of each point, so take the softmax over dim=1."),
            ((w[None, :, None] * comp_scores).sum(1),
             "You averaged the component scores with the mixture weights w_k. The weights must be the "
             "responsibilities r_k(x) = w_k N_k(x) / sum_j w_j N_j(x), which depend on x (a softmax)."),
            (mixtures.mixture_score(x, m, sd, torch.ones_like(w), a, b),
             "The mixture weights w_k are missing from the responsibilities: r_k is proportional to "
             "w_k N_k(x), not N_k(x)."),
            (comp_scores.mean(1), "You took the plain average of the component scores: weight them by the "
                                  "responsibilities r_k(x), a softmax over components."),
        ]
        expect_close(got, expected, f"the score at a = {a}, b = {b} (against autograd of the exact log-density)",
                     atol=1e-6, rtol=1e-5, inputs=x, mistakes=wrong,
                     sign_hint="The score of N(mu, v I) at x is (mu - x) / v.")
    # far from every component, and with narrow components, each density underflows: only log space survives
    far = torch.tensor([[30.0, 30.0], [-40.0, 25.0], [0.2, -0.1]], dtype=torch.float64)
    for a, b, scale, where in [(1.0, 0.3, 1.0, "at points far from the mixture, such as (30, 30)"),
                               (1.0, 0.01, 0.01, "with narrow components (std_k and b of 0.01)")]:
        got = call(answer, far, m, sd * scale, w, a, b, name="mixture_score")
        expect_log_space(got, _autograd_score(far, mixtures.GaussianMixture(m, sd * scale, w / w.sum()), a, b),
                         f"the score at a = {a}, b = {b}", where)
    return "It equals autograd's gradient of the exact log-density of the noised mixture."


# ---------------------------------------------------------------- 4.4

def _flow_time_case(sde, x, t, score):
    """(f, g^2, score) at diffusion time 1 - t (right) and at t itself (the swapped convention)."""
    s = 1 - t
    right = (sde.drift(x, s), (sde.diffusion(s) ** 2)[:, None], score(x, s))
    swapped = (sde.drift(x, t), (sde.diffusion(t) ** 2)[:, None], score(x, t))
    return right, swapped


def _two_tensors(got, x, what):
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailure(f"Return two tensors, (reverse-SDE drift, probability-flow field), for {what}; "
                           f"got {type(got).__name__}" + (f" of length {len(got)}" if isinstance(got, (tuple, list))
                                                           else "") + ".")
    return tuple(expect_tensor(v, x.shape, f"{name} for {what}",
                               finite_hint="Square g(s); do not divide by it.")
                 for v, name in zip(got, ("the reverse-SDE drift", "the probability-flow field")))


@exercise("4.4", title="The time flip: both drifts in flow time", notebook=NB, answer="flow_time_drifts",
          reference=samplers.flow_time_drifts, minutes=20,
          practises="deriving the reverse SDE's drift and the probability flow in flow time from diffusion time")
def check_4_4(answer):
    x = _points()
    # flow times, none at 0.5 (where t = 1 - t) so that swapping the convention always shows
    t = torch.tensor([0.07, 0.2, 0.33, 0.61, 0.74, 0.86, 0.95], dtype=torch.float64)
    target = _mixture()
    for sde in (VPSDE(), VESDE()):
        score = target.score_fn(sde)
        what = f"the {sde.name} SDE"
        got = _two_tensors(call(answer, x, t, sde.drift, sde.diffusion, score, name="flow_time_drifts"), x, what)
        (f, g2, sc), (ft, g2t, sct) = _flow_time_case(sde, x, t, score)
        sde_drift, ode_field = -(f - g2 * sc), -(f - 0.5 * g2 * sc)
        swap = ("You swapped the time convention: f, g and the score are functions of diffusion time s, and flow "
                "time t corresponds to s = 1 - t. Evaluate them at s = diffusion_time(t), not at t.")
        if (torch.allclose(got[0], ode_field, atol=1e-6, rtol=1e-6)
                and torch.allclose(got[1], sde_drift, atol=1e-6, rtol=1e-6)):
            raise CheckFailure("The two drifts are in the wrong order: return (reverse-SDE drift, "
                               "probability-flow field).")
        expect_close(got[0], sde_drift, f"the reverse-SDE drift in flow time for {what}", atol=1e-6, rtol=1e-6,
                     inputs=x, mistakes=[
            (-(ft - g2t * sct), swap),
            (ft - g2t * sct, swap + " (And in flow time the drift changes sign: dt = -ds.)"),
            (f - g2 * sc, "Wrong sign: this is the reverse SDE's drift in diffusion time. In flow time dt = -ds, "
                          "so the whole drift changes sign: -[f - g^2 score]."),
            (-f - g2 * sc, "Only f changed sign: the whole drift changes sign, the score term too, "
                           "-[f - g^2 score] = -f + g^2 score."),
            (f + g2 * sc, "Only the score term changed sign: the whole drift changes sign, f too, "
                          "-[f - g^2 score] = -f + g^2 score."),
            (-(f - torch.sqrt(g2) * sc), "The score is multiplied by g where g^2 belongs: square the diffusion "
                                         "coefficient, -[f - g(s)^2 score]."),
            (-(f - g2t * sc), "g is evaluated at the flow time t while f and the score are at s = 1 - t: every "
                              "coefficient of the SDE is a function of diffusion time, so use g(1 - t) too."),
            (ode_field, "The reverse SDE's drift has the full g^2 score, not g^2 score / 2: the extra half "
                        "removes the noise that the reverse SDE injects at every step. The factor 1/2 belongs to "
                        "the probability flow, which injects none."),
        ], sign_hint="In flow time the drift is -[f - g^2 score] at s = 1 - t.")
        expect_close(got[1], ode_field, f"the probability-flow field in flow time for {what}", atol=1e-6,
                     rtol=1e-6, inputs=x, mistakes=[
            (-(ft - 0.5 * g2t * sct), swap),
            (ft - 0.5 * g2t * sct, swap + " (And in flow time the field changes sign: dt = -ds.)"),
            (f - 0.5 * g2 * sc, "Wrong sign: this is the probability flow in diffusion time (exercise 4.1). In "
                                "flow time dt = -ds, so the field changes sign: -[f - g^2 score / 2]."),
            (sde_drift, "The factor 1/2 is missing: the probability flow takes half the score term, "
                        "-[f - (1/2) g^2 score]. The full g^2 score belongs to the reverse SDE."),
            (-f - 0.5 * g2 * sc, "Only f changed sign: the whole field changes sign, the score term too, "
                                 "-[f - g^2 score / 2] = -f + g^2 score / 2."),
            (f + 0.5 * g2 * sc, "Only the score term changed sign: the whole field changes sign, f too."),
            (-(f - 0.5 * torch.sqrt(g2) * sc), "The score is multiplied by g / 2: square the diffusion "
                                               "coefficient, g(s)^2 / 2."),
            (-(f - 0.5 * g2t * sc), "g is evaluated at the flow time t while f and the score are at s = 1 - t: "
                                    "every coefficient of the SDE is a function of diffusion time, so use g(1 - t) "
                                    "too."),
        ], sign_hint="In flow time the probability flow is -[f - g^2 score / 2] at s = 1 - t.")
    # independent of the formulas above: N(0, I) data is stationary under VP, so its flow field is zero and
    # the reverse SDE drift is -beta(s) x / 2 (it then keeps N(0, I) with the noise it injects)
    sde = VPSDE()
    got = _two_tensors(call(answer, x, t, sde.drift, sde.diffusion, lambda y, _: -y, name="flow_time_drifts"), x,
                       "data N(0, I) under VP")
    if got[1].abs().max() > 1e-6:
        raise CheckFailure("For data N(0, I) the VP SDE never changes p_s (score -x), so the probability flow must "
                           f"not move anything; your field is as large as {fmt(got[1].abs().max(), 6)}.")
    return ("Both drifts are evaluated at s = 1 - t and change sign; the reverse SDE keeps the full g^2 score, "
            "the probability flow half of it.")


# ---------------------------------------------------------------- 4.5

class _LinearScore(torch.nn.Module):
    """A small score model with parameters, so the check can see gradients."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(44)
        self.W = torch.nn.Parameter(torch.randn(2, 2, generator=g, dtype=torch.float64) * 0.5)
        self.c = torch.nn.Parameter(torch.randn(2, generator=g, dtype=torch.float64))

    def forward(self, x, s):
        return x @ self.W.T * (1 + s)[:, None] + self.c


@exercise("4.5", title="The denoising score matching loss", notebook=NB, answer="dsm_loss", reference=score_matching.dsm_loss,
          minutes=20, practises="deriving the kernel's conditional score; regress the score onto it, weighted by sigma_s^2")
def check_4_5(answer):
    g = torch.Generator().manual_seed(45)
    x_data = torch.randn(64, 2, generator=g, dtype=torch.float64) + 1.0
    s = 0.05 + 0.9 * torch.rand(64, generator=g, dtype=torch.float64)
    noise = torch.randn(64, 2, generator=g, dtype=torch.float64)
    for sde in (VPSDE(), VESDE()):
        model = _LinearScore()
        got = call(answer, model, x_data, s, noise, sde, name="dsm_loss")
        got = expect_tensor(got, (), f"the loss for the {sde.name} SDE")
        a, b = (v[:, None] for v in sde.kernel(s))
        xs = a * x_data + b * noise
        with torch.no_grad():
            sc = model(xs, s)
            expected = ((b * sc + noise) ** 2).sum(1).mean()
            wrong = [
                (((b * sc + noise) ** 2).mean(), "You averaged over the coordinates too: sum the squared error over "
                                                 "coordinates (a squared norm), then average over the batch."),
                (((sc + noise / b) ** 2).sum(1).mean(), "The loss is not weighted by sigma_s^2: use "
                                                        "|| sigma_s score + noise ||^2 (weight lambda(s) = sigma_s^2)."),
                (((b * sc - noise) ** 2).sum(1).mean(), "Wrong sign of the target: the conditional score of "
                                                        "N(alpha_s x, sigma_s^2 I) at x_s = alpha_s x + sigma_s noise is -noise / sigma_s."),
                (((b * sc + noise / b) ** 2).sum(1).mean(),
                 "The target is -noise / sigma_s^2: the conditional score of N(alpha_s x, sigma_s^2 I) at "
                 "x_s = alpha_s x + sigma_s noise is -(x_s - alpha_s x) / sigma_s^2 = -noise / sigma_s, one "
                 "sigma_s, not two."),
                (((a * sc + noise) ** 2).sum(1).mean(),
                 "You weighted with alpha_s where sigma_s belongs: the loss is || sigma_s score + noise ||^2."),
                (((b * model(x_data, s) + noise) ** 2).sum(1).mean(),
                 "You evaluated the score at the clean data: evaluate it at the noised x_s = alpha_s x + sigma_s "
                 "noise."),
            ]
            if sde.name == "VP":
                xs_wrong = x_data + b * noise
                wrong.append((((b * model(xs_wrong, s) + noise) ** 2).sum(1).mean(),
                              "The data is not scaled: the VP kernel gives x_s = alpha_s x + sigma_s noise "
                              "with alpha_s = exp(-B(s)/2) < 1."))
        expect_close(got.reshape(()), expected, f"the DSM loss for the {sde.name} SDE", atol=1e-8, rtol=1e-6,
                     mistakes=wrong)
        model.zero_grad()
        if got.requires_grad:
            got.backward()
        if not got.requires_grad or model.W.grad is None or model.W.grad.abs().sum() == 0:
            raise CheckFailure("The loss does not depend on the model's parameters: do not detach the score "
                               "(no .detach(), .item() or torch.no_grad() inside the loss).")
    return "It is the sigma_s^2-weighted DSM loss, and gradients reach the model."
