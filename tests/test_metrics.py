"""W2, its floor and spread, and k-NN precision/recall on cases with known answers."""
from __future__ import annotations

import math

import pytest
import torch

from utils.datasets import moons
from utils.errors import InputError
from utils.metrics import precision_recall, w2, w2_async, w2_draws, w2_floor, w2_floor_stats


def _blobs(n, centres, seed, std=0.1):
    g = torch.Generator().manual_seed(seed)
    c = torch.tensor(centres, dtype=torch.float64)
    k = torch.arange(n) % len(c)
    return c[k] + std * torch.randn(n, 2, generator=g, dtype=torch.float64)


def test_w2_of_a_translation_and_of_a_permutation():
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert w2(x, x[torch.randperm(200)]) == pytest.approx(0.0, abs=1e-6)  # sqrt of rounding in cdist
    # the optimal plan between a cloud and its translate is the identity: W2 = |shift|
    assert w2(x, x + torch.tensor([0.3, -0.4], dtype=torch.float64)) == pytest.approx(0.5, rel=1e-9)


def test_w2_async_gives_w2s_number_and_reports_bad_input_at_once():
    clouds = [(moons(300, 2 * k), moons(300, 2 * k + 1) + 0.1 * k) for k in range(5)]
    jobs = [w2_async(x, y) for x, y in clouds]  # solved on worker threads, meanwhile
    assert [job.result() for job in jobs] == [w2(x, y) for x, y in clouds]  # bit for bit
    x = moons(10, 0)
    x_later = x.clone()
    job = w2_async(x, moons(10, 1))
    x += 100.0  # changing the caller's tensor after submitting does not change the result
    assert job.result() == w2(x_later, moons(10, 1))
    with pytest.raises(InputError, match="same shape"):
        w2_async(moons(10, 0), moons(11, 1))
    with pytest.raises(InputError):
        w2_async(torch.full((4, 2), float("nan")), moons(4, 1))


def test_floor_stats_mean_and_spread():
    mean, sd = w2_floor_stats(moons, n=200, pairs=4, seed=11)
    vals = [w2(moons(200, 11 + 2 * k), moons(200, 12 + 2 * k)) for k in range(4)]
    assert mean == pytest.approx(sum(vals) / 4, rel=1e-12)
    assert sd == pytest.approx(torch.tensor(vals).std().item(), rel=1e-6) and sd > 0
    assert w2_floor(moons, 200, seeds=(11, 12)) == pytest.approx(vals[0])
    with pytest.raises(InputError, match="pairs"):
        w2_floor_stats(moons, n=50, pairs=1)


def test_w2_draws_is_the_mean_of_its_fixed_draws_with_less_noise():
    shift = torch.tensor([0.3, 0.0], dtype=torch.float64)
    sample = lambda z: 0.5 * z + shift  # noqa: E731  a map of the noise, as a sampler is
    target = lambda n, seed: moons(n, seed).double()  # noqa: E731
    by_hand = [w2(sample(torch.randn(150, 2, generator=torch.Generator().manual_seed(40 + k), dtype=torch.float64)),
                  target(150, 90 + k)) for k in range(3)]
    value = w2_draws(sample, target, n=150, draws=3, noise_seed=40, data_seed=90)
    assert value == pytest.approx(sum(by_hand) / 3, rel=1e-12)
    assert w2_draws(sample, target, n=150, draws=3, noise_seed=40, data_seed=90) == value  # fixed draws
    # the noise of the mean of 8 draws is about 1 / sqrt(8) of one draw's (two samples of the target)
    same = lambda z: target(len(z), int(1000 * z[0, 0].abs()) % 997)  # noqa: E731  a fresh target sample
    one = torch.tensor([w2_draws(same, target, n=150, draws=1, noise_seed=8 * r, data_seed=500 + 8 * r)
                        for r in range(12)])
    eight = torch.tensor([w2_draws(same, target, n=150, draws=8, noise_seed=8 * r, data_seed=500 + 8 * r)
                          for r in range(12)])
    assert eight.std() < 0.6 * one.std()
    assert abs(eight.mean() - one.mean()) < 2 * one.std() / 12 ** 0.5 + 2 * eight.std() / 12 ** 0.5  # the same floor
    with pytest.raises(InputError, match="draws"):
        w2_draws(sample, target, n=10, draws=0)


def test_floor_falls_with_n_the_plug_in_w2_is_biased_upwards():
    # two samples of ONE distribution: the true W2 is 0, the plug-in estimate is positive and falls with n
    small = sum(w2(moons(100, 2 * k), moons(100, 2 * k + 1)) ** 2 for k in range(4)) / 4
    large = sum(w2(moons(800, 2 * k), moons(800, 2 * k + 1)) ** 2 for k in range(4)) / 4
    assert large > 0 and small > 1.5 * large


def test_identical_samples_score_one_and_one():
    x = _blobs(300, [[0, 0], [3, 0]], seed=1)
    assert precision_recall(x, x.clone()) == (1.0, 1.0)
    assert precision_recall(x, x[torch.randperm(300)], k=3) == (1.0, 1.0)


def test_a_dropped_mode_lowers_recall_not_precision():
    reference = _blobs(400, [[0, 0], [4, 0]], seed=2)
    one_mode = _blobs(400, [[0, 0]], seed=3)
    precision, recall = precision_recall(one_mode, reference)
    assert precision > 0.9
    assert recall == pytest.approx(0.5, abs=0.06)  # the right-hand mode (half the data) is not covered


def test_a_shift_lowers_precision():
    reference = _blobs(400, [[0, 0], [4, 0]], seed=4)
    fresh = _blobs(400, [[0, 0], [4, 0]], seed=5)
    p_same, r_same = precision_recall(fresh, reference)
    p_shift, r_shift = precision_recall(fresh + torch.tensor([0.6, 0.0], dtype=torch.float64), reference)
    assert p_same > 0.85 and r_same > 0.85
    assert p_shift < 0.2 and p_shift < p_same - 0.6
    far = fresh + 100.0
    assert precision_recall(far, reference) == (0.0, 0.0)


def test_precision_recall_counts_a_ball_by_hand():
    # reference points 0, 1, 2, 10 on a line (k = 1): radii 1, 1, 1, 8; a sample at 5 lies in the ball of 10 only
    ref = torch.tensor([[0.0, 0], [1, 0], [2, 0], [10, 0]])
    samples = torch.tensor([[5.0, 0], [0.5, 0], [30, 0], [1.5, 0]])
    precision, recall = precision_recall(samples, ref, k=1)
    assert precision == pytest.approx(3 / 4)
    # sample radii (k = 1): 1.0, 1.0, 25, 1.0 -> reference 0, 1, 2 covered by 0.5 and 1.5; 10 by 30's ball
    assert recall == pytest.approx(1.0)
    assert math.isclose(precision_recall(samples[:3], ref[:3], k=1)[0], 1 / 3)


def test_precision_recall_rejects_bad_input():
    x = torch.randn(10, 2)
    with pytest.raises(InputError, match="k"):
        precision_recall(x, x, k=10)
    with pytest.raises(InputError):
        precision_recall(x, torch.randn(10, 3))
