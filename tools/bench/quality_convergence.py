"""The converged references' convergence verdicts, beside the noise of the metric they are judged on.

``make weights`` calls a reference converged when its judged metric moved less than its seed spread (the
standard deviation over three training seeds) over the last fifth of the steps (``utils.references``).
Most 2D references are judged on one W2 of 1000 moons points (``w2_100``, ``w2_1``), and such a W2 is
noisy: two independent samples of the data itself differ by a W2 whose standard deviation
(``utils.metrics.w2_floor_stats``, 8 pairs) is several hundredths. The references are scored on fixed noise
and fixed held-out points, yet their traces are not monotone: a small change of the model moves its
samples, and the W2 of 1000 points moves with them. This module prints, for every stored reference, the
rule's verdict (unchanged), the move, the seed spread and, for the moons W2 metrics, whether the move is
smaller than that sampling noise: a comparison, not a second verdict. It trains nothing and reads
``weights/manifest.json``.
"""
from __future__ import annotations

MOONS_W2 = ("w2_100", "w2_1")  # the moons W2 metrics (1000 samples against 1000 held-out points)
DIGITS = "08_digits"  # the few-step digit references judge a 64-dimensional W2, on another scale


def metric_noise() -> float:
    """The standard deviation of one W2 between 1000-point samples of the moons (8 pairs, float64)."""
    import torch

    from utils.datasets import moons
    from utils.metrics import w2_floor_stats

    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return w2_floor_stats(moons, 1000, pairs=8)[1]
    finally:
        torch.set_default_dtype(dtype)


def rows_for(entries: dict, noise: float) -> list[dict]:
    """One row per reference: the rule's verdict, and for moons W2 metrics whether the move is within ``noise``."""
    rows = []
    for name, e in sorted(entries.items()):
        drift, sd = e.get("drift_last_20pct"), e.get("seed_sd")
        if drift is None or sd is None:
            continue
        moons_w2 = e["metric"] in MOONS_W2 and not name.startswith(DIGITS)
        note = ("converged by the rule" if e["converged"] else "NOT converged by the rule (moved more than the seed sd)")
        if moons_w2:
            note += ("; the move is " + ("smaller" if drift <= noise else "larger") + " than the sampling noise "
                     f"of one W2 (sd {noise:.3f} between two data samples of 1000 points)")
        rows.append(dict(name=f"convergence of {name} ({e['steps']} steps), {e['metric']}: moved over the last fifth",
                         value=round(drift, 4), target=f"< seed sd {sd:.4f}", floor=None, note=note))
    return rows


def run() -> list[dict]:
    from utils.references import manifest

    return rows_for(manifest(), metric_noise())


if __name__ == "__main__":
    for r in run():
        print(r)
