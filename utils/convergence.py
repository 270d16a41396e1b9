"""Is a reference converged? The length test's stored answers, as the notebooks print them (04 to 08).

``make weights`` judges a reference by the last fifth of its steps (``utils.references``: converged when its
judged metric moved less than its seed spread there). A recipe that decays its learning rate to zero over
the run makes its largest gains in that last fifth however long it trains, so for it the rule cannot pass.
``python -m tools.bench.length_test`` asks another question of the references that fail the rule: trained
twice as long through the same code on the same seeds, does the mean final metric move less than the same
spread? Its answers are stored in ``weights/length_test.json``; this module reads them.

    from utils.convergence import length_note, length_result
    length_result("06_score_long")["converged_by_length"]   # True
    print("06_score: " + length_note("06_score"))           # "twice as long (8000 steps, ...)..."
"""
from __future__ import annotations

import json

from .references import WEIGHTS_DIR

__all__ = ["LENGTH_TEST", "length_results", "length_result", "length_note"]

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
    return (f"{longer} ({s['long_steps']} steps, same seeds): {s['long_mean']:.3g} (sd {s['long_sd']:.1g}), "
            f"the mean moved {s['moved']:+.2g}, {verdict}")
