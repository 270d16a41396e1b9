"""Straightness, reflow and the few-step showdown (taught in notebook 06; over seeds in ``make bench``).

    pe, x1 = path_energy(v_theta, x0, num_steps=100)        # E int_0^1 |v(x_t, t)|^2 dt along Euler paths
    npe = normalized_path_energy(v_theta, x0, x1_data)       # |PE - W2^2| / W2^2 (Tong et al. 2024)
    x0, x1_hat = reflow_pairs(v_theta, x0, num_steps=100)    # pairs of a trained flow (Liu et al. 2023)
    samplers = {...}; table = quality_vs_nfe(samplers, x0, reference, nfe_list)

A sampler is a function ``sampler(x0, nfe) -> samples`` that spends ``nfe``
network evaluations: Euler steps for flows and for the probability flow ODE,
Euler-Maruyama steps for the reverse SDE (samplers from ``utils.sde``).
``flow_sampler(v, "midpoint")`` spends two evaluations a step, so it takes nfe // 2 steps.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .errors import InputError, check_points
from .metrics import w2, w2_async
from .runtime import progress
from .solvers import solve_ode

__all__ = ["path_energy", "normalized_path_energy", "reflow_pairs", "flow_sampler", "sde_samplers", "ddpm_sampler",
           "quality_vs_nfe", "nfe_to_reach"]

EVALS_PER_STEP = {"euler": 1, "midpoint": 2, "rk4": 4}


@torch.no_grad()
def path_energy(v_theta: Callable, x0: torch.Tensor, num_steps: int = 100) -> tuple[float, torch.Tensor]:
    """(PE, x1): PE = mean over particles of sum_k |v(x_k, t_k)|^2 dt along the Euler path from x0."""
    check_points(x0, "x0")
    sol = solve_ode(v_theta, x0, num_steps=num_steps, method="euler", return_path=True)
    dt = 1.0 / num_steps
    energy = sum((((sol.path[k + 1] - sol.path[k]) / dt) ** 2).sum(1) * dt for k in range(num_steps))
    return float(energy.mean()), sol.x


def normalized_path_energy(v_theta: Callable, x0: torch.Tensor, x1_data: torch.Tensor,
                           num_steps: int = 100) -> float:
    """NPE = |PE - W2^2(x0, x1_data)| / W2^2(x0, x1_data): 0 for the straight-line OT flow (exercise 6.3)."""
    pe, _ = path_energy(v_theta, x0, num_steps)
    w2_sq = w2(x0, x1_data) ** 2
    return abs(pe - w2_sq) / w2_sq


@torch.no_grad()
def reflow_pairs(v_theta: Callable, x0: torch.Tensor, num_steps: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, x1_hat): each noise sample paired with where the trained flow takes it (exercise 6.4)."""
    check_points(x0, "x0")
    return x0, solve_ode(v_theta, x0, num_steps=num_steps, method="euler").x


def flow_sampler(v_theta: Callable, method: str = "euler") -> Callable:
    """sampler(x0, nfe): ``method`` on a learned field v(x, t) from t=0 to t=1, spending ``nfe`` evaluations.

    Euler takes nfe steps, midpoint nfe // 2, RK4 nfe // 4 (nfe must be a multiple of the cost of a step).
    """
    if method not in EVALS_PER_STEP:
        raise InputError(f"`method` must be one of {sorted(EVALS_PER_STEP)}, got {method!r}.")
    cost = EVALS_PER_STEP[method]

    @torch.no_grad()
    def sample(x0, nfe):
        if not isinstance(nfe, int) or nfe < cost or nfe % cost:
            raise InputError(f"{method} spends {cost} evaluation(s) a step: `nfe` must be a positive multiple "
                             f"of {cost}, got {nfe!r}.")
        return solve_ode(v_theta, x0, num_steps=nfe // cost, method=method).x
    return sample


def sde_samplers(sde, score, seed: int = 0) -> dict[str, Callable]:
    """The reverse SDE (Euler-Maruyama) and the probability flow ODE (Euler) of notebook 04's learned score."""
    from .samplers import sample_probability_flow, sample_reverse_sde

    @torch.no_grad()
    def reverse(x0, nfe):
        return sample_reverse_sde(sde, score, x0, num_steps=nfe, generator=torch.Generator().manual_seed(seed)).x

    @torch.no_grad()
    def ode(x0, nfe):
        return sample_probability_flow(sde, score, x0, num_steps=nfe, method="euler").x

    return {"reverse SDE": reverse, "probability flow ODE": ode}


def ddpm_sampler(sde, score, seed: int = 0) -> Callable:
    """DDPM's ancestral sampler re-spaced on ``nfe`` uniform steps (``utils.samplers.sample_ddpm``), on the same
    learned score: the stochastic sampler diffusion models use, which treats the linear drift exactly."""
    from .samplers import sample_ddpm

    @torch.no_grad()
    def ddpm(x0, nfe):
        return sample_ddpm(sde, score, x0, num_steps=nfe, generator=torch.Generator().manual_seed(seed)).x

    return ddpm


def quality_vs_nfe(samplers: dict[str, Callable], x0: torch.Tensor, reference: torch.Tensor,
                   nfe_list: list[int], samples: dict | None = None) -> dict[str, list[float]]:
    """W2 to ``reference`` of each sampler's samples at each NFE: {name: [w2 at nfe_list[0], ...]}.

    Pass a dict as ``samples`` to keep the samples too: ``samples[name, nfe]`` (so that other metrics
    need not draw them again). Each W2 is solved on a worker thread while the next sample is drawn.
    """
    if samples is not None and not isinstance(samples, dict):
        raise InputError(f"`samples` must be a dict to fill (or None), got {type(samples).__name__}.")
    if x0.shape != reference.shape:
        raise InputError(f"x0 and reference must have the same shape, got {tuple(x0.shape)} and "
                         f"{tuple(reference.shape)}.")
    jobs = {}
    for name in progress(list(samplers), desc="sampler"):  # an overall line, "sampler 2 of 6: ..."
        sampler = samplers[name]
        for nfe in nfe_list:
            x = sampler(x0, nfe)
            if samples is not None:
                samples[name, nfe] = x
            jobs[name, nfe] = w2_async(x, reference) if torch.isfinite(x).all() else None
    return {name: [math.inf if jobs[name, nfe] is None else jobs[name, nfe].result() for nfe in nfe_list]
            for name in samplers}


def nfe_to_reach(scores: list[float], nfe_list: list[int], target: float) -> int | None:
    """The smallest NFE in ``nfe_list`` whose W2 is at most ``target`` (None if none is)."""
    for nfe, s in zip(nfe_list, scores):
        if s <= target:
            return nfe
    return None
