"""The course benchmark (``make bench``): calibration, notebook times, then sample quality.

Machines of one class differ about 2x in speed, so seconds alone can't be a
budget. Part 0 times a fixed calibration workload, one *unit*: 300 Adam steps
of the course's 3 x 64 MLP on a batch of 256, on one thread, as the notebooks
train. Part 1 executes every notebook, solution and lecture, each in a fresh
kernel, and prints its wall-clock time in seconds and in units beside its
budget, which is set in units (this is a benchmark, not a test: nothing
fails, it reports). A notebook is "within" when it takes at most half its
budget: the 2x margin for a slower or busier machine. Part 2 runs every
``tools/bench/quality_*.py`` module's ``run()``, which trains with full length and
reports quality rows (name, value, target, floor, note). Part 3 reruns every notebook
with claims on 5 other seeds (``tools/bench/claims_seeds.py``) and prints the seeds that
support each claim; a claim that fails on a seed makes ``make bench`` exit non-zero.

    python -m tools.bench.run                 # everything
    python -m tools.bench.run --only 03 04    # notebooks whose names start so
    python -m tools.bench.run --no-quality | --quality-only | --no-claims
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

from tools.course.execute import execute

ROOT = Path(__file__).resolve().parents[2]
# Budgets per notebook in calibration units. They are the course's budgets in seconds (60 s a
# notebook, 90 s for 05, 06 and 07, on a 2-core laptop CPU) divided by one unit's time on the machine
# they were set on (REFERENCE_UNIT_S, idle); a notebook must take at most half of its budget there.
REFERENCE_UNIT_S = 0.55  # measured on this project's 2-core machine, idle, 2026-11-30
BUDGET_SECONDS = {"05": 90, "06": 90, "07": 90, "08": 90, "09": 90}
DEFAULT_BUDGET_SECONDS = 60
MARGIN = 2.0


def budget(name: str) -> float:
    """The budget of a notebook, in calibration units."""
    return BUDGET_SECONDS.get(name[:2], DEFAULT_BUDGET_SECONDS) / REFERENCE_UNIT_S


def calibrate(steps: int = 300, repeats: int = 3) -> float:
    """Seconds of one unit on this machine: the fastest of `repeats` runs of the fixed workload."""
    import torch

    from utils.models import TimeMLP

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = float("inf")
        for r in range(repeats):
            g = torch.Generator().manual_seed(r)
            model = TimeMLP()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            x = torch.randn(256, 2, generator=g)
            t = torch.rand(256, generator=g)
            start = time.perf_counter()
            for _ in range(steps):
                loss = ((model(x, t) - x) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            best = min(best, time.perf_counter() - start)
        return best
    finally:
        torch.set_num_threads(threads)


def time_notebooks(prefixes: list[str]) -> list[tuple[str, float | None, float | None]]:
    rows = []
    for sol in sorted((ROOT / "solutions").glob("*.ipynb")):
        if prefixes and not any(sol.name.startswith(p) for p in prefixes):
            continue
        times = []
        for folder in ("solutions", "lectures"):
            path = ROOT / folder / sol.name
            try:
                _, seconds = execute(path, write=False)
            except Exception as e:  # report, do not stop the table
                print(f"  {folder}/{sol.name} failed: {type(e).__name__}", file=sys.stderr)
                seconds = None
            times.append(seconds)
        rows.append((sol.stem, *times))
        print(f"  timed {sol.stem}", file=sys.stderr)
    return rows


def print_calibration(unit: float) -> None:
    print(f"\nCalibration: one unit (300 Adam steps of the 3 x 64 MLP, batch 256, one thread) takes "
          f"{unit:.2f} s here; {REFERENCE_UNIT_S:.2f} s on the machine the budgets were set on "
          f"(this one is {unit / REFERENCE_UNIT_S:.1f}x that).")


def print_times(rows, unit: float) -> None:
    print(f"\nNotebook execution time (fresh kernel), in seconds and in units of {unit:.2f} s\n")
    print(f"| {'notebook':<32} | solution s | lecture s | units | budget units | within half |")
    print(f"|{'-' * 34}|-----------:|----------:|------:|-------------:|:-----------:|")
    for name, s, l in rows:
        worst = None if s is None or l is None else max(s, l) / unit
        ok = worst is not None and worst * MARGIN <= budget(name)
        f = lambda v: "failed" if v is None else f"{v:.1f}"  # noqa: E731
        print(f"| {name:<32} | {f(s):>10} | {f(l):>9} | {f(worst):>5} | {budget(name):>12.0f} | "
              f"{'yes' if ok else 'NO':^11} |")


def print_grading(unit: float) -> None:
    """Seconds to grade one student who solved everything (fast mode), if the grader offers it."""
    from tools.grading.grade import bench_student  # one student who solved everything, graded in fast mode

    seconds, _ = bench_student(fast=True)
    print(f"\nGrading one full submission (all exercises, fast mode): {seconds:.1f} s "
          f"= {seconds / unit:.1f} units (target <= 20 s on a 2-core CPU)")


def quality_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).resolve().parent)]) if m.name.startswith("quality_"))


def print_quality() -> None:
    for name in quality_modules():
        mod = importlib.import_module(f"tools.bench.{name}")
        start = time.perf_counter()
        rows = mod.run()
        took = time.perf_counter() - start
        title = (mod.__doc__ or name).strip().splitlines()[0]
        print(f"\n{title} ({took:.0f} s)\n")
        print("| measure | value | target | floor | note |")
        print("|---|---:|---|---:|---|")
        for r in rows:
            v, fl = r.get("value"), r.get("floor")
            fv = f"{v:.3f}" if isinstance(v, float) else str(v)
            ff = "" if fl is None else (f"{fl:.3f}" if isinstance(fl, float) else str(fl))
            print(f"| {r['name']} | {fv} | {r.get('target') or ''} | {ff} | {r.get('note', '')} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="time every notebook; report sample quality")
    ap.add_argument("--only", nargs="*", default=[], help="notebook name prefixes, e.g. 03 04")
    ap.add_argument("--no-quality", action="store_true")
    ap.add_argument("--quality-only", action="store_true")
    ap.add_argument("--no-claims", action="store_true", help="skip the claims-over-seeds sweep")
    ap.add_argument("--claim-seeds", type=int, default=5, help="seeds of the claims sweep (default 5)")
    args = ap.parse_args(argv)
    if not args.quality_only:
        unit = calibrate()
        print_calibration(unit)
        print_times(time_notebooks(args.only), unit)
        print_grading(unit)
    if not args.no_quality:
        print_quality()
    if not (args.no_claims or args.quality_only):
        from tools.bench import claims_seeds

        if claims_seeds.notebooks_with_claims(args.only):
            return claims_seeds.main(["--seeds", str(args.claim_seeds), "--notebooks", *args.only])
    return 0


if __name__ == "__main__":
    sys.exit(main())
