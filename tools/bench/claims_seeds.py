"""Claims over seeds (part of ``make bench``): does every checked claim hold on other random streams?

A notebook's claims (:mod:`utils.claims`) are readings of the course's run. A student's correct answer that
draws its random numbers in another order trains on another stream, so a claim should hold on any stream,
or say that it reads the course's run. This sweep reruns each solution notebook with ``COURSE_SEED`` = 1 .. N
(:func:`utils.runtime.course_seed`: every seed the notebook and utils set is shifted, so training noise, data
samples, evaluation noise and references all change; 0 is the course's run, which ``make solutions`` checks
in strict mode). Each run is a copy of the notebook executed in a fresh kernel in a temporary folder, with
claims in record mode (``COURSE_CLAIMS_RECORD``): a claim the numbers do not support is noted, not raised.
The solutions are never written.

It prints, for every notebook, each claim and the seeds that support it, writes everything (with the printed
output of the cell of every claim that failed on some seed, for its numbers) to
``build/bench/claims_seeds.json``, and exits non-zero if any claim fails on any seed or a run stops.

    python -m tools.bench.claims_seeds                          # every notebook with claims, 5 seeds
    python -m tools.bench.claims_seeds --notebooks 04 --seeds 5
    python -m tools.bench.claims_seeds --notebooks 05 --seed-list 3 7
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from utils.claims import read_record, tally

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "bench" / "claims_seeds.json"
CELL_TIMEOUT = 1800  # seconds; a busy shared machine is slow
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours in a traceback
OUTPUT_CHARS = 1500  # how much of a failing claim's cell output is kept (the end: the numbers and the claim)


def notebooks_with_claims(prefixes=(), folder: Path = ROOT / "solutions") -> list[Path]:
    """Solution notebooks that make claims (in a code cell): those named by ``prefixes`` (or given as paths),
    else all of them."""
    paths = [Path(p) for p in prefixes if str(p).endswith(".ipynb") and Path(p).is_file()]
    if paths:
        return paths
    found = []
    for path in sorted(folder.glob("*.ipynb")):
        if prefixes and not any(path.name.startswith(p) for p in prefixes):
            continue
        nb = nbformat.read(path, as_version=4)
        if any(c.cell_type == "code" and re.search(r"\bclaim\(", c.source) for c in nb.cells):
            found.append(path)
    return found


@contextmanager
def _environment(**values):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _cell_text(cell) -> str:
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif o.get("output_type") in ("execute_result", "display_data"):
            parts.append(o.get("data", {}).get("text/plain", ""))
        elif o.get("output_type") == "error":
            parts.append(f"{o.get('ename')}: {o.get('evalue')}")
    return "".join(parts)


def run_notebook(path: Path, seed: int, keep: Path | None = None, timeout: int = CELL_TIMEOUT) -> dict:
    """Execute a copy of ``path`` with ``COURSE_SEED=seed`` in record mode; return what its claims did.

    {"seconds", "error" (None or one line), "claims" (the record: text, holds, index), "failed_checks"
    (lines of checks that did not pass), "outputs" ({claim text: its cell's printed output} for claims that
    did not hold), "source" (a hash of the code run: a notebook edited during a sweep shows)}.
    """
    with tempfile.TemporaryDirectory(prefix=f"claims-{path.stem[:2]}-{seed}-") as tmp:
        work = Path(tmp) / path.name
        shutil.copyfile(path, work)
        record = Path(tmp) / "claims.jsonl"
        nb = nbformat.read(work, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        source = hashlib.sha256(code.encode()).hexdigest()[:12]
        for c in nb.cells:
            if c.cell_type == "code":
                c.outputs = []
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": tmp}})
        error = None
        start = time.perf_counter()
        with _environment(COURSE_SEED=seed, COURSE_CLAIMS_RECORD=record, COURSE_CLAIMS_NOTEBOOK=path.stem,
                          COURSE_QUIET=1):
            try:
                client.execute()
            except CellExecutionError as e:
                lines = [ln for ln in ANSI.sub("", str(e)).splitlines() if ln.strip()]
                error = lines[-1][:300] if lines else type(e).__name__
            except Exception as e:  # a timeout, a dead kernel: report it, go on with the next run
                error = f"{type(e).__name__}: {str(e)[:300]}"
        seconds = time.perf_counter() - start
        claims = read_record(record)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, keep / f"{path.stem}.seed{seed}.ipynb")
    texts = [_cell_text(c) for c in nb.cells if c.cell_type == "code"]
    outputs = {}
    for r in claims:
        if not r["holds"]:
            cell = next((t for t in texts if f"✘ {r['text']}" in t), "")
            outputs[r["text"]] = cell[-OUTPUT_CHARS:]
    failed_checks = [ln for t in texts for ln in t.splitlines() if ln.startswith("✘ Exercise")]
    return {"seconds": round(seconds, 1), "error": error, "claims": claims, "failed_checks": failed_checks,
            "outputs": outputs, "source": source}


def summarise(name: str, runs: dict) -> dict:
    """{seed: run_notebook(...)} -> the notebook's entry: every claim with the seeds that support it."""
    seeds = list(runs)
    supported = tally({s: runs[s]["claims"] for s in seeds})
    claims = []
    for text, held in supported.items():
        missed = [s for s in seeds if s not in held]
        unreached = [s for s in missed if not any(r["text"] == text for r in runs[s]["claims"])]
        claims.append({"text": text, "seeds": held, "failed_on": missed, "not_reached": unreached,
                       "outputs": {str(s): runs[s]["outputs"].get(text, "(not reached)") for s in missed}})
    return {"notebook": name, "seeds": seeds, "claims": claims,
            "runs": {str(s): {k: runs[s].get(k) for k in ("seconds", "error", "failed_checks", "source")}
                     for s in seeds},
            "edited": len({runs[s].get("source") for s in seeds}) > 1,
            "ok": all(not c["failed_on"] for c in claims) and not any(runs[s]["error"] for s in seeds)}


def print_summary(entry: dict, file=None) -> None:
    file = file or sys.stdout
    seeds = entry["seeds"]
    n = len(seeds)
    times = ", ".join(f"{entry['runs'][str(s)]['seconds']:.0f}" for s in seeds)
    print(f"\n{entry['notebook']}: {len(entry['claims'])} claims over COURSE_SEED {' '.join(map(str, seeds))} "
          f"(seconds per run: {times})", file=file)
    for c in entry["claims"]:
        mark = "✔" if not c["failed_on"] else "✘"
        held = " ".join(map(str, c["seeds"])) or "none"
        failed = [s for s in c["failed_on"] if s not in c.get("not_reached", [])]
        tail = "" if not failed else f"; not by {' '.join(map(str, failed))}"
        stopped = [s for s in c.get("not_reached", []) if entry["runs"][str(s)]["error"]]
        absent = [s for s in c.get("not_reached", []) if s not in stopped]
        if stopped:
            tail += f"; not reached by {' '.join(map(str, stopped))} (the run stopped)"
        if absent:
            tail += f"; not made by {' '.join(map(str, absent))}"
        print(f"  {mark} {len(c['seeds'])}/{n}  {c['text']}  [seeds {held}{tail}]", file=file)
    if entry.get("edited"):
        print("  ! the notebook was edited during the sweep (its code differs between seeds): run it again",
              file=file)
    for s in seeds:
        run = entry["runs"][str(s)]
        if run["error"]:
            print(f"  ! COURSE_SEED={s}: the run stopped: {run['error']}", file=file)
        for line in run["failed_checks"]:
            print(f"  ! COURSE_SEED={s}: a check did not pass: {line}", file=file)


def load(path: Path = OUT) -> dict:
    """The sweep's JSON so far ({"notebooks": {name: entry}}), empty if none."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"notebooks": {}}


def save(entry: dict, path: Path = OUT) -> None:
    """Add or replace one notebook's entry in the sweep's JSON (other notebooks' entries are kept)."""
    data = load(path)
    data.setdefault("notebooks", {})[entry["notebook"]] = entry
    data["all_hold"] = all(e["ok"] for e in data["notebooks"].values())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def sweep(paths, seeds, out: Path = OUT, keep: Path | None = None, timeout: int = CELL_TIMEOUT) -> list[dict]:
    """Run every notebook on every seed (one run at a time), print and save each notebook's summary."""
    entries = []
    for path in paths:
        runs = {}
        for seed in seeds:
            print(f"  running {path.stem} with COURSE_SEED={seed}", file=sys.stderr, flush=True)
            runs[seed] = run_notebook(path, seed, keep=keep, timeout=timeout)
        entry = summarise(path.stem, runs)
        print_summary(entry)
        sys.stdout.flush()
        save(entry, out)
        entries.append(entry)
    return entries


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="rerun notebooks with claims on other seeds; count the seeds "
                                             "that support each claim")
    ap.add_argument("--notebooks", nargs="*", default=[], help="name prefixes, e.g. 04 09 (default: all)")
    ap.add_argument("--seeds", type=int, default=5, help="run COURSE_SEED = 1 .. SEEDS (default 5)")
    ap.add_argument("--seed-list", type=int, nargs="*", help="these COURSE_SEEDs instead")
    ap.add_argument("--out", type=Path, default=OUT, help=f"the JSON (default {OUT.relative_to(ROOT)})")
    ap.add_argument("--keep", type=Path, help="also save each executed copy in this folder")
    ap.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds a cell may take")
    args = ap.parse_args(argv)
    seeds = args.seed_list if args.seed_list else list(range(1, args.seeds + 1))
    if not seeds or any(s < 0 for s in seeds):
        ap.error("seeds must be whole numbers >= 0 (1 or more of them)")
    paths = notebooks_with_claims(args.notebooks)
    if not paths:
        ap.error(f"no solution notebook with claims matches {args.notebooks}")
    print(f"\nClaims over seeds: {len(paths)} notebook(s), COURSE_SEED {' '.join(map(str, seeds))} "
          "(0 is the course's run)")
    entries = sweep(paths, seeds, out=args.out, keep=args.keep, timeout=args.timeout)
    bad = [e["notebook"] for e in entries if not e["ok"]]
    n_claims = sum(len(e["claims"]) for e in entries)
    n_bad = sum(1 for e in entries for c in e["claims"] if c["failed_on"])
    print(f"\n{n_claims - n_bad} of {n_claims} claims hold on every seed; written to {args.out}")
    if bad:
        print(f"not all claims hold (or a run stopped) in: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
