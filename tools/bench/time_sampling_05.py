"""Notebook 05's VP-path recipe trained three ways: where in time the loss looks (content review, G6).

Notebook 05 finds that the VP path's CFM loss barely sees the times near the noise (t < 0.1 makes
under 1 % of it) and names two remedies without running them. This module runs them on the notebook's
own recipe (``utils.cfm_references``: a ``TimeMLP`` built right after ``seed_everything(seed)`` in
float64, Adam 1e-3 constant, batches of 256 fresh moons from the seeded generator, ``STEPS`` steps,
the length of the converged reference ``05_fm_vp``), changing only how the times are drawn or weighted:

- ``uniform``: the course's step, ``utils.cfm.training_step`` itself (t ~ U[0, T_MAX)). Its seed 0 is
  the converged reference ``05_fm_vp`` step for step, and its first 1000 steps notebook 05's live model.
- ``logit-normal``: t = sigmoid(m + s n), n ~ N(0, 1) (Esser et al. 2024), with m = ``LOC`` = -1 and
  s = ``SCALE`` = 1.5, capped at T_MAX. Esser et al.'s default (0, 1) favours the middle times, the hard
  ones on a straight path, and would draw fewer times below 0.1 than uniform sampling does (1.4 %
  against 10 %); moved towards the noise, (-1, 1.5) draws twice uniform's share below 0.1 (21 %) while
  still drawing about 2 % above 0.9, where the samples get their detail (a stronger shift starves those).
- ``weighted``: uniform times, each sample's loss multiplied by lambda(t) = sigma_t^2 / (a_t')^2
  (``loss_weight``), the inverse of the target's variance per coordinate for data of unit variance (the
  moons are scaled to about that): with x_t = a_t x_1 + sigma_t x_0, a_t = alpha_{1-t}, the target is
  u = a_t' x_1 + sigma_t' x_0 with sigma_t' = -a_t a_t' / sigma_t, so E|u|^2 / d = (a_t')^2 (1 + a_t^2 /
  sigma_t^2) = (a_t')^2 / sigma_t^2. Every time then carries about the same irreducible loss: lambda is
  about 220 at t = 0 and falls below 0.1 near t = 1 (Adam ignores its overall scale).

Metrics, after ``LIVE_STEPS`` (the notebook's live length) and after ``STEPS``: ``w2_100``, the judged
metric of the 05 references (``evaluate_moons_fm``: exact W2 of 1000 samples at 100 Euler steps from
a fixed noise draw against 1000 held-out moons points), W2 at ``NFES`` Euler steps on the same noise and
points, and ``err_t0``: the mean |v_theta(x0, 0) - u_0(x0)| over that noise, against the exact marginal
field of 2000 moons points (notebook 05's diagnosis of the one-step VP sampler).

    nice -n 10 python -m tools.bench.time_sampling_05          # all variants and seeds (~10 min, one core)
    python -m tools.bench.time_sampling_05 --seeds 0 --steps 200 --out /tmp/ts.json   # a quick look

writes ``weights/05_time_sampling.json`` (per variant: per-seed metrics, mean and sd over the seeds; the
recipe, the code hash, wall time and machine). Notebook 05 reads it in milliseconds;
``tests/test_time_sampling.py`` checks it against the code.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

from utils.cfm import T_MAX, cfm_loss, training_step
from utils.cfm_references import RECIPE, evaluate_moons_fm, fm_path
from utils.cfm_references import STEPS as REFERENCE_STEPS
from utils.datasets import moons
from utils.metrics import w2
from utils.models import TimeMLP
from utils.paths import GaussianPath
from utils.references import WEIGHTS_DIR, _float64, _machine, _normalised_source
from utils.runtime import seed_everything, seed_shift
from utils.solvers import solve_ode

OUT = WEIGHTS_DIR / "05_time_sampling.json"
VARIANTS = ("uniform", "logit-normal", "weighted")
LOC, SCALE = -1.0, 1.5  # the logit-normal's location and scale (module docstring: why)
STEPS = REFERENCE_STEPS  # the converged reference's length: uniform seed 0 is 05_fm_vp
LIVE_STEPS = 1000  # notebook 05's live run
SEEDS = (0, 1, 2, 3, 4)
NFES = (1, 2, 4, 16)
PROBE_STEPS = 20  # the first losses of seed 0, stored so that a test can rerun them


def loss_weight(path: GaussianPath, t: torch.Tensor) -> torch.Tensor:
    """lambda(t) = sigma_t^2 / (a_t')^2: the inverse of the CFM target's variance per coordinate (unit data)."""
    _, sigma, da, _ = path.schedule(t)
    return (sigma**2 / da**2).reshape(-1)


def logit_normal_times(n: int, generator: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    """t = sigmoid(LOC + SCALE * N(0, 1)), capped at T_MAX (the VP field is singular at t = 1)."""
    return torch.sigmoid(LOC + SCALE * torch.randn(n, generator=generator, dtype=dtype)).clamp(max=T_MAX)


def variant_step(variant: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, path: GaussianPath,
                 x1: torch.Tensor, generator: torch.Generator) -> float:
    """One step of ``variant``; "uniform" is the course's ``training_step`` unchanged."""
    if variant == "uniform":
        return training_step(model, optimizer, path, x1, generator)
    x0 = torch.randn(x1.shape, generator=generator, dtype=x1.dtype)
    if variant == "logit-normal":
        loss = cfm_loss(model, path, x0, x1, logit_normal_times(x1.shape[0], generator, x1.dtype))
    elif variant == "weighted":
        t = torch.rand(x1.shape[0], generator=generator, dtype=x1.dtype) * T_MAX
        xt = path.sample(x0, x1, t)
        residual = ((model(xt, t) - path.velocity(xt, x1, t)) ** 2).sum(dim=1)  # cfm_loss, before its mean
        loss = (loss_weight(path, t) * residual).mean()
    else:
        raise ValueError(f"unknown variant {variant!r}; one of {VARIANTS}")
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@torch.no_grad()
def evaluate(model: torch.nn.Module, path: GaussianPath) -> dict:
    """``evaluate_moons_fm`` (w2_100, ...), W2 at each of ``NFES`` Euler steps, and ``err_t0``."""
    metrics = evaluate_moons_fm(model, path)
    x0 = torch.randn(1000, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)  # its noise
    ref = moons(1000, seed=1001).double()  # and its held-out points
    for k in NFES:
        metrics[f"w2_{k}"] = w2(solve_ode(model, x0, 0.0, 1.0, num_steps=k, method="euler").x, ref)
    exact = path.marginal_velocity(x0, moons(2000, seed=5).double(), 0.0)
    metrics["err_t0"] = (model(x0, torch.zeros(len(x0), dtype=torch.float64)) - exact).norm(dim=1).mean().item()
    return {k: float(v) for k, v in metrics.items()}


@torch.no_grad()
def reference_scores() -> dict:
    """The scale of the W2s: the floor (a second sample of 1000 moons points) and the do-nothing baseline
    (the untouched noise), against ``evaluate``'s points; and the exact field's mean size at t = 0."""
    x0 = torch.randn(1000, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    ref = moons(1000, seed=1001).double()
    exact = fm_path("vp").marginal_velocity(x0, moons(2000, seed=5).double(), 0.0)
    return dict(floor=w2(moons(1000, seed=2001).double(), ref), baseline=w2(x0, ref),
                exact_t0=exact.norm(dim=1).mean().item())


def train_variant(variant: str, seed: int, steps: int = STEPS, checkpoints=(LIVE_STEPS,),
                  probe: int = 0) -> dict:
    """Train notebook 05's VP recipe with ``variant`` from seed ``seed`` (float64, one thread).

    Returns metrics at each checkpoint below ``steps`` and at ``steps``, the training seconds
    (evaluations excluded) and, with ``probe`` > 0, the first ``probe`` losses.
    """
    path = fm_path("vp")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out, losses, paused = {}, [], 0.0
    try:
        with _float64():
            generator = seed_everything(seed)
            model = TimeMLP()
            optimizer = torch.optim.Adam(model.parameters(), lr=RECIPE["lr"])  # as train_moons_fm
            start = time.perf_counter()
            for step in range(1, steps + 1):
                loss = variant_step(variant, model, optimizer, path, moons(RECIPE["batch_size"], generator),
                                    generator)
                if step <= probe:
                    losses.append(loss)
                if step in checkpoints and step < steps:
                    t0 = time.perf_counter()
                    with torch.random.fork_rng(devices=[]):
                        out[str(step)] = evaluate(model, path)
                    paused += time.perf_counter() - t0
            seconds = time.perf_counter() - start - paused
            out[str(steps)] = evaluate(model, path)
    finally:
        torch.set_num_threads(threads)
    return dict(metrics=out, seconds=seconds, first_losses=losses)


def code_hash() -> str:
    """sha256 (16 hex digits) of the code behind the numbers: this module's recipe and what it reuses."""
    import utils.cfm_references as cr

    h = hashlib.sha256()
    for obj in (loss_weight, logit_normal_times, variant_step, evaluate, reference_scores, train_variant,
                training_step, cfm_loss,
                evaluate_moons_fm, fm_path, cr.train_moons_fm, TimeMLP, moons, w2, solve_ode, GaussianPath,
                type(fm_path("vp"))):
        h.update(_normalised_source(obj).encode())
    numbers = dict(recipe=RECIPE, loc=LOC, scale=SCALE, t_max=T_MAX, nfes=NFES)
    h.update(json.dumps(numbers, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _normal_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def time_shares() -> dict:
    """The share of drawn times below 0.1 and above 0.9, per way of drawing them."""
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    below = _normal_cdf((logit(0.1) - LOC) / SCALE)
    above = 1 - _normal_cdf((logit(0.9) - LOC) / SCALE)
    return {"uniform": dict(below_0_1=0.1 / T_MAX, above_0_9=1 - 0.9 / T_MAX),
            "logit-normal": dict(below_0_1=below, above_0_9=above)}


def summarise(runs: dict) -> dict:
    """Per variant and checkpoint: per-seed values, mean and sd (over seeds) of every metric."""
    table = {}
    for variant, per_seed in runs.items():
        table[variant] = {}
        for step in next(iter(per_seed.values()))["metrics"]:
            keys = per_seed[next(iter(per_seed))]["metrics"][step]
            cell = {}
            for key in keys:
                values = [per_seed[s]["metrics"][step][key] for s in per_seed]
                cell[key] = dict(mean=statistics.fmean(values),
                                 sd=statistics.stdev(values) if len(values) > 1 else 0.0, seeds=values)
            table[variant][step] = cell
    return table


def run(seeds=SEEDS, steps: int = STEPS, out: Path = OUT, report=print) -> dict:
    start = time.perf_counter()
    runs, first_losses, seconds = {}, {}, {}
    for variant in VARIANTS:
        runs[variant] = {}
        for seed in seeds:
            r = train_variant(variant, seed, steps, probe=PROBE_STEPS if seed == seeds[0] else 0)
            runs[variant][str(seed)] = r
            seconds.setdefault(variant, []).append(round(r["seconds"], 1))
            if seed == seeds[0]:
                first_losses[variant] = r["first_losses"]
            m = r["metrics"][str(steps)]
            report(f"{variant:<13} seed {seed}: w2_100 {m['w2_100']:.4f}, w2_1 {m['w2_1']:.4f}, "
                   f"err_t0 {m['err_t0']:.3f} ({r['seconds']:.0f} s)")
    data = dict(
        description="notebook 05's VP recipe (utils.cfm_references) with three ways to draw or weight t; "
                    "metrics as evaluate_moons_fm plus W2 at few Euler steps and the field's error at t = 0",
        recipe={**RECIPE, "path": "vp", "t_max": T_MAX}, steps=steps, live_steps=LIVE_STEPS, seeds=list(seeds),
        variants={"uniform": "t ~ U[0, T_MAX): utils.cfm.training_step",
                  "logit-normal": f"t = sigmoid({LOC:g} + {SCALE:g} n), n ~ N(0, 1), capped at T_MAX",
                  "weighted": "t ~ U[0, T_MAX), loss of each sample times lambda(t) = sigma_t^2 / (a_t')^2"},
        loc=LOC, scale=SCALE, nfes=list(NFES), time_shares=time_shares(), scores=reference_scores(),
        course_seed=seed_shift(),
        code_hash=code_hash(), probe_seed=seeds[0], first_losses=first_losses,
        results=summarise({v: {s: {"metrics": r["metrics"]} for s, r in per.items()} for v, per in runs.items()}),
        train_seconds=seconds, wall_seconds=round(time.perf_counter() - start, 1), machine=_machine(),
        run=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        command="nice -n 10 python -m tools.bench.time_sampling_05")
    out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    data = run(tuple(args.seeds), args.steps, args.out)
    print(f"stored in {args.out} ({data['wall_seconds']:.0f} s); "
          + ", ".join(f"{k} {v:.3f}" for k, v in data["scores"].items()))
    res = data["results"]
    for step in (str(LIVE_STEPS), str(args.steps)):
        if step not in res["uniform"]:
            continue
        print(f"after {step} steps: mean ± sd over seeds {data['seeds']}")
        for v in VARIANTS:
            c = res[v][step]
            print(f"  {v:<13} " + "  ".join(f"{k} {c[k]['mean']:.3f} ± {c[k]['sd']:.3f}"
                                             for k in ("w2_100", "w2_1", "w2_2", "w2_4", "err_t0")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
