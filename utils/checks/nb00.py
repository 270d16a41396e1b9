"""Checks of notebook 00 (welcome): sampling by push-forward."""
from __future__ import annotations

import torch

from .core import CheckFailure, call, exercise, expect_tensor, fmt

NB = "00_welcome"


def sample_pushforward(f, n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """Reference for 0.1: draw z ~ N(0, I_d), shape (n, d), with ``generator``; return f(z)."""
    z = torch.randn(n, d, generator=generator)
    return f(z)


@exercise("0.1", title="Sample by push-forward", notebook=NB, answer="sample_pushforward",
          reference=sample_pushforward, minutes=5,
          practises="sampling a push-forward x = f(z); seeded random generators")
def check_0_1(answer):
    f = lambda z: 2.0 * z + torch.tensor([3.0, -1.0])  # noqa: E731
    got = call(answer, f, 500, 2, torch.Generator().manual_seed(1), name="sample_pushforward")
    got = expect_tensor(got, (500, 2), "sample_pushforward(f, 500, 2, generator)")
    ref = sample_pushforward(f, 500, 2, torch.Generator().manual_seed(1))
    if torch.allclose(got, ref):
        return "Same generator, same samples: your sampler is reproducible."
    ident = sample_pushforward(lambda z: z, 500, 2, torch.Generator().manual_seed(1))
    if torch.allclose(got, ident):
        raise CheckFailure("You returned the base samples z themselves: apply the map, x = f(z).")
    mean, std = got.mean(0), got.std(0)
    z_mean, z_std = (mean - torch.tensor([3.0, -1.0])) / 2, std / 2
    if (z_mean - 0.5).abs().max() < 0.1 and (z_std - 0.29).abs().max() < 0.05:
        raise CheckFailure("Your base samples look uniform on [0, 1] (mean 0.5, std 0.29): "
                           "the base is N(0, I), which is torch.randn, not torch.rand.")
    again = call(answer, f, 500, 2, torch.Generator().manual_seed(1), name="sample_pushforward")
    if not torch.allclose(got, again):
        raise CheckFailure("Two calls with generators seeded alike gave different samples: pass "
                           "`generator=generator` to torch.randn so that results are reproducible.")
    if (z_mean.abs().max() < 0.2) and ((z_std - 1).abs().max() < 0.15):
        raise CheckFailure("The samples have the right distribution but not the values the generator "
                           "gives: draw exactly one torch.randn(n, d, generator=generator), then apply f.")
    raise CheckFailure(f"The samples should have mean about [3, -1] and standard deviation about [2, 2] "
                       f"for f(z) = 2z + [3, -1]; got mean {fmt(mean, 2)} and std {fmt(std, 2)}.")
