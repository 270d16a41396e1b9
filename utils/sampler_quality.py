"""Sample quality of diffusion samplers against NFE, beside its floor and its do-nothing baseline
(notebooks 04 and 06, ``tools/bench/quality_04.py``).

W2 to the target against NFE, averaged over independent repeats, beside the finite-sample floor
and its spread, and the baseline (what the untouched noise scores):

    rows = quality_against_nfe(sde, score, target, sde_steps=[10, 100], ode=[("rk4", 5), ("dopri5", 1e-3)])
    floor, spread = w2_floor_spread(target, n=500)      # what an exact sample scores on average, and its spread
    baseline = w2_noise_baseline(sde, target, n=500)    # what the untouched noise x0 scores
"""
from __future__ import annotations

import math

import torch

from .mixtures import GaussianMixture
from .samplers import sample_ddim, sample_ddpm, sample_probability_flow, sample_reverse_sde
from .sde import Score, _SDE
from .runtime import progress

__all__ = ["w2_floor_spread", "w2_noise_baseline", "quality_against_nfe", "fewest_nfe"]


def w2_floor_spread(target: GaussianMixture, n: int = 500, pairs: int = 6, seed: int = 1000, s=0.0,
                    sde: _SDE | None = None) -> tuple[float, float]:
    """Mean and standard deviation of W2 between an exact n-sample and a stratified exact n-sample.

    This is what an exact i.i.d. sampler scores in :func:`quality_against_nfe` (whose references are
    stratified): the mean is the finite-sample floor (what an exact i.i.d. sample scores on average;
    a stratified sample scores less), the standard deviation the sampling noise of a single W2 measurement.
    With ``sde`` and ``s``: the same for the marginal at diffusion time s. Beside it, report the
    baseline, :func:`w2_noise_baseline`.
    """
    from .metrics import w2

    vals = [w2(target.sample(n, seed + 2 * k, s=s, sde=sde),
               target.sample(n, seed + 2 * k + 1, s=s, sde=sde, stratified=True)) for k in range(pairs)]
    mean = sum(vals) / pairs
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (pairs - 1))


def _clouds(sde: _SDE, target: GaussianMixture, n: int, repeats: int, seed: int, dtype: torch.dtype):
    """The shared set-up of :func:`quality_against_nfe` and :func:`w2_noise_baseline`: noise x0, references, W2."""
    from .metrics import w2

    dtype = dtype or torch.get_default_dtype()
    g = torch.Generator().manual_seed(seed)
    x0 = sde.prior_sample(n * repeats, g).to(dtype)  # drawn in the default dtype whatever dtype: one x0 for every dtype
    refs = [target.sample(n, seed + 101 + r, stratified=True, dtype=dtype) for r in range(repeats)]

    def quality(x):
        return sum(w2(x[r * n:(r + 1) * n], refs[r]) for r in range(repeats)) / repeats

    return x0, quality


def w2_noise_baseline(sde: _SDE, target: GaussianMixture, n: int = 500, repeats: int = 2, seed: int = 0,
                     dtype: torch.dtype | None = None) -> float:
    """What doing nothing scores: W2 of the untouched noise x0 of :func:`quality_against_nfe` (same n, repeats,
    seed) against the same references. A sampler no better than this has not produced samples at all."""
    x0, quality = _clouds(sde, target, n, repeats, seed, dtype)
    return quality(x0)


def quality_against_nfe(sde: _SDE, score: Score, target: GaussianMixture, sde_steps=(1, 10, 100, 1000),
                        ode=(("euler", 10), ("rk4", 5), ("dopri5", 1e-3)), n: int = 500, repeats: int = 2,
                        seed: int = 0, dtype: torch.dtype | None = None, desc: str = "sampler runs",
                        discrete=(), time_grid="uniform") -> list[dict]:
    """W2 between samples and the target for the reverse SDE and the probability flow ODE.

    Every run starts from the same noise: ``repeats`` independent clouds of ``n`` points, sampled
    together; each cloud is compared with its own stratified exact target sample and the W2 values
    are averaged. Compare with :func:`w2_floor_spread` at the same n (the floor) and with
    :func:`w2_noise_baseline` (what the untouched noise scores).
    ``sde_steps``: Euler-Maruyama step counts. ``ode``: (method, num_steps) pairs, or ("dopri5", tol).
    ``discrete``: (method, num_steps) pairs with method "ddpm" (ancestral, re-spaced) or "ddim" (eta = 0), on
    ``time_grid`` (``utils.samplers.make_time_grid``); their rows have sampler "DDPM" or "DDIM".
    ``dtype``: of the noise and the runs (float64 makes the numbers independent of the CPU's kernels;
    the score must accept it). A progress bar counts the runs (silenced under COURSE_QUIET=1).
    Returns rows with keys sampler ("SDE" or "ODE"), method, setting, nfe, w2.
    """
    x0, quality = _clouds(sde, target, n, repeats, seed, dtype)
    runs = [("SDE", "euler-maruyama", int(k)) for k in sde_steps] + [("ODE", m, v) for m, v in ode]
    runs += [(m.upper(), m, int(k)) for m, k in discrete]
    rows = []
    with torch.no_grad():
        for sampler, method, setting in progress(runs, desc=desc):
            if method == "ddpm":
                out = sample_ddpm(sde, score, x0, setting, generator=torch.Generator().manual_seed(seed + 1),
                                  time_grid=time_grid)
            elif method == "ddim":
                out = sample_ddim(sde, score, x0, setting, time_grid=time_grid)
            elif sampler == "SDE":
                out = sample_reverse_sde(sde, score, x0, setting, generator=torch.Generator().manual_seed(seed + 1))
            elif method == "dopri5":
                out = sample_probability_flow(sde, score, x0, method="dopri5", rtol=setting, atol=setting)
            else:
                out = sample_probability_flow(sde, score, x0, int(setting), method=method)
            rows.append(dict(sampler=sampler, method=method, setting=setting, nfe=out.nfe, w2=quality(out.x)))
    return rows


def fewest_nfe(rows: list[dict], sampler: str, bar: float) -> tuple[int, str] | None:
    """(nfe, method): the smallest NFE from which every run of one of ``sampler``'s methods scores at most ``bar``.

    ``rows`` as returned by :func:`quality_against_nfe`; None when no method gets there and stays.
    """
    best = None
    for method in sorted({r["method"] for r in rows if r["sampler"] == sampler}):
        runs = sorted((r["nfe"], r["w2"]) for r in rows if r["method"] == method)
        ok = [nfe for i, (nfe, _) in enumerate(runs) if all(q <= bar for _, q in runs[i:])]
        if ok and (best is None or ok[0] < best[0]):
            best = (ok[0], method)
    return best
