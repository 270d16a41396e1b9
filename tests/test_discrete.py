"""utils.discrete against closed forms and brute-force enumeration (notebook 09)."""
from __future__ import annotations

import itertools

import pytest
import torch

from utils.discrete import (SOURCES, PosteriorMLP, Schedule, chain_distribution, ctmc_step_probs, enumerate_states,
                            exact_posterior, from_tokens, guided_posterior, mixture_path_sample,
                            probability_velocity, sample_ctmc, source_sample, to_tokens, token_cross_entropy,
                            train_posterior)
from utils.errors import InputError

D, S = 2, 3


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _table(seed=0, d=D, s=S):
    q = torch.rand(s**d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) ** 3
    return q / q.sum()


def _tv(a, b):
    return float((a - b).abs().sum() / 2)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("power", [1.0, 2.0])
def test_euler_chain_with_exact_posterior_converges_to_the_data(source, power):
    q = _table()
    tv = [_tv(chain_distribution(q, D, S, source, Schedule(power), n), q) for n in (4, 16, 64)]
    assert tv[0] > tv[1] > tv[2] and tv[2] < 0.01
    assert 3 < tv[1] / tv[2] < 5  # first order: error ~ 1/N


@pytest.mark.parametrize("source", SOURCES)
def test_one_token_is_exact_at_any_number_of_steps(source):
    q = torch.tensor([0.2, 0.5, 0.3])
    for n in (1, 3, 10):
        assert torch.allclose(chain_distribution(q, 1, S, source, Schedule(1.0), n), q, atol=1e-12)


@pytest.mark.parametrize("source", SOURCES)
def test_sampler_draws_the_chain_law(source):
    q, sched, n_steps, n = _table(1), Schedule(1.0), 6, 40_000
    law = chain_distribution(q, D, S, source, sched, n_steps)
    g = torch.Generator().manual_seed(3)
    x0 = source_sample((n, D), S, source, g)
    x1 = sample_ctmc(lambda x, t: exact_posterior(x, t, q, S, source, sched), x0, S, sched, n_steps, g)
    assert int(x1.max()) < S  # no token left masked or noise-free at t = 1
    counts = torch.bincount(x1[:, 0] * S + x1[:, 1], minlength=S**D).double() / n
    assert _tv(counts, law) < 0.015  # sd of the TV estimate about 0.005


def test_exact_posterior_matches_bayes_by_hand():
    q, sched = _table(2), Schedule(1.0)
    states = enumerate_states(D, S)
    x, t = torch.tensor([[0, 2]]), 0.3
    k = 0.3
    for source in SOURCES:
        p0 = (lambda v: 1 / S) if source == "uniform" else (lambda v: float(v == S))
        post = torch.zeros(D, S)
        xs = x if source == "uniform" else torch.tensor([[S, 2]])
        for m, x1 in enumerate(states.tolist()):
            like = 1.0
            for j in range(D):
                like *= k * (xs[0, j] == x1[j]) + (1 - k) * p0(int(xs[0, j]))
            for j in range(D):
                post[j, x1[j]] += q[m] * like
        post /= post.sum(-1, keepdim=True)
        assert torch.allclose(exact_posterior(xs, t, q, S, source, sched)[0], post, atol=1e-12)


def test_velocity_sums_to_zero_and_rates_are_nonnegative():
    g = torch.Generator().manual_seed(0)
    p1 = torch.softmax(torch.randn(50, 5, S, generator=g), -1)
    x = torch.randint(S + 1, (50, 5), generator=g)
    t = torch.rand(50, generator=g) * 0.99
    sched = Schedule(2.0)
    u = probability_velocity(p1, x, sched.kappa(t), sched.dkappa(t), vocab=S + 1)
    assert u.shape == (50, 5, S + 1)
    assert torch.allclose(u.sum(-1), torch.zeros(50, 5), atol=1e-12)
    off = torch.ones_like(u, dtype=torch.bool).scatter(-1, x.unsqueeze(-1), False)
    assert (u[off] >= 0).all() and (u.gather(-1, x.unsqueeze(-1)) <= 0).all()
    # the closed form at one entry
    i = 7
    rate = sched.dkappa(t[i]) / (1 - sched.kappa(t[i]))
    assert torch.allclose(u[i, 0, :S], rate * (p1[i, 0] - torch.nn.functional.one_hot(x[i, 0], S + 1)[:S]))


def test_euler_step_stays_on_the_simplex_and_never_passes_t_1():
    g = torch.Generator().manual_seed(1)
    p1 = torch.softmax(torch.randn(40, 4, S, generator=g), -1)
    x = torch.randint(S, (40, 4), generator=g)
    t = torch.rand(40, generator=g)
    sched = Schedule(2.0)
    for h in (0.01, 0.3, 2.0):
        probs = ctmc_step_probs(x, p1, t, h, sched)
        assert (probs >= 0).all() and torch.allclose(probs.sum(-1), torch.ones(40, 4))
    # a step longer than 1 - t is the step to t = 1
    assert torch.allclose(ctmc_step_probs(x, p1, t, 5.0, sched), ctmc_step_probs(x, p1, t, 1 - t.view(-1, 1, 1), sched))
    # linear schedule: the step to t = 1 jumps to the posterior
    assert torch.allclose(ctmc_step_probs(x, p1, t, 5.0, Schedule(1.0)), p1)
    # small step: delta + h u
    u = probability_velocity(p1, x, sched.kappa(t * 0.5), sched.dkappa(t * 0.5))
    small = ctmc_step_probs(x, p1, t * 0.5, 1e-3, sched)
    assert torch.allclose(small, torch.nn.functional.one_hot(x, S).double() + 1e-3 * u)


def test_mixture_path_keeps_each_token_with_probability_kappa():
    n, d = 20_000, 8
    x1 = torch.zeros(n, d, dtype=torch.int64)
    x0 = torch.ones(n, d, dtype=torch.int64)
    kappa = torch.linspace(0, 1, n)
    xt = mixture_path_sample(x1, x0, kappa, torch.Generator().manual_seed(0))
    kept = (xt == 0).double()
    assert abs(kept.mean().item() - 0.5) < 0.01
    assert abs(kept[:n // 4].mean().item() - 0.125) < 0.01  # mean kappa over the first quarter
    assert kept[0].sum() == 0 and kept[-1].sum() == d
    per_token = kept.mean(0)
    assert (per_token - 0.5).abs().max() < 0.02  # each token on its own coin
    assert 0 < kept.sum(1)[n // 2 - 100:n // 2 + 100].std()  # not all tokens of a row at once


def test_source_sample():
    g = torch.Generator().manual_seed(0)
    assert (source_sample((3, 4), S, "mask") == S).all()
    u = source_sample((10_000, 2), S, "uniform", g)
    assert u.max() == S - 1 and u.min() == 0
    with pytest.raises(InputError, match="source"):
        source_sample((3, 4), S, "gaussian")


def test_token_cross_entropy_matches_torch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 5, S, generator=g)
    x1 = torch.randint(S, (16, 5), generator=g)
    want = torch.nn.functional.cross_entropy(logits.reshape(-1, S), x1.reshape(-1)) * 5
    assert torch.allclose(token_cross_entropy(logits, x1), want)


def test_guided_posterior():
    g = torch.Generator().manual_seed(0)
    lc, lu = torch.randn(6, 4, S, generator=g), torch.randn(6, 4, S, generator=g)
    assert torch.allclose(guided_posterior(lc, lu, 0.0), torch.softmax(lc, -1))
    pc, pu = torch.softmax(lc, -1), torch.softmax(lu, -1)
    tilted = pc**3 * pu**-2
    assert torch.allclose(guided_posterior(lc, lu, 2.0), tilted / tilted.sum(-1, keepdim=True))
    assert torch.allclose(guided_posterior(lc + 5, lu - 3, 2.0).sum(-1), torch.ones(6, 4))


def test_tokens_round_trip():
    k = torch.arange(17).view(1, -1)
    assert torch.equal(to_tokens(from_tokens(k)), k)
    assert torch.allclose(from_tokens(k), k.double() / 8 - 1)  # the digits' pixel/8 - 1
    assert from_tokens(torch.tensor([17])).item() == 0.0  # a mask token is drawn mid-grey


def test_posterior_mlp_and_training():
    model = PosteriorMLP(4, S, mask=True, num_classes=2, hidden=16, depth=2)
    x = torch.tensor([[0, 1, 2, 3]])
    assert model(x, torch.tensor([0.5]), torch.tensor([1])).shape == (1, 4, S)
    assert model(x, 0.5).shape == (1, 4, S)  # no label: the null label
    with pytest.raises(InputError, match="tokens"):
        model(torch.tensor([[0, 1, 2, 4]]), 0.5)
    with pytest.raises(InputError, match="integer tokens"):
        model(x.double(), 0.5)
    # a tiny dataset of two patterns: the loss falls well below that of a uniform guess
    data = torch.tensor([[0, 1, 2, 0], [2, 2, 1, 1]]).repeat(50, 1)
    labels = torch.tensor([0, 1]).repeat(50)
    _, losses = train_posterior(data, labels, S, "mask", num_steps=150, batch_size=32, hidden=32, depth=2,
                                desc="")
    assert sum(losses[-20:]) / 20 < 0.5 * sum(losses[:5]) / 5


def test_enumerate_states_order():
    st = enumerate_states(2, 3)
    assert st.shape == (9, 2) and st[5].tolist() == [1, 2]
    assert [tuple(r) for r in st.tolist()] == list(itertools.product(range(3), repeat=2))


def test_mask_sampler_keeps_revealed_tokens_whatever_the_network_says():
    """With the mask source a revealed token is the data's: the sampler uses the exact posterior delta_x
    there, not a network that would move it (here a uniform 'network')."""
    g = torch.Generator().manual_seed(0)
    x0 = source_sample((200, 6), S, "mask")
    _, path = sample_ctmc(lambda x, t: torch.full(x.shape + (S,), 1 / S), x0, S, Schedule(1.0), 8, g,
                          return_path=True)
    for a, b in zip(path[:-1], path[1:]):
        shown = a < S
        assert torch.equal(a[shown], b[shown])
    assert (path[-1] < S).all()
