"""Notebook 04's score model trained to convergence, and the noise-level sweep on it (issue 19, G1).

The recipe is the notebook's own, through the same code: ``train_score_model`` on the VP SDE (beta 0.1 to
20) with 20,000 points of the 8-Gaussian mixture (``eight_gaussians_mixture().sample(20_000, 5)``), batches
of 512, Adam 5e-3 decayed to 0 on a cosine schedule, in float64, a ``ScoreModel`` built right after
``seed_everything(seed)`` (the notebook's initial weights). The notebook trains ``LIVE_STEPS``;
``make weights`` runs the same call for ``STEPS`` (the cosine schedule stretches over the longer run).

    from utils.references import load_reference
    model, entry = load_reference("04_score")

The judged metric is ``score_err``: the DSM loss's excess over its minimum, E_s E_{x ~ p_s} sigma_s^2
|S_theta(x, s) - grad log p_s(x)|^2 with the mixture's exact score, on 50 fixed times and 1000 fixed points
each. Also: ``rel_err_05`` (the notebook's relative squared score error at s = 0.5), ``w2_ode`` (PF-ODE, RK4,
10 steps: W2 averaged over 2 clouds of 1000 points against stratified target samples, as
``utils.sampler_quality`` scores), and precision/recall of the ODE's samples (1000 points). The reverse SDE
is measured in the sweep below (eps = 1).

**The noise sweep** (``NOISE_SWEEP``, ``weights/04_noise_sweep.json``): the samplers with the diffusion's
marginals, dx = [f - (1 + eps^2)/2 g^2 score] ds + eps g dW (``utils.samplers.sample_noise_family``; eps = 0 is
the probability flow, eps = 1 the reverse SDE), at fixed NFE, with the exact score (the control: only the
discretisation) and with the converged score models of the three seeds. Does the noise correct score errors?
Then the learned score's excess W2 over the exact score's, at the same eps and NFE, shrinks as eps grows.

    python -m utils.score_references sweep     # recompute it (retrains the spread seeds: minutes)
    python -m utils.score_references retrain   # make weights NAMES=04_score and the sweep, each seed trained once
    show_noise_sweep()                          # notebook 04: the table and the checked readings
"""
from __future__ import annotations

import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from multiprocessing import get_context

import torch

from .metrics import precision_recall
from .references import WEIGHTS_DIR
from .mixtures import eight_gaussians_mixture
from .sampler_quality import _clouds, quality_against_nfe, w2_floor_spread, w2_noise_baseline
from .samplers import sample_noise_family, sample_probability_flow
from .score_matching import ScoreModel, dsm_loss, train_score_model
from .sde import VPSDE

__all__ = ["NAME", "LIVE_STEPS", "STEPS", "RECIPE", "training_data", "evaluate_score", "noise_sweep",
           "NOISE_SWEEP", "load_noise_sweep", "sweep_summary", "show_noise_sweep"]

NAME = "04_score"
LIVE_STEPS = 600  # what notebook 04 trains live
STEPS = 19200  # 32 x the live run (at 4800 it still moved more than its seed spread)
RECIPE = dict(batch_size=512, lr=5e-3, data_size=20_000, data_seed=5, beta_min=0.1, beta_max=20.0, s_min=1e-3)
EVAL_NOISE_SEED, EVAL_DATA_SEED = 7, 1001
SWEEP_EPS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)
SWEEP_NFE = (10, 20, 50)
SWEEP_N, SWEEP_REPEATS, SWEEP_SEED = 1000, 4, 0

NOISE_SWEEP = WEIGHTS_DIR / "04_noise_sweep.json"


def _sde() -> VPSDE:
    return VPSDE(beta_min=RECIPE["beta_min"], beta_max=RECIPE["beta_max"])


@lru_cache(maxsize=1)
def training_data() -> torch.Tensor:
    """Notebook 04's training set: 20,000 points of the mixture (seed 5), float64."""
    return eight_gaussians_mixture().sample(RECIPE["data_size"], RECIPE["data_seed"], dtype=torch.float64)


def _build() -> ScoreModel:
    return ScoreModel(_sde(), s_min=RECIPE["s_min"])


def _train(model, num_steps, generator, callback):
    train_score_model(_sde(), training_data(), num_steps=num_steps, batch_size=RECIPE["batch_size"],
                      lr=RECIPE["lr"], model=model, seed=int(generator.initial_seed()), s_min=RECIPE["s_min"],
                      dtype=torch.float64, callback=callback)


def evaluate_score(score) -> dict:
    """Deterministic scores of a score function ``score(x, s)`` (the module docstring says which)."""
    sde, target = _sde(), eight_gaussians_mixture()
    exact = target.score_fn(sde)
    g = torch.Generator().manual_seed(EVAL_DATA_SEED)
    excess = []
    for s_ in ((torch.arange(50, dtype=torch.float64) + 0.5) / 50).tolist():
        x = target.sample(1000, g, s=s_, sde=sde, dtype=torch.float64)
        s = torch.full((1000,), s_, dtype=torch.float64)
        excess.append((sde.kernel(s)[1][:, None] ** 2 * (score(x, s) - exact(x, s)) ** 2).sum(1).mean().item())
    x = target.sample(1000, g, s=0.5, sde=sde, dtype=torch.float64)
    s = torch.full((1000,), 0.5, dtype=torch.float64)
    rel = ((score(x, s) - exact(x, s)).pow(2).sum(1).mean() / exact(x, s).pow(2).sum(1).mean()).item()
    rows = quality_against_nfe(sde, score, target, sde_steps=[], ode=[("rk4", 10)], n=1000, repeats=2,
                               seed=EVAL_NOISE_SEED, dtype=torch.float64, desc="04 evaluation")
    x0 = sde.prior_sample(1000, torch.Generator().manual_seed(EVAL_NOISE_SEED)).to(torch.float64)
    ode = sample_probability_flow(sde, score, x0, 10, method="rk4").x
    precision, recall = precision_recall(ode, target.sample(1000, EVAL_DATA_SEED, stratified=True,
                                                            dtype=torch.float64))
    return {"score_err": sum(excess) / len(excess), "rel_err_05": rel,
            "w2_ode": rows[0]["w2"],
            "precision_ode": precision, "recall_ode": recall}


def _register() -> None:
    from . import datasets, mixtures, models, score_matching, sde
    from .references import register_reference

    code = (score_matching.train_score_model, dsm_loss, ScoreModel, models.TimeMLP, models.time_features,
            sde.VPSDE, mixtures.GaussianMixture, mixtures.eight_gaussians_mixture, datasets, training_data, _sde)
    register_reference(NAME, build=_build, train=_train, evaluate=evaluate_score, metric="score_err", steps=STEPS,
                       seed=0, spread_seeds=(1, 2), code=code, params=dict(RECIPE), notebook="04",
                       description="notebook 04's score model (ScoreModel: TimeMLP 3 x 64 with the skip term, DSM "
                                   "on 20,000 mixture points, batch 512, Adam 5e-3 cosine, float64); judged on "
                                   "the DSM loss's excess over its minimum (exact score)")


_register()


# ---------------------------------------------------------------- the noise sweep (G1)


def noise_sweep(scores: dict, eps=SWEEP_EPS, nfes=SWEEP_NFE, n: int = SWEEP_N, repeats: int = SWEEP_REPEATS,
                seed: int = SWEEP_SEED) -> list[dict]:
    """W2 of ``sample_noise_family`` for every score in ``scores`` (label -> score(x, s)), eps and NFE.

    Every run starts from the same noise and uses the same Brownian draws (generator seed + 1), and is
    scored against the same stratified target samples as ``quality_against_nfe`` (``repeats`` clouds of
    ``n``): the differences between eps, and between scores, are paired. Rows: score, nfe, eps, w2.
    """
    from .runtime import progress

    sde, target = _sde(), eight_gaussians_mixture()
    x0, quality = _clouds(sde, target, n, repeats, seed, torch.float64)
    runs = [(label, k, e) for label in scores for k in nfes for e in eps]
    rows = []
    with torch.no_grad():
        for label, k, e in progress(runs, desc="noise sweep"):
            out = sample_noise_family(sde, scores[label], x0, k, noise_level=float(e),
                                      generator=torch.Generator().manual_seed(seed + 1))
            rows.append(dict(score=label, nfe=int(k), eps=float(e), w2=quality(out.x)))
    return rows


def _sweep_one(label: str, state: bytes | None, **grid) -> list[dict]:
    """The sweep's rows of one score (a worker): the exact score when ``state`` is None. Every score's rows
    use the same noise and draws, so sweeping them apart gives the rows of ``noise_sweep`` on all of them."""
    torch.set_num_threads(1)
    from .references import model_from_state

    score = eight_gaussians_mixture().score_fn(_sde()) if state is None else model_from_state(NAME, state)
    return noise_sweep({label: score}, **grid)


def _compute_and_store(spread_models: dict | None = None, jobs: int = 1) -> dict:
    """The sweep on the stored model and the spread seeds' (retrained unless given), written to NOISE_SWEEP;
    ``jobs`` > 1 sweeps the scores in parallel processes (the same rows)."""
    from .references import _state_bytes, code_hash, load_reference, train_reference

    start = time.perf_counter()
    model, entry = load_reference(NAME)
    models = {f"seed {entry['seed']}": model}
    if spread_models is None:
        spread_models = {f"seed {s}": train_reference(NAME, seed=s, report=print)[0]
                         for s in (1, 2)}
    models.update(spread_models)
    sde, target = _sde(), eight_gaussians_mixture()
    if jobs > 1:
        states = {"exact": None, **{label: _state_bytes(m) for label, m in models.items()}}
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            rows = [r for part in pool.map(_sweep_one, states, states.values()) for r in part]
    else:
        rows = noise_sweep({"exact": target.score_fn(sde), **models})
    floor, spread = w2_floor_spread(target, n=SWEEP_N, pairs=8)
    data = dict(reference=NAME, weights_sha256=entry["weights_sha256"], code_hash=code_hash(NAME),
                eps=list(SWEEP_EPS), nfes=list(SWEEP_NFE), n=SWEEP_N, repeats=SWEEP_REPEATS, seed=SWEEP_SEED,
                floor=floor, floor_spread=spread,
                baseline=w2_noise_baseline(sde, target, n=SWEEP_N, repeats=SWEEP_REPEATS, seed=SWEEP_SEED,
                                           dtype=torch.float64),
                rows=rows, seconds=round(time.perf_counter() - start, 1))
    NOISE_SWEEP.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return data


def retrain(jobs: int = 3) -> dict:
    """``make weights NAMES=04_score`` and the sweep in one run: the three seeds are trained once, in parallel,
    the reference stored as ``make weights`` stores it (``make_weights.train_and_store``), and the spread seeds'
    models go straight into the sweep (which would otherwise train them again)."""
    from .make_weights import train_and_store, verdict_line
    from .references import model_from_state, recipe

    out = train_and_store([NAME], jobs=jobs)[NAME]
    print(verdict_line(NAME, out["entry"]), flush=True)
    spread = {f"seed {s}": model_from_state(NAME, out["states"][s]) for s in recipe(NAME).spread_seeds}
    return _compute_and_store(spread, jobs=min(jobs, 2))


def load_noise_sweep() -> dict:
    """The stored sweep (``weights/04_noise_sweep.json``); warns when the weights it was run on changed."""
    import warnings

    from .errors import InputError
    from .references import manifest

    if not NOISE_SWEEP.exists():
        raise InputError("no stored noise sweep; compute it with `python -m utils.score_references sweep`.")
    data = json.loads(NOISE_SWEEP.read_text(encoding="utf-8"))
    if manifest().get(NAME, {}).get("weights_sha256") != data["weights_sha256"]:
        warnings.warn("the noise sweep was run on other weights of 04_score: "
                      "`python -m utils.score_references sweep` recomputes it", stacklevel=2)
    return data


def _mean_sd(values) -> tuple[float, float]:
    m = sum(values) / len(values)
    return m, (math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0)


def sweep_summary(data: dict | None = None) -> dict:
    """Per (nfe, eps): the exact score's W2, the learned scores' mean and sd over seeds, and the gap
    (learned - exact) per seed with its mean and sd: {(nfe, eps): dict(exact, learned, learned_sd, gap,
    gap_sd, gaps)}; plus the floor, its spread, the noise of one entry and the baseline."""
    data = data or load_noise_sweep()
    w = {(r["score"], r["nfe"], r["eps"]): r["w2"] for r in data["rows"]}
    seeds = sorted({r["score"] for r in data["rows"] if r["score"] != "exact"})
    cells = {}
    for k in data["nfes"]:
        for e in data["eps"]:
            exact = w[("exact", k, e)]
            learned = [w[(s, k, e)] for s in seeds]
            gaps = [v - exact for v in learned]
            (lm, lsd), (gm, gsd) = _mean_sd(learned), _mean_sd(gaps)
            cells[(k, e)] = dict(exact=exact, learned=lm, learned_sd=lsd, gap=gm, gap_sd=gsd, gaps=gaps)
    return dict(cells=cells, seeds=seeds, eps=data["eps"], nfes=data["nfes"], floor=data["floor"],
                floor_spread=data["floor_spread"], noise=data["floor_spread"] / math.sqrt(data["repeats"]),
                baseline=data["baseline"], n=data["n"], repeats=data["repeats"])


def show_noise_sweep(data: dict | None = None) -> dict:
    """Notebook 04: print the stored sweep as a table and check its readings (``utils.claims``); returns
    :func:`sweep_summary`."""
    from .claims import claim

    sm = sweep_summary(data)
    cells, k_seeds = sm["cells"], len(sm["seeds"])
    print(f"W2 to the target ({sm['repeats']} clouds of {sm['n']}), the family dx = [f - (1 + eps^2)/2 g^2 score] ds "
          f"+ eps g dW;\nlearned: the converged score model, mean ± sd over {k_seeds} seeds; gap: learned - exact, "
          f"per seed, mean ± sd")
    def num(v: float, sign: str = "") -> str:  # 3 decimals; a blown-up run (eps > 1 at few steps) in e-notation
        return f"{v:{sign}.3f}" if abs(v) < 1000 else f"{v:{sign}.2e}"

    print(f"{'NFE':>4} {'eps':>5} | {'exact':>8} | {'learned':>8} {'':10} | {'gap':>9}")
    for k in sm["nfes"]:
        for e in sm["eps"]:
            c = cells[(k, e)]
            print(f"{k:>4} {e:>5.2f} | {num(c['exact']):>8} | {num(c['learned']):>8} ± {num(c['learned_sd']):<8} | "
                  f"{num(c['gap'], '+'):>9} ± {num(c['gap_sd'])}")
    print(f"floor (an exact sample) {sm['floor']:.3f}, noise of one entry {sm['noise']:.3f}; "
          f"do-nothing baseline {sm['baseline']:.3f}")
    _claims(sm, claim)
    return sm


def _claims(sm: dict, claim) -> None:
    """The readings of the sweep, checked on its numbers (written after the stored run was read)."""
    from .claims import beyond

    cells, noise, nfes, eps = sm["cells"], sm["noise"], sm["nfes"], sm["eps"]
    small = [e for e in eps if 0 < e <= 0.5]
    claim(all(g > 0 for k in nfes for g in cells[(k, 0.0)]["gaps"]),
          "the probability flow (eps = 0) pays for the learned score's errors: at every NFE and for every seed its "
          "W2 is above the exact score's on the same noise")
    claim(all(g0 > g for k in nfes for e in small
              for g0, g in zip(cells[(k, 0.0)]["gaps"], cells[(k, e)]["gaps"])),
          f"a little noise (eps = {', '.join(f'{e:g}' for e in small)}) reduces that gap at every NFE, for every seed: "
          "the noise corrects part of the score's errors")
    claim(all(cells[(k, e)]["gap"] < cells[(k, 0.0)]["gap"] / 3 and abs(cells[(k, e)]["gap"]) < noise
              for k in nfes if k >= 20 for e in small),
          "from 20 NFE on it removes most of the gap or all of it: the mean gap falls below a third of the probability "
          "flow's, and where it turns negative (the learned score scoring below the exact one) it stays within the "
          "sampling noise of one W2 entry")
    claim(all(cells[(k, 0.0)]["gap"] < 2 * noise for k in nfes),
          "the correction is small at convergence: the probability flow's mean gap is less than two standard "
          "deviations of the sampling noise of one W2 entry")
    claim(all(0 < min(eps, key=lambda e: cells[(k, e)]["learned"]) <= 1 for k in nfes),
          "for the learned score the best member of the family lies between the two ends: 0 < eps <= 1 at every NFE")
    claim(all(beyond(cells[(min(nfes), e)]["exact"], cells[(min(nfes), 0.0)]["exact"], 2 * noise)
              for e in eps if e > 1),
          f"too much noise costs discretisation error: at {min(nfes)} NFE every eps above 1 is far worse than eps = 0 "
          "even with the exact score (Euler-Maruyama's steps are too long for the stronger drift)")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] not in (["sweep"], ["retrain"]):
        print("usage: python -m utils.score_references sweep      # the sweep on the stored weights\n"
              "       python -m utils.score_references retrain    # make weights NAMES=04_score, then the sweep")
        return 2
    torch.set_num_threads(1)
    data = retrain() if argv[0] == "retrain" else _compute_and_store(jobs=2)
    print(f"noise sweep stored in {NOISE_SWEEP.name} ({data['seconds']:.0f} s)")
    show_noise_sweep(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
