"""The converged references' convergence verdicts, beside the noise of the metric they are judged on.

``make weights`` calls a reference converged when its judged metric moved less than its seed spread (the
standard deviation over three training seeds) over the last fifth of the steps (``utils.references``).
One W2 of 1000 moons points (``w2_100``, ``w2_1``) is noisy: two independent samples of the data itself
differ by a W2 whose standard deviation (``utils.metrics.w2_floor_stats``, 8 pairs) is several hundredths,
and even on fixed noise and fixed held-out points a small change of the model moves its samples and the
W2 with them. So the 2D moons references are judged on the mean of that W2 over 8 fixed draws
(``w2_100_mean8``, ``w2_1_mean8``: ``utils.metrics.w2_draws``), whose noise is about sqrt(8) smaller.
This module prints, for every stored reference, the rule's verdict (unchanged), the move, the seed spread
and, for the moons W2 metrics, whether the move is smaller than the sampling noise of the judged metric
(one W2's, divided by sqrt(8) for a mean of 8 draws): a comparison, not a second verdict. Then the length
test (``tools.bench.length_test``), for the references that fail the rule and, as a check on it, for the quick
ones that pass: the same recipe trained twice as long on the same seeds, and whether that moved the mean
final metric (and each other metric) by less than its seed spread. It trains nothing and reads
``weights/manifest.json`` and ``weights/length_test.json``.
"""
from __future__ import annotations

MOONS_W2 = ("w2_100", "w2_1", "w2_100_mean8", "w2_1_mean8")  # the moons W2 metrics (1000 samples each)
DRAWS = {"w2_100_mean8": 8, "w2_1_mean8": 8}  # the judged means: the noise of one W2 / sqrt(draws)
DIGITS = "08_digits"  # the few-step digit references judge a 64-dimensional W2, on another scale


def metric_noise() -> float:
    """The standard deviation of one W2 between 1000-point samples of the moons (8 pairs, float64)."""
    from tools.bench.capacity_06 import scale

    return scale()[1]


def rows_for(entries: dict, noise: float) -> list[dict]:
    """One row per reference: the rule's verdict, and for moons W2 metrics whether the move is within the
    metric's noise (``noise``, the sd of one W2; divided by sqrt(draws) for a mean of draws)."""
    rows = []
    for name, e in sorted(entries.items()):
        drift, sd = e.get("drift_last_20pct"), e.get("seed_sd")
        if drift is None or sd is None:
            continue
        moons_w2 = e["metric"] in MOONS_W2 and not name.startswith(DIGITS)
        note = ("converged by the rule" if e["converged"] else "NOT converged by the rule (moved more than the seed sd)")
        if moons_w2:
            draws = DRAWS.get(e["metric"], 1)
            sigma = noise / draws ** 0.5
            what = "one W2" if draws == 1 else f"a mean of {draws} W2s"
            note += ("; the move is " + ("smaller" if drift <= sigma else "larger") + f" than the sampling noise "
                     f"of {what} (sd {sigma:.3f}; one W2 of 1000 points: {noise:.3f})")
        rows.append(dict(name=f"convergence of {name} ({e['steps']} steps), {e['metric']}: moved over the last fifth",
                         value=round(drift, 4), target=f"< seed sd {sd:.4f}", floor=None, note=note))
    return rows


def length_rows(results: dict, current_hash=None, entries: dict | None = None) -> list[dict]:
    """One row per length-tested reference (``utils.convergence.length_results()``): the move of the mean
    final metric from N to 2N steps against the stored seed spread. ``current_hash(name, factor)``, if
    given, marks a result whose code has changed since as stale. With ``entries`` (the manifest), the note
    also sorts the reference's other metrics into those that moved within and beyond their seed sd."""
    from utils.convergence import metric_moves

    rows = []
    for name, r in sorted(results.items()):
        s = r["summary"]
        note = (("converged by length" if s["converged_by_length"] else "NOT converged by length")
                + f" (the rule's last fifth moved {s['rule_moved']:.2g}); {s['short_steps']} steps "
                f"{s['short_mean']:.4g} ± {s['short_sd']:.2g}, {s['long_steps']} steps {s['long_mean']:.4g} ± "
                f"{s['long_sd']:.2g}")
        if current_hash is not None and current_hash(name, r["factor"]) != r["code_hash"]:
            note = "STALE (the recipe or the test changed: python -m tools.bench.length_test); " + note
        moves = metric_moves(name, r["runs"], entries[name]) if entries and name in entries else None
        if moves:
            for word in ("within", "beyond"):
                keys = [k for k, m in moves.items() if m["within"] == (word == "within") and k != s["metric"]]
                note += f"; other metrics {word} their seed sd: " + (", ".join(keys) or "none")
        rows.append(dict(name=f"length test of {name} ({s['short_steps']} -> {s['long_steps']} steps), "
                              f"{s['metric']}: the mean moved", value=round(s["moved"], 4),
                         target=f"|move| < seed sd {s['short_sd']:.2g}", floor=None, note=note))
    return rows


def run() -> list[dict]:
    from tools.bench import length_test
    from utils.convergence import length_results
    from utils.references import manifest

    entries = manifest()
    return rows_for(entries, metric_noise()) + length_rows(length_results(), length_test.code_hash, entries)


if __name__ == "__main__":
    for r in run():
        print(r)
