"""Is a reference converged? The length test's stored answers, as the notebooks print them (02 to 08).

``make weights`` judges a reference by the last fifth of its steps (``utils.references``: converged when its
judged metric moved less than its seed spread there). A recipe that decays its learning rate to zero over
the run makes its largest gains in that last fifth however long it trains, so for it the rule cannot pass.
``python -m tools.bench.length_test`` asks another question of the references that fail the rule (and, as a
check on the rule, of the quick ones that pass it): trained twice as long through the same code on the same
seeds, does the mean final metric move less than the same spread? Its answers are stored in
``weights/length_test.json``; this module reads them. (It found the rule wrong both ways: seven of the ten
references that pass it still improve when doubled.)

    from utils.convergence import length_note, length_result, metric_moves, doubled_metrics, rule_note
    print(f"02_realnvp: {rule_note(manifest()['02_realnvp'])}")  # "moved 0.0009 over the last 20 % of steps: ..."
    length_result("06_score_long")["converged_by_length"]   # True
    print("06_score: " + length_note("06_score"))           # "twice as long (8000 steps, ...)..."
    metric_moves("04_score")["w2_ode"]["within"]             # did the samples' W2 move less than its seed sd?
    doubled_metrics("07_digits")                              # every metric of the doubled run of the shipped seed
    seed_stats("06_otcfm_long")["w2_1"]["mean"]               # a stored metric over the seeds make weights trained

The judged metric is one number; a notebook reads others too (W2, precision, recall, accuracy). ``metric_moves``
applies the same yardstick to each of them, so a notebook can say which of its readings still change with
length and which do not.
"""
from __future__ import annotations

import json
import statistics

from .references import WEIGHTS_DIR, manifest, recipe

__all__ = ["LENGTH_TEST", "length_results", "length_result", "rule_note", "length_note", "metric_moves", "moves_note",
           "doubled_metrics", "seed_stats"]

LENGTH_TEST = WEIGHTS_DIR / "length_test.json"


def length_results() -> dict:
    """Every stored length test by reference name: ``code_hash``, ``factor``, ``runs``, ``summary``."""
    if not LENGTH_TEST.exists():
        return {}
    data = json.loads(LENGTH_TEST.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if isinstance(v, dict) and "summary" in v}


def length_result(name: str) -> dict | None:
    """The summary of ``name``'s length test (``short_mean``, ``long_mean``, ``moved``, ``converged_by_length``,
    ...), or None when it was not length-tested."""
    result = length_results().get(name)
    return None if result is None else result["summary"]


def rule_note(entry: dict) -> str:
    """One clause for a reference's line: how far its judged metric moved over the last fifth of its steps, and
    the manifest's verdict on it (``entry``: a manifest entry, as ``load_reference`` returns it)."""
    verdict = "converged by the rule" if entry["converged"] else "more than its seed sd: not converged by the rule"
    return f"moved {entry['drift_last_20pct']:.1g} over the last 20 % of steps: {verdict}"


def length_note(name: str) -> str:
    """One clause for a reference's line: what twice the steps did to its judged metric (lower is better for
    every judged metric: W2, NLL, score error, loss); empty when ``name`` was not length-tested."""
    s = length_result(name)
    if s is None:
        return ""
    verdict = ("less than the seed sd: converged by length" if s["converged_by_length"] else
               "more than the seed sd: not converged by length (" + ("it still fell" if s["moved"] < 0 else "it rose")
               + ")")
    ratio = s["long_steps"] / s["short_steps"]
    longer = "twice as long" if ratio == 2 else f"{ratio:g} times as long"
    return (f"{longer} ({s['long_steps']} steps, same seeds): {s['long_mean']:#.3g} (sd {s['long_sd']:.1g}), "
            f"the mean moved {s['moved']:+.2g}, {verdict}")


def metric_moves(name: str, runs: list[dict] | None = None, entry: dict | None = None) -> dict[str, dict] | None:
    """Every metric the stored reference keeps for each seed (the manifest's ``seed_runs``) beside the same
    metric of the length test's runs on those seeds: ``{metric: dict(short_mean, short_sd, long_mean, moved,
    within)}``, ``within`` when the mean moved less than the stored seed sd of that metric (or not at all), the
    yardstick of the judged metric. None when ``name`` was not length-tested or its entry keeps no
    ``seed_runs``. ``runs`` and ``entry`` default to the stored ones (a test passes its own)."""
    if runs is None:
        result = length_results().get(name)
        runs = None if result is None else result["runs"]
    entry = manifest().get(name) if entry is None else entry
    if runs is None or entry is None or not entry.get("seed_runs"):
        return None
    seeds = [str(r["seed"]) for r in runs]
    if any(s not in entry["seed_runs"] for s in seeds) or len(seeds) < 2:
        return None
    out = {}
    for key in entry["seed_runs"][seeds[0]]:
        if not all(key in entry["seed_runs"][s] and key in r["metrics"] for s, r in zip(seeds, runs)):
            continue
        short = [entry["seed_runs"][s][key] for s in seeds]
        short_mean, short_sd = statistics.fmean(short), statistics.stdev(short)
        long_mean = statistics.fmean(r["metrics"][key] for r in runs)
        moved = long_mean - short_mean
        out[key] = dict(short_mean=short_mean, short_sd=short_sd, long_mean=long_mean, moved=moved,
                        within=moved == 0 or abs(moved) < short_sd)
    return out


def moves_note(name: str, keys=None) -> str:
    """One clause: each metric's move when the steps doubled (``keys``: which, in order; default all),
    marked ``within`` or ``beyond`` its seed sd; empty when there is nothing to compare."""
    moves = metric_moves(name)
    if not moves:
        return ""
    keys = list(moves) if keys is None else [k for k in keys if k in moves]
    return "doubling moved " + ", ".join(
        f"{k} {m['short_mean']:#.3g} -> {m['long_mean']:#.3g} ({'within' if m['within'] else 'beyond'} its seed sd "
        f"{m['short_sd']:.1g})" for k, m in ((k, moves[k]) for k in keys))


def doubled_metrics(name: str, seed: int | None = None) -> dict | None:
    """Every metric of the length test's run of ``seed`` (default: the recipe's own seed, whose weights
    ship), so a notebook can apply a reading of the stored reference to the model trained twice as long;
    None when there is no such run."""
    result = length_results().get(name)
    if result is None:
        return None
    seed = recipe(name).seed if seed is None else seed
    return next((r["metrics"] for r in result["runs"] if r["seed"] == seed), None)


def seed_stats(name: str, entry: dict | None = None) -> dict[str, dict] | None:
    """Every metric of the stored reference over the seeds ``make weights`` trained (the manifest's
    ``seed_runs``): ``{metric: dict(mean, sd, values)}``, ``values`` in seed order; None when the entry keeps
    no ``seed_runs``. ``entry`` defaults to the stored one (a test passes its own)."""
    entry = manifest().get(name) if entry is None else entry
    if entry is None or not entry.get("seed_runs"):
        return None
    runs = [entry["seed_runs"][s] for s in sorted(entry["seed_runs"], key=int)]
    out = {}
    for key in runs[0]:
        values = [r[key] for r in runs if key in r]
        if len(values) == len(runs):
            out[key] = dict(mean=statistics.fmean(values), sd=statistics.stdev(values) if len(values) > 1 else None,
                            values=values)
    return out
