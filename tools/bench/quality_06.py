"""Notebook 06 over seeds: the showdown as mean ± sd, and how many seeds support each of its verdicts

Notebook 06 runs its showdown once, with SEED = 0, and prints its readings as checked claims. This module
reruns the whole solution notebook with other seeds (the training seed of every model, the noise batch,
the reference points and the reverse SDE's noise change together) in a fresh kernel each, with
COURSE_CLAIMS_RECORD set so that a claim the numbers do not support is noted (✘) instead of stopping the
run. It reports the printed showdown table (W2 at each NFE) as mean ± sd over the seeds, the NFE at which
each sampler reaches the goal per seed, and for every claim of the notebook the seeds that support it.
The notebook's text is the course's: a claim that fails on some seed is named here, with the count.

Then issue 19's quality goal on the converged references (``converged_rows``, from ``weights/manifest.json``):
each showdown model's W2 at 100 NFE over the seeds ``make weights`` trained (mean ± sd) against 1.3 x the
floor, and its precision at 100 NFE against 0.9 x the data's own; beside them (``capacity_rows``, from
``weights/06_capacity.json``) what the same OT-CFM recipe reaches with larger networks, and what the data
itself and a memorising field score on the same metric.
"""
from __future__ import annotations

import json
import math
import os
import re
import statistics
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "solutions" / "06_couplings_showdown.ipynb"
SEED_LINE = re.compile(r"^SEED = 0\b", re.M)
SEEDS = (0, 1, 2)
NAME_WIDTH = 20  # the sampler column of the printed table
GOAL_W2_RATIO, GOAL_PRECISION = 1.3, 0.9  # issue 19: converged models at 100 NFE


def run_with_seed(seed: int, path: Path = NOTEBOOK) -> tuple[str, list[dict]]:
    """Execute the notebook with SEED = seed; return its text output and its recorded claims."""
    nb = nbformat.read(path, as_version=4)
    setup = [c for c in nb.cells if c.cell_type == "code" and SEED_LINE.search(c.source)]
    if len(setup) != 1:
        raise RuntimeError(f"{path.name} must set `SEED = 0` in exactly one code cell (found {len(setup)}).")
    setup[0].source = SEED_LINE.sub(f"SEED = {seed}", setup[0].source)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "claims.jsonl"
        saved = {k: os.environ.get(k) for k in ("COURSE_CLAIMS_RECORD", "COURSE_QUIET")}
        os.environ.update(COURSE_CLAIMS_RECORD=str(log), COURSE_QUIET="1")
        try:
            NotebookClient(nb, timeout=900, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        claims = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.get("output_type") == "stream")
    return text, claims


def parse_showdown(text: str) -> dict:
    """The showdown's printed numbers (its first table: the live models): goal, tolerance, floor,
    baseline, NFE list and each sampler's row."""
    head = re.search(r"floor ([\d.]+) \(sd ([\d.]+)\), baseline \(untouched noise\) ([\d.]+);\s*goal: reverse SDE "
                     r"at 1000 steps ([\d.]+); reached means W2 <= [\d.]+ \+ ([\d.]+)", text)
    header = re.search(r"^sampler +1 .*$", text, re.M)
    if head is None or header is None:
        raise RuntimeError("notebook 06 no longer prints its showdown in the form this module reads.")
    nfe = [int(c) for c in header.group(0).split("reaches")[0].split() if c.isdigit()]
    rows = {}
    for line in text[header.end():].lstrip("\n").splitlines():
        if not line.strip():
            break
        name, cells = line[:NAME_WIDTH].strip(), line[NAME_WIDTH:].split()
        try:
            w2 = [math.inf if c.startswith(">") else float(c) for c in cells[:len(nfe)]]
            reach = cells[len(nfe)]
        except (ValueError, IndexError):  # the next cell's output follows the table's last row
            break
        rows[name] = dict(w2=w2, reach=None if reach.startswith(">") else int(reach))
    floor, sd, baseline, goal, tol = (float(g) for g in head.groups())
    return dict(floor=floor, sd=sd, baseline=baseline, goal=goal, tol=tol, nfe=nfe, rows=rows)


def _ms(values, digits: int = 2) -> str:
    values = list(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {sd:.{digits}f}"


def summarise(runs: dict[int, tuple[dict, list[dict]]]) -> list[dict]:
    """Bench rows from {seed: (parsed showdown, claims)}."""
    seeds = sorted(runs)
    shows = [runs[s][0] for s in seeds]
    n = len(seeds)
    rows = [dict(name=f"06 showdown over {n} seeds {seeds}: reverse SDE at 1000 steps (the goal)",
                 value=_ms(s["goal"] for s in shows), target=None, floor=_ms(s["floor"] for s in shows),
                 note=f"do-nothing baseline (untouched noise) {_ms(s['baseline'] for s in shows)}; tolerance (2 sd of the floor) "
                      f"{_ms(s['tol'] for s in shows)}; the notebook's recipe (one for every model)")]
    nfe = shows[0]["nfe"]
    for name in shows[0]["rows"]:
        per_nfe = " / ".join(f"{k}: {_ms(s['rows'][name]['w2'][i] for s in shows)}" for i, k in enumerate(nfe))
        reach = ["> " + str(nfe[-1]) if s["rows"][name]["reach"] is None else s["rows"][name]["reach"] for s in shows]
        rows.append(dict(name=f"06 showdown: {name}, W2 at NFE", value=per_nfe, target=None, floor=None,
                         note=f"reaches the goal at NFE {reach} (seeds {seeds})"))
    texts = list(dict.fromkeys(c["text"] for s in seeds for c in runs[s][1]))
    for text in texts:
        held = [s for s in seeds if any(c["text"] == text and c["holds"] for c in runs[s][1])]
        failed = [s for s in seeds if s not in held]
        rows.append(dict(name=f"06 claim: {text}", value=f"{len(held)} of {n} seeds", target="all",
                         floor=None, note="" if not failed else f"not supported with SEED = {failed}"))
    return rows


def converged_rows(floor: float, data_precision: float | None = None) -> list[dict]:
    """Issue 19's quality goal on the converged references (``weights/manifest.json``): W2 at 100 NFE
    within ``GOAL_W2_RATIO`` x the floor over the seeds ``make weights`` trained (mean ± sd; the notebook's
    draw of 1000 points, ``w2_100``), and precision at 100 NFE at least ``GOAL_PRECISION`` of the data's own
    (mean over the same seeds: ``seed_runs``, every metric of every seed). Then the long showdown: the same
    five recipes trained 16 x the showdown's steps each (``LONG_NAMES``): what training length alone reaches."""
    from utils.convergence import seed_stats
    from utils.references import manifest
    from utils.showdown_references import LONG_NAMES, NAMES

    entries = manifest()
    rows = []
    for label, name in [*NAMES.items(), *((f"{k}, 16 x longer", v) for k, v in LONG_NAMES.items())]:
        e = entries.get(name)
        if e is None or not e.get("seed_runs"):
            rows.append(dict(name=f"06 converged {label}", value="not trained (make weights)" if e is None else
                             f"stored without every seed's metrics: make weights NAMES={name}", target=None,
                             floor=None, note=""))
            continue
        stats, seeds = seed_stats(name, e), sorted(e["seed_runs"], key=int)
        vals, mean = stats["w2_100"]["values"], stats["w2_100"]["mean"]
        met = mean <= GOAL_W2_RATIO * floor
        ps = stats["precision_100"]["values"] if "precision_100" in stats else []
        p = stats["precision_100"]["mean"] if ps else None
        p_note = "" if p is None else f"; precision at 100 NFE {_ms(ps)} (seeds {seeds})"
        if p is not None and data_precision:
            p_note += (f" against {GOAL_PRECISION} x the data's {data_precision:.2f}: "
                       + ("met" if p >= GOAL_PRECISION * data_precision else "NOT met"))
        rows.append(dict(name=f"06 converged {label} ({e['steps']} steps): W2 at 100 NFE over seeds "
                              f"{seeds}", value=_ms(vals), target=f"<= {GOAL_W2_RATIO} x floor "
                              f"= {GOAL_W2_RATIO * floor:.2f}", floor=floor,
                         note=("met" if met else "NOT met") + f" ({mean / floor:.2f} x the floor)" + p_note
                              + ("" if e.get("converged") else "; NOT converged by the manifest's test")))
    return rows


CAPACITY = ROOT / "weights" / "06_capacity.json"  # tools/bench/capacity_06.py


def capacity_rows(path: Path = CAPACITY) -> list[dict]:
    """Beside the goal: what notebook 06's OT-CFM recipe reaches at the course's size and larger, and what
    the data itself, its sigma-blurred copy (a perfect model of the recipe) and a memorising field score
    (``weights/06_capacity.json``, read, not retrained: ``nice -n 10 python -m tools.bench.capacity_06``)."""
    if not path.exists():
        return [dict(name="06 capacity", value="not measured (python -m tools.bench.capacity_06)", target=None,
                     floor=None, note="")]
    data = json.loads(path.read_text(encoding="utf-8"))
    goal, rows = data["goal"], []
    for group in ("results", "references"):
        for name, r in data[group].items():
            c = r["cells"]
            n = len(c["w2_100"]["seeds"])
            what = (f"OT-CFM {name} ({r['steps']} steps), over {n} seeds" if group == "results"
                    else f"{name} ({n} samples, no training)")
            note = (("met" if r["meets_w2"] else "NOT met") + f" ({r['w2_ratio']:.2f} x the floor); precision "
                    f"{_ms(c['precision_100']['seeds'])} ({r['precision_ratio']:.2f} x the data's): "
                    + ("met" if r["meets_precision"] else "NOT met")
                    + f"; recall {_ms(c['recall_100']['seeds'])}")
            if group == "results" and not r["converged"]:
                note += "; NOT converged (last fifth moves W2 more than its seed spread)"
            rows.append(dict(name=f"06 capacity: {what}: W2 at 100 NFE", value=_ms(c["w2_100"]["seeds"]),
                             target=f"<= {goal['w2_ratio']} x floor = {goal['w2_max']:.2f}",
                             floor=round(data["floor"], 3), note=note))
    return rows


def run(seeds=SEEDS) -> list[dict]:
    runs = {}
    for seed in seeds:
        text, claims = run_with_seed(seed)
        runs[seed] = (parse_showdown(text), claims)
    from tools.bench.capacity_06 import scale

    floor, _, data_precision = scale()  # in float64, the notebook's floor and data precision with SEED = 0
    return summarise(runs) + converged_rows(floor, data_precision) + capacity_rows()


if __name__ == "__main__":
    import sys
    import time

    start = time.perf_counter()
    chosen = tuple(int(a) for a in sys.argv[1:]) or SEEDS
    for r in run(chosen):
        print(f"{r['name']}: {r['value']}" + (f" (floor {r['floor']})" if r["floor"] else "")
              + (f"; {r['note']}" if r["note"] else ""))
    print(f"took {time.perf_counter() - start:.0f} s")
