"""Exact OT pairing against brute force over all pairings; the straight interpolant in closed form."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from utils.couplings import ot_couple, ot_permutation, pairing_cost, straight_pair
from utils.errors import InputError
from utils.metrics import w2


@pytest.mark.parametrize("seed", range(4))
def test_ot_couple_is_the_best_of_all_pairings(seed):
    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(7, 2, generator=g), torch.randn(7, 2, generator=g) + 1
    brute = min(((x0[list(p)] - x1) ** 2).sum(1).mean().item() for p in itertools.permutations(range(7)))
    y0, y1 = ot_couple(x0, x1)
    assert torch.equal(y1, x1)
    assert sorted(map(tuple, y0.tolist())) == sorted(map(tuple, x0.tolist()))  # a reordering of x0
    assert pairing_cost(y0, y1) == pytest.approx(brute, rel=1e-6)
    assert pairing_cost(y0, y1) == pytest.approx(w2(x0, x1) ** 2, rel=1e-6)


def test_ot_couple_undoes_a_shuffle_of_a_small_shift():
    x1 = torch.randn(50, 2, generator=torch.Generator().manual_seed(1)) * 3
    perm = torch.randperm(50, generator=torch.Generator().manual_seed(2))
    x0 = (x1 + 0.01)[perm]
    assert torch.allclose(ot_couple(x0, x1)[0], x1 + 0.01)
    assert torch.equal(perm[ot_permutation(x0, x1)], torch.arange(50))


def test_ot_pairs_do_not_cross_in_1d():
    g = torch.Generator().manual_seed(3)
    x0, x1 = torch.randn(30, 1, generator=g), torch.randn(30, 1, generator=g) * 2 + 1
    y0, _ = ot_couple(x0, x1)
    # in 1D the optimal plan is monotone: sorted x1 gets sorted x0
    order = x1[:, 0].argsort()
    assert torch.all(y0[order, 0].diff() >= 0)


def test_straight_pair_closed_form_and_errors():
    g = torch.Generator().manual_seed(4)
    x0, x1, t = torch.randn(10, 2, generator=g), torch.randn(10, 2, generator=g), torch.rand(10, generator=g)
    xt, ut = straight_pair(x0, x1, t)
    assert torch.allclose(xt, (1 - t[:, None]) * x0 + t[:, None] * x1) and torch.allclose(ut, x1 - x0)
    xs, _ = straight_pair(x0, x1, t, sigma=0.1, generator=torch.Generator().manual_seed(5))
    eps = torch.randn(10, 2, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(xs, xt + 0.1 * eps)
    with pytest.raises(InputError, match="same shape"):
        ot_couple(x0, x1[:5])
    with pytest.raises(InputError, match="sigma"):
        straight_pair(x0, x1, t, sigma=-1.0)


def test_segment_crossings_and_time_gaps_by_hand():
    from utils.couplings import crossing_time_gaps, non_monotone_pairs, segment_crossings
    # an X: (-1, -1) -> (1, 1) and (-1, 1) -> (1, -1) cross at the origin, both at t = 1/2: they meet
    x0 = torch.tensor([[-1.0, -1.0], [-1.0, 1.0]])
    x1 = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    assert segment_crossings(x0, x1) == 1
    assert crossing_time_gaps(x0, x1).tolist() == pytest.approx([0.0])
    assert non_monotone_pairs(x0, x1) == 1  # <x0_0 - x0_1, x1_0 - x1_1> = -4: a swap shortens it
    # the review's example: a = 2u -> b = -u and c = w -> d = -2w, u, w nearly parallel: the segments cross
    # at the origin at t = 2/3 and t = 1/3, the pairs are monotone (5 cos(theta) - 4 > 0) and OT-optimal
    th = 0.2
    u, w = torch.tensor([1.0, 0.0]), torch.tensor([math.cos(th), math.sin(th)])
    x0, x1 = torch.stack([2 * u, w]), torch.stack([-u, -2 * w])
    assert segment_crossings(x0, x1) == 1
    assert crossing_time_gaps(x0, x1).tolist() == pytest.approx([1 / 3], rel=1e-6)
    assert non_monotone_pairs(x0, x1) == 0
    assert torch.equal(ot_couple(x0, x1)[0], x0)  # this crossing pairing is the optimal one
    # parallel and disjoint segments do not cross
    assert segment_crossings(torch.tensor([[0.0, 0], [0, 1]]), torch.tensor([[1.0, 0], [1, 1]])) == 0
    with pytest.raises(InputError, match="plane"):
        segment_crossings(torch.zeros(3, 3), torch.ones(3, 3))


@pytest.mark.parametrize("seed", range(3))
def test_optimal_pairs_never_meet_at_the_same_time(seed):
    from utils.couplings import crossing_time_gaps, non_monotone_pairs, segment_crossings
    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(60, 2, generator=g) * 2, torch.randn(60, 2, generator=g) * torch.tensor([0.3, 2.0])
    y0, y1 = ot_couple(x0, x1)
    assert non_monotone_pairs(y0, y1) == 0  # cyclical monotonicity on every 2-cycle
    gaps = crossing_time_gaps(y0, y1)
    assert len(gaps) == segment_crossings(y0, y1) and (gaps > 0).all()
    # random pairs: many pairs a swap would shorten
    assert non_monotone_pairs(x0, x1) > 100
