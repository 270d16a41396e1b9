"""The length test: do the references still change when trained twice as long?

``make weights`` calls a reference converged when its judged metric moved less than its seed spread over
the last fifth of its steps (``utils.references``). A recipe that decays its learning rate to zero on a
cosine schedule over the run (04's score model; 06's score, score_long and reflow; 07's digits; 08's
MeanFlow) makes its largest gains in that last fifth, where the rate falls, however long it trains: the
rule cannot pass there, so it cannot tell a converged recipe from one that is not. 05's VP model trains
with a constant rate and its W2 wanders over the last fifth. This module asks the other question: train
**the same recipe through the same code** (``utils.references.train_reference(name, seed, 2 * steps)``, the schedule
stretched over the longer run) on the same three seeds, and compare the mean final metric with the stored
reference's. The recipe is *converged by length* when doubling the steps moves that mean by less than the
stored seed spread, the same yardstick as the rule. The references that pass the rule and train in about a
minute or less (``PASSING``) are length-tested too, as a check on the rule: does a reference it calls converged
stop changing when its steps double? ``utils.convergence.metric_moves`` applies the same yardstick to every
other metric the runs keep (W2 at other NFE, precision, recall). Notebook 06's long showdown (``LONG``: the
showdown's recipes at 16 x its steps) and the digit references of 08 and 09 (``DIGITS``) are length-tested
whatever the rule says.

    nice -n 10 python -m tools.bench.length_test                  # every name in NAMES, two at a time
    python -m tools.bench.length_test --names 06_score --factor 2 # one recipe

writes ``weights/length_test.json``, read by ``utils.convergence`` (02 to 09 print its verdicts and what it
moved in each metric); ``tools/bench/quality_convergence.py`` prints each result beside the rule's verdict and
``tests/test_length_test.py`` checks it against the code and the manifest.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from utils import references
from utils.convergence import LENGTH_TEST as OUT
from utils.references import _machine, _normalised_source

# the references that fail the last-fifth rule (03's CNF has its own longer run, tools.bench.cnf_longer_03),
# the longest first so that two workers finish together
FAILING = ("08_meanflow", "06_score_long", "04_score", "07_digits", "05_fm_vp", "06_reflow", "06_score")
# a check on the rule: the references that pass it and train in about a minute or less, the longest first
PASSING = ("06_otcfm", "05_fm_cosine", "05_fm_ot", "08_consistency", "08_shortcut", "08_distill", "06_icfm",
           "06_fm_vp")
# notebook 06's long showdown (16 x the showdown's steps; its score model, 06_score_long, is in FAILING)
LONG = ("06_otcfm_long", "06_reflow_long", "06_icfm_long", "06_fm_vp_long")
# the digit references of notebooks 08 and 09 (64 pixels; about 12 minutes for the six, two at a time)
DIGITS = ("08_digits_consistency", "08_digits_meanflow", "08_digits_shortcut", "08_digits_distill", "09_mask",
          "09_uniform")
NAMES = FAILING + PASSING + LONG + DIGITS
FACTOR = 2
PROBE = ("06_score", 10)  # a short run stored so that a test can rerun it, number for number


def train(name: str, seed: int, steps: int) -> dict:
    """Recipe ``name`` from ``seed`` for ``steps`` steps: its judged metric, every metric, trace, seconds."""
    _, record = references.train_reference(name, seed=seed, steps=steps)
    key = references.primary_metric(references.recipe(name), record["metrics"])
    return dict(seed=seed, steps=steps, metric=key, value=record["metrics"][key], metrics=record["metrics"],
                trace=record["trace"], seconds=round(record["seconds"], 1))


def summarise(runs: list[dict], entry: dict) -> dict:
    """The stored reference (``entry``, its manifest entry) against its longer runs: means, spreads, the move
    of the mean and the verdict (moved less than the stored seed spread)."""
    short = [entry["seed_metrics"][str(r["seed"])] for r in runs]
    long_ = [r["value"] for r in runs]
    sd = entry["seed_sd"]
    moved = statistics.fmean(long_) - statistics.fmean(short)
    return dict(metric=entry["metric"], short_steps=entry["steps"], long_steps=runs[0]["steps"],
                short_mean=statistics.fmean(short), short_sd=sd, long_mean=statistics.fmean(long_),
                long_sd=statistics.stdev(long_) if len(long_) > 1 else None, moved=moved,
                converged_by_length=abs(moved) < sd, rule_moved=entry["drift_last_20pct"])


def code_hash(name: str, factor: int = FACTOR) -> str:
    """sha256 (16 hex digits) of this measurement's code and of the recipe's own code hash."""
    h = hashlib.sha256()
    for obj in (train, summarise):
        h.update(_normalised_source(obj).encode())
    h.update(json.dumps(dict(recipe=references.code_hash(name), factor=factor)).encode())
    return h.hexdigest()[:16]


def _train_args(names, factor):
    jobs = []
    for n in names:
        rec = references.recipe(n)
        jobs += [(n, s, factor * rec.steps) for s in (rec.seed, *rec.spread_seeds)]
    return jobs


def run(names=NAMES, factor: int = FACTOR, jobs: int = 2, out: Path = OUT, report=print) -> dict:
    start = time.perf_counter()
    hashes = {n: code_hash(n, factor) for n in names}  # the code that trains (files may change meanwhile)
    work = _train_args(names, factor)
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=get_context("spawn")) as pool:
        results = list(pool.map(train, *zip(*work)))
    data = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    manifest = references.manifest()
    for n in names:
        runs = [r for (rn, _, _), r in zip(work, results) if rn == n]
        s = summarise(runs, manifest[n])
        data[n] = dict(code_hash=hashes[n], factor=factor, runs=runs, summary=s, machine=_machine(),
                       trained=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        report(f"{n}: {s['metric']} {s['short_mean']:.4f} +- {s['short_sd']:.4f} at {s['short_steps']} steps, "
               f"{s['long_mean']:.4f} +- {s['long_sd']:.4f} at {s['long_steps']}: moved {s['moved']:+.4f}, "
               + ("converged by length" if s["converged_by_length"] else "NOT converged by length"))
    name, steps = PROBE
    data["probe"] = dict(name=name, seed=0, steps=steps, value=train(name, 0, steps)["value"])
    data["wall_seconds_last_run"] = round(time.perf_counter() - start, 1)
    out.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n", encoding="utf-8")
    report(f"wrote {out} in {data['wall_seconds_last_run']:.0f} s")
    return data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", nargs="+", default=list(NAMES))
    ap.add_argument("--factor", type=int, default=FACTOR)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in references.registered()]
    if unknown:
        ap.error(f"unknown references {unknown}; registered: {', '.join(references.registered())}")
    run(tuple(args.names), args.factor, args.jobs, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
