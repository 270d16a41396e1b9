"""The course benchmark (``make bench``): notebook times, then sample quality.

Part 1 executes every notebook, solution and lecture, each in a fresh kernel,
and prints its wall-clock time beside its budget (this is a benchmark, not a
test: nothing fails, it reports). Part 2 runs every ``tools/quality_*.py``
module's ``run()``, which trains with full length and reports quality rows
(name, value, target, floor, note).

    python -m tools.bench                 # everything
    python -m tools.bench --only 03 04    # notebooks whose names start so
    python -m tools.bench --no-quality | --quality-only
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

from tools.execute import execute

ROOT = Path(__file__).resolve().parents[1]
# seconds allowed per notebook on a 2-core laptop CPU (the issue budgets)
BUDGETS = {"00": 15, "01": 15, "06": 90, "07": 90}
DEFAULT_BUDGET = 60


def budget(name: str) -> int:
    return BUDGETS.get(name[:2], DEFAULT_BUDGET)


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


def print_times(rows) -> None:
    print("\nNotebook execution time (fresh kernel, this machine)\n")
    print(f"| {'notebook':<32} | solution s | lecture s | budget s | within |")
    print(f"|{'-' * 34}|-----------:|----------:|---------:|:------:|")
    for name, s, l in rows:
        ok = s is not None and l is not None and max(s, l) <= budget(name)
        f = lambda v: "failed" if v is None else f"{v:.1f}"  # noqa: E731
        print(f"| {name:<32} | {f(s):>10} | {f(l):>9} | {budget(name):>8} | {'yes' if ok else 'NO':^6} |")


def quality_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(ROOT / "tools")]) if m.name.startswith("quality_"))


def print_quality() -> None:
    for name in quality_modules():
        mod = importlib.import_module(f"tools.{name}")
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
    args = ap.parse_args(argv)
    if not args.quality_only:
        print_times(time_notebooks(args.only))
    if not args.no_quality:
        print_quality()
    return 0


if __name__ == "__main__":
    sys.exit(main())
