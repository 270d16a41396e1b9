"""``make weights``: train the converged references (``utils.references``) and store them in weights/.

Each registered recipe is trained from scratch with its own seed (the weights that ship) and with its
spread seeds (their metric gives the seed spread that convergence is judged against), in float64 on
one thread a run. Progress is printed at every fifth of the steps, then each reference's time,
metrics and convergence verdict. Training a reference takes minutes; loading it takes milliseconds.

    python -m tools.course.weights                      # every registered reference
    python -m tools.course.weights 02_realnvp 03_cnf    # some
    python -m tools.course.weights --jobs 2             # runs (seeds) in parallel processes
    python -m tools.course.weights --no-spread          # only the shipped seed; keep the stored seed spread
    python -m tools.course.weights --list               # names, and whether their weights are stale
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context


def _run(name: str, seed: int | None) -> tuple:
    from utils import references

    model, record = references.train_reference(name, seed=seed, report=lambda line: print("  " + line, flush=True))
    return record, (references._state_bytes(model) if seed is None else None)


def main(argv=None) -> int:
    from utils import references

    ap = argparse.ArgumentParser(description="train the converged references into weights/")
    ap.add_argument("names", nargs="*", help="references to train (default: all registered)")
    ap.add_argument("--jobs", type=int, default=1, help="training runs in parallel (one thread each)")
    ap.add_argument("--no-spread", action="store_true", help="train only the shipped seed")
    ap.add_argument("--list", action="store_true", help="list the references and whether they are stale")
    args = ap.parse_args(argv)

    names = args.names or references.registered()
    unknown = [n for n in names if n not in references.registered()]
    if unknown:
        print(f"unknown reference(s): {', '.join(unknown)}; registered: {', '.join(references.registered())}")
        return 2
    if args.list:
        for n in names:
            why = references.stale(n)
            print(f"{n:<24} {'stale: ' + '; '.join(why) if why else 'up to date'}")
        return 0

    jobs = [(n, None) for n in names]  # None: the recipe's own seed, whose weights ship
    if not args.no_spread:
        jobs += [(n, s) for n in names for s in references.recipe(n).spread_seeds]
    hashes = {n: references.code_hash(n) for n in names}  # the code that trains (files may change meanwhile)
    print(f"== make weights: {len(names)} reference(s), {len(jobs)} training run(s), {args.jobs} at a time")
    start = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_run, *zip(*jobs)))
    else:
        results = [_run(n, s) for n, s in jobs]

    old = references.manifest()
    for n in names:
        (main_record, data), = [r for (jn, s), r in zip(jobs, results) if jn == n and s is None]
        others = [r for (jn, s), r in zip(jobs, results) if jn == n and s is not None]
        entry = references.entry_from_runs(n, data, main_record, [o[0] for o in others], old.get(n), hashes[n])
        if references.code_hash(n) != hashes[n]:
            print(f"== {n}: its training code changed on disk while it trained; stored with the hash of the "
                  f"code that trained, so the stale-weights test names it if the change matters")
        references.store(n, entry, data)
        sd = entry["seed_sd"]
        print(f"== {n}: {entry['steps']} steps in {entry['wall_seconds']:.0f} s; "
              + ", ".join(f"{k} {v:.4f}" for k, v in entry["metrics"].items())
              + f"; over seeds {', '.join(entry['seed_metrics'])}: {entry['seed_mean']:.4f}"
              + (f" +- {sd:.4f}" if sd is not None else "")
              + f"; moved {entry['drift_last_20pct']:.4f} over the last 20 % of steps: "
              + ("converged" if entry["converged"] else "NOT converged (moved more than the seed spread)"))
    print(f"== make weights took {time.perf_counter() - start:.0f} s; weights/ holds "
          f"{sum(p.stat().st_size for p in references.WEIGHTS_DIR.glob('*.pt')) / 1e6:.2f} MB "
          f"(cap {references.MAX_BYTES / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
