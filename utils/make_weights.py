"""``make weights``, the loop: train recipes with every seed and store them (``utils.references``).

    from utils.make_weights import train_and_store
    out = train_and_store(["06_icfm"], jobs=2)   # {name: dict(entry=..., states={seed: weights bytes})}

``tools.course.weights`` (the command) and ``utils.score_references.retrain`` both use it;
``utils.references.model_from_state`` turns a seed's bytes back into its model.
"""
from __future__ import annotations

from typing import Callable, Sequence

from .references import (_state_bytes, code_hash, entry_from_runs, manifest, recipe, store,
                         train_reference)

__all__ = ["train_and_store", "verdict_line"]


def _train_run(name: str, seed: int | None) -> tuple[dict, bytes]:
    """One training run (a worker of ``train_and_store``): its record and its weights."""
    model, record = train_reference(name, seed=seed, report=lambda line: print("  " + line, flush=True))
    return record, _state_bytes(model)


def train_and_store(names: Sequence[str], jobs: int = 1, spread: bool = True,
                    report: Callable[[str], None] = print) -> dict[str, dict]:
    """What ``make weights`` does: train each recipe with its own seed and (``spread``) its spread seeds,
    ``jobs`` runs at a time in spawned processes (one thread each), and store every reference with its
    manifest entry. Returns, per name, ``entry`` and ``states`` (every seed's weights, by seed, for a
    caller that measures the spread seeds' models too: ``model_from_state``)."""
    runs = [(n, recipe(n).seed) for n in names]  # the recipe's own seed first: its weights ship
    if spread:
        runs += [(n, s) for n in names for s in recipe(n).spread_seeds]
    hashes = {n: code_hash(n) for n in names}  # the code that trains (files may change meanwhile)
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_train_run, *zip(*runs)))
    else:
        results = [_train_run(n, s) for n, s in runs]
    old, out = manifest(), {}
    for n in names:
        mine = [(s, r) for (rn, s), r in zip(runs, results) if rn == n]
        (_, (main, data)), others = mine[0], mine[1:]
        entry = entry_from_runs(n, data, main, [r for _, (r, _) in others], old.get(n), hashes[n])
        if code_hash(n) != hashes[n]:
            report(f"== {n}: its training code changed on disk while it trained; stored with the hash of the "
                   f"code that trained, so the stale-weights test names it if the change matters")
        store(n, entry, data)
        out[n] = dict(entry=entry, states={s: b for s, (_, b) in mine})
    return out


def verdict_line(name: str, entry: dict) -> str:
    """One line: a stored reference's steps, time, metrics, spread over seeds and convergence verdict."""
    sd = entry["seed_sd"]
    return (f"== {name}: {entry['steps']} steps in {entry['wall_seconds']:.0f} s; "
            + ", ".join(f"{k} {v:.4f}" for k, v in entry["metrics"].items())
            + f"; over seeds {', '.join(entry['seed_metrics'])}: {entry['seed_mean']:.4f}"
            + (f" +- {sd:.4f}" if sd is not None else "")
            + f"; moved {entry['drift_last_20pct']:.4f} over the last 20 % of steps: "
            + ("converged" if entry["converged"] else "NOT converged (moved more than the seed spread)"))
