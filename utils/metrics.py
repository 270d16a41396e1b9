"""Distances between point clouds for measuring sample quality (notebooks 04 to 07).

``w2(x, y)`` is the exact 2-Wasserstein distance between two equally
weighted clouds of the same size: the optimal transport plan between
uniform discrete measures of equal size is a permutation (Birkhoff), so it is
an assignment problem, solved exactly by scipy's Hungarian-type solver.
Always report it beside a finite-sample *floor*: the W2 between two samples
of the target itself (its mean and spread over seeds: ``w2_floor_stats``), and
beside a *baseline* (doing nothing): what the untouched source noise scores against the same
reference. The plug-in W2^2 between finite samples is biased *upwards*
(OT is convex in the two measures, so by Jensen E W2^2(mu_n, nu_n) >= W2^2(mu, nu));
the floor is that bias. Compare W2 values only at equal sample sizes.

W2 mixes two failures: samples off the data (fidelity) and data regions
without samples (diversity). ``precision_recall`` separates them with k-nearest-
neighbour balls (Kynkaanniemi et al. 2019, "Improved precision and recall
metric for assessing generative models"):

    w2(x, y); w2_floor(sampler, n); w2_floor_stats(sampler, n, pairs=5)
    w2_draws(sample, target, n, draws=8)       # the mean W2 over 8 fixed draws: about sqrt(8) less noise
    job = w2_async(x, y); ...; job.result()    # the same number, solved on another core meanwhile
    precision, recall = precision_recall(samples, reference, k=5)
"""
from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .errors import InputError, check_points
from .runtime import in_background

__all__ = ["optimal_assignment", "w2", "w2_async", "w2_floor", "w2_floor_stats", "w2_draws", "precision_recall"]


def _sq_dists(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    x, y = x.detach().double().cpu(), y.detach().double().cpu()
    return torch.cdist(x, y).pow(2).numpy()


def optimal_assignment(x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, cost): x[rows[k]] goes to y[cols[k]] in the pairing of least total squared distance."""
    cost = _sq_dists(x, y)
    rows, cols = linear_sum_assignment(cost)
    return rows, cols, cost


def _check_clouds(x, y) -> None:
    check_points(x, "x")
    check_points(y, "y")
    if x.shape != y.shape:
        raise InputError(f"w2 needs two clouds of the same shape (n, d); got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}. Subsample the larger one.")


def w2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Exact W2 between the empirical measures of x and y, each of shape (n, d)."""
    _check_clouds(x, y)
    rows, cols, cost = optimal_assignment(x, y)
    return float(np.sqrt(cost[rows, cols].mean()))


def w2_async(x: torch.Tensor, y: torch.Tensor) -> Future:
    """``w2(x, y)`` solved on a worker thread; ``.result()`` returns the same float.

    An exact W2 of 1000 points takes a few tenths of a second. Submitting several (or drawing the next
    sample while one is solved) uses every core of a laptop; the numbers are those of ``w2``.
    Bad input is reported here, at once, not when the result is read.
    """
    _check_clouds(x, y)
    return in_background(w2, x.detach().clone(), y.detach().clone())


def w2_floor(sampler, n: int = 1000, seeds: tuple[int, int] = (1001, 1002)) -> float:
    """W2 between two independent samples of size n from ``sampler(n, seed)``.

    What an i.i.d. sampler of the exact target scores, on average: the floor for models sampled
    i.i.d. (stratified samples, as notebook 04 uses, can score below it).
    """
    return w2(sampler(n, seeds[0]), sampler(n, seeds[1]))


def w2_floor_stats(sampler, n: int = 1000, pairs: int = 5, seed: int = 1001) -> tuple[float, float]:
    """(mean, sd) of W2 between independent n-samples of ``sampler(n, seed)``, over ``pairs`` pairs.

    The mean is the floor; the standard deviation is the sampling noise of one W2 measurement at this n,
    the spread against which differences between W2 values are judged. Seeds seed, seed + 1, ... are used.
    """
    if not isinstance(pairs, int) or pairs < 2:
        raise InputError(f"`pairs` must be an integer >= 2 (a spread needs two values), got {pairs!r}.")
    jobs = [w2_async(sampler(n, seed + 2 * k), sampler(n, seed + 2 * k + 1)) for k in range(pairs)]
    vals = [job.result() for job in jobs]
    mean = sum(vals) / pairs
    return mean, float(np.sqrt(sum((v - mean) ** 2 for v in vals) / (pairs - 1)))


def w2_draws(sample, target, n: int = 1000, draws: int = 8, noise_seed: int = 5000,
             data_seed: int = 6000) -> float:
    """The mean of ``draws`` exact W2s, draw k between ``sample(z_k)`` and ``target(n, data_seed + k)``.

    ``z_k`` is a fixed standard normal draw of shape (n, d) (generator seed ``noise_seed + k``, d the
    target's dimension), ``sample`` maps it to samples of the same shape. Every draw is fixed, so the
    number is a deterministic function of the sampler; averaging ``draws`` independent draws divides the
    sampling noise of one W2 (``w2_floor_stats``' sd) by about sqrt(draws), and keeps its floor (the mean
    W2 of two target samples of n points). The converged references judge their training on it.
    """
    if not isinstance(draws, int) or draws < 1:
        raise InputError(f"`draws` must be a positive integer, got {draws!r}.")
    jobs = []
    for k in range(draws):
        y = target(n, data_seed + k)
        z = torch.randn(n, y.shape[-1], generator=torch.Generator().manual_seed(noise_seed + k), dtype=y.dtype)
        with torch.no_grad():
            jobs.append(w2_async(sample(z), y))
    return float(np.mean([job.result() for job in jobs]))


def _kth_neighbour_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # the 0 distance to itself is the first


def precision_recall(samples: torch.Tensor, reference: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """k-NN precision and recall of ``samples`` against ``reference`` (Kynkaanniemi et al. 2019).

    Each point gets a ball reaching to its k-th nearest neighbour in its own cloud. Precision: the
    fraction of samples inside some reference ball (fidelity: samples look like data). Recall: the
    fraction of reference points inside some sample ball (diversity: the data is covered).
    Identical clouds score (1, 1); dropping a mode lowers recall; a shift lowers precision.
    """
    check_points(samples, "samples")
    check_points(reference, "reference", dim=samples.shape[1])
    if not isinstance(k, int) or k < 1 or k >= min(len(samples), len(reference)):
        raise InputError(f"`k` must be an integer with 1 <= k < the number of points in each cloud, got {k!r}.")
    x, y = samples.detach().double().cpu(), reference.detach().double().cpu()
    d = torch.cdist(x, y)  # (n, m)
    precision = (d <= _kth_neighbour_radius(y, k)[None, :]).any(1).double().mean()
    recall = (d <= _kth_neighbour_radius(x, k)[:, None]).any(0).double().mean()
    return float(precision), float(recall)
