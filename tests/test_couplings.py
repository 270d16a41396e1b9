"""Exact OT pairing against brute force over all pairings; the straight interpolant in closed form."""
from __future__ import annotations

import itertools

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
