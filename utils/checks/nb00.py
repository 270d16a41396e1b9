"""Checks of notebook 00 (welcome): sampling by push-forward."""
from __future__ import annotations

import torch

from .core import CheckFailure, exercise
from .expect import call, close, expect_tensor, fmt

NB = "00_welcome"


def sample_pushforward(f, n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """Reference for 0.1: draw z ~ N(0, I_d), shape (n, d), with ``generator``; return f(z)."""
    z = torch.randn(n, d, generator=generator)
    return f(z)


_SHIFT = torch.tensor([3.0, -1.0, 0.5])


def _f(z):
    """The test map: x = 2 z + shift (d <= 3). Its inverse recovers the base samples exactly."""
    return 2.0 * z + _SHIFT[: z.shape[1]].to(z.dtype)


def _draw(kind: str, n: int, d: int, seed: int) -> torch.Tensor:
    """The base samples a known mistake draws, with the same seed as the check."""
    g = torch.Generator().manual_seed(seed)
    if kind == "randn":
        return torch.randn(n, d, generator=g)
    if kind == "rand":
        return torch.rand(n, d, generator=g)
    if kind == "float64":
        return torch.randn(n, d, generator=g, dtype=torch.float64)
    if kind == "transposed":
        return torch.randn(d, n, generator=g).T
    if kind == "one_column":
        return torch.randn(n, 1, generator=g).expand(n, d)
    if kind == "one_row":
        return torch.randn(1, d, generator=g).expand(n, d)
    if kind == "row_by_row":
        return torch.stack([torch.randn(d, generator=g) for _ in range(n)])
    raise ValueError(kind)


@exercise("0.1", title="Sample by push-forward", notebook=NB, answer="sample_pushforward",
          reference=sample_pushforward, minutes=5,
          practises="sampling a push-forward x = f(z); seeded random generators")
def check_0_1(answer):
    n, d, seed = 500, 2, 1
    got = call(answer, _f, n, d, torch.Generator().manual_seed(seed), name="sample_pushforward")
    got = expect_tensor(got, (n, d), f"sample_pushforward(f, {n}, {d}, generator)")
    ref = _f(_draw("randn", n, d, seed))
    if close(got, ref, atol=1e-6, rtol=1e-6):
        # d = 3 as well: the answer must use d, not a hard-coded 2
        got3 = call(answer, _f, 40, 3, torch.Generator().manual_seed(2), name="sample_pushforward")
        got3 = expect_tensor(got3, (40, 3), "sample_pushforward(f, 40, 3, generator)")
        if not close(got3, _f(_draw("randn", 40, 3, 2)), atol=1e-6, rtol=1e-6):
            raise CheckFailure("With d = 2 your samples are right, but with n = 40, d = 3 they are not "
                               "f(torch.randn(40, 3, generator=generator)): use the arguments n and d.")
        return "Same generator, same samples: your sampler is reproducible."
    # named mistakes, each recognised by recomputing it with the same seed
    mistakes = [
        (_draw("randn", n, d, seed), "You returned the base samples z themselves: apply the map, x = f(z)."),
        (_f(_draw("rand", n, d, seed)), "Your base samples are uniform on [0, 1) (torch.rand): the base is "
                                        "N(0, I), which is torch.randn."),
        (_f(_f(_draw("randn", n, d, seed))), "You applied f twice: draw z, then return f(z) once."),
        (_f(_draw("float64", n, d, seed)), "You drew z in float64: a generator gives other numbers for another "
                                           "dtype. Draw torch.randn(n, d, generator=generator) in the default "
                                           "dtype."),
        (_f(_draw("transposed", n, d, seed)), "You drew a (d, n) tensor and transposed it: the numbers land in "
                                              "other places than in one torch.randn(n, d, generator=generator)."),
        (_f(_draw("one_column", n, d, seed)), "Every coordinate of a sample is the same number: you drew one "
                                              "number per sample and repeated it. The d coordinates of z must "
                                              "be independent: draw torch.randn(n, d, generator=generator)."),
        (_f(_draw("one_row", n, d, seed)), "Every sample is the same point: you drew one z and repeated it n "
                                           "times. Draw n independent samples, torch.randn(n, d, "
                                           "generator=generator)."),
        (_f(_draw("row_by_row", n, d, seed)), "You drew the samples one row at a time: with the same generator "
                                              "that gives other numbers than one torch.randn(n, d, "
                                              "generator=generator). Draw them as one tensor of shape (n, d)."),
    ]
    for wrong, message in mistakes:
        if close(got, wrong, atol=1e-6, rtol=1e-6):
            raise CheckFailure(message)
    again = call(answer, _f, n, d, torch.Generator().manual_seed(seed), name="sample_pushforward")
    if not isinstance(again, torch.Tensor) or not torch.equal(got, again):
        raise CheckFailure("Two calls with generators seeded alike gave different samples: pass "
                           "`generator=generator` to torch.randn so that results are reproducible.")
    other = call(answer, _f, n, d, torch.Generator().manual_seed(seed + 1), name="sample_pushforward")
    if isinstance(other, torch.Tensor) and torch.equal(got, other):
        raise CheckFailure("Generators with different seeds gave the same samples: your samples do not come "
                           "from `generator` (a seed of your own, or a fixed tensor?). Draw them with "
                           "torch.randn(n, d, generator=generator).")
    # no named mistake fits: describe the samples. z = f^-1(x) = (x - shift) / 2 should be N(0, I):
    # with n = 500, a mean has standard deviation 1/sqrt(500) = 0.045, a standard deviation about
    # 1/sqrt(1000) = 0.032 and a correlation about 0.045; the bounds below are about 4.5 of those.
    # They only choose between messages for an answer already rejected.
    z = ((got.double() - _SHIFT[:d].double()) / 2)
    mean, std = z.mean(0), z.std(0)
    corr = float(torch.corrcoef(z.T)[0, 1])
    looks_normal = mean.abs().max() < 0.2 and (std - 1).abs().max() < 0.15 and abs(corr) < 0.2
    if looks_normal:
        raise CheckFailure("Your samples look like f(z) with z ~ N(0, I) (base mean "
                           f"{fmt(mean, 2)}, std {fmt(std, 2)}, correlation {corr:.2f}), but they are not "
                           "the values the generator gives: draw exactly one torch.randn(n, d, "
                           "generator=generator), then apply f.")
    raise CheckFailure(f"For f(z) = 2 z + [3, -1] the base samples z = (x - [3, -1]) / 2 should have mean about "
                       f"[0, 0], standard deviation about [1, 1] and uncorrelated coordinates; yours have mean "
                       f"{fmt(mean, 2)}, std {fmt(std, 2)} and correlation {corr:.2f}.")
