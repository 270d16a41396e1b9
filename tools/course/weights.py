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


def main(argv=None) -> int:
    from utils import make_weights, references

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

    runs = sum(1 + (0 if args.no_spread else len(references.recipe(n).spread_seeds)) for n in names)
    print(f"== make weights: {len(names)} reference(s), {runs} training run(s), {args.jobs} at a time")
    start = time.perf_counter()
    for n, out in make_weights.train_and_store(names, jobs=args.jobs, spread=not args.no_spread).items():
        print(make_weights.verdict_line(n, out["entry"]))
    print(f"== make weights took {time.perf_counter() - start:.0f} s; weights/ holds "
          f"{sum(p.stat().st_size for p in references.WEIGHTS_DIR.glob('*.pt')) / 1e6:.2f} MB "
          f"(cap {references.MAX_BYTES / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
