"""The few-step challenge (issue 22): students submit a network and a sampler; it is scored at 1, 2 and 4 NFE.

    make assignment CHALLENGE=fewstep OUT=handout        # the template and the rules (tools.grading.challenge_handout)
    make grade CHALLENGE=fewstep SUBMISSIONS=dir OUT=dir  # grades.csv, grades.json, leaderboard.csv, a printed table
    python -m tools.grading.challenge practice my_folder  # a student's own try, against a public sample

A submission is a folder with ``submission.py`` (and any weight files): ``build() -> torch.nn.Module``
and ``sample(net, z, nfe) -> x``, mapping the grader's noise batch z (N x 2, standard normal) to N
samples of the course's moons (``utils.datasets.moons``, as notebooks 06 and 08) with at most ``nfe``
evaluations of ``net``. The grader draws the reference sample and z here, from seeds the students
never get (fresh ones each run unless ``--seed`` is given); the reference never leaves this process.
Each submission runs in its own process (``tools.grading.challenge_sandbox``): CPU only, one thread,
a memory cap, a time limit for set-up, build and each budget, file access limited by an audit hook.
The network is counted there by a wrapper (rows over N), never by trusting the student.

Score: W2 to the reference (exact, float64, ``utils.metrics.w2``) at each budget, beside the floor
(two samples of the data) and the do-nothing baseline (the noise itself). A budget's score is void
(empty) when the sampler used more evaluations than allowed (``over budget``), its samples do not move
when the network's outputs do (``ignores network``), two runs with the same seeds differ (``not
reproducible``), the output is malformed (``bad output``), it raised (``error``) or ran past its
limit (``timeout``). A submission refused anything by the sandbox (``forbidden``) is void at every
budget. The leaderboard ranks by the number of void budgets, then by the mean W2 of the others.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import queue
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.grading.records import ROOT

CHALLENGES = {"fewstep": {"data": "moons", "n": 1000, "dim": 2, "nfe": (1, 2, 4)}}
MIN_SENSITIVITY = 0.05  # samples must move at least this much per unit offset of the network's outputs
REPEAT_TOLERANCE = 1e-5  # two runs under the same seeds may differ this much (float noise)
STATUS_ORDER = ("forbidden", "over budget", "ignores network", "not reproducible", "bad output", "timeout",
                "error", "ok")
MAX_COPY_BYTES = 50 * 2 ** 20


@dataclass
class ChallengeLimits:
    start: float = 180.0  # seconds for the sandbox to start (Python and torch), not the student's
    build: float = 300.0  # seconds for importing submission.py and build() (training included)
    sample: float = 60.0  # seconds for the three runs of one budget
    memory_mb: int = 4096  # address-space cap of the sandbox process
    max_params: int = 1_000_000  # parameters and buffers of the network


@dataclass
class Entry:
    student: str
    status: str = "ok"
    w2: dict = field(default_factory=dict)  # nfe -> W2 (None: void)
    statuses: dict = field(default_factory=dict)  # nfe -> status
    evaluations: dict = field(default_factory=dict)  # nfe -> evaluations counted
    sensitivity: dict = field(default_factory=dict)
    precision: dict = field(default_factory=dict)  # nfe -> k-NN precision and recall (grades.json only)
    recall: dict = field(default_factory=dict)
    seconds: float = 0.0
    notes: list = field(default_factory=list)

    def valid(self) -> list[float]:
        return [v for v in self.w2.values() if v is not None]

    def rank_key(self):
        got = self.valid()
        return (len(self.w2) - len(got), sum(got) / len(got) if got else float("inf"), self.student)


def _worst(statuses) -> str:
    return min(statuses, key=STATUS_ORDER.index) if statuses else "ok"


def discover(submissions: Path) -> list[tuple[str, Path]]:
    """(student, folder or .py file): a folder holding submission.py (at any depth) or a file ``name.py``."""
    out = []
    for p in sorted(Path(submissions).iterdir()):
        if p.is_dir():
            found = sorted(p.rglob("submission.py"), key=lambda q: len(q.parts))
            out.append((p.name, found[0].parent if found else p))
        elif p.suffix == ".py":
            out.append((p.stem, p))
    return out


def _copy(src: Path, work: Path) -> None:
    if src.is_file():
        work.mkdir(parents=True)
        shutil.copy(src, work / "submission.py")
        return
    size = sum(f.stat().st_size for f in src.rglob("*") if f.is_file())
    if size > MAX_COPY_BYTES:
        raise ValueError(f"the submission folder holds {size / 2 ** 20:.0f} MiB; the limit is "
                         f"{MAX_COPY_BYTES // 2 ** 20} MiB")
    shutil.copytree(src, work, symlinks=False, ignore=shutil.ignore_patterns("__pycache__", ".*"))


def run_submission(src: Path, z, nfe, limits: ChallengeLimits, seed: int, offset: int) -> dict:
    """Run one submission in the sandbox: {"messages": [...], "timeout": phase or None, "stderr": tail}."""
    with tempfile.TemporaryDirectory(prefix="course-challenge-") as tmp:
        work = Path(tmp) / "work"
        _copy(Path(src), work)
        if not (work / "submission.py").exists():
            return {"messages": [{"phase": "error", "where": "build", "kind": "error", "denied": [],
                                  "message": "no submission.py in the submission"}], "timeout": None, "stderr": ""}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "TMPDIR": str(work),
               "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "COURSE_QUIET": "1"}
        request = {"z": z.tolist(), "nfe": list(nfe), "seed": seed, "offset": offset,
                   "memory_mb": limits.memory_mb, "max_params": limits.max_params}
        with open(Path(tmp) / "stderr.txt", "w+b") as err:
            proc = subprocess.Popen([sys.executable, "-m", "tools.grading.challenge_sandbox"], cwd=work, env=env,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
            try:
                proc.stdin.write((json.dumps(request) + "\n").encode())
                proc.stdin.close()
            except OSError:
                pass
            got, timed_out = _read(lines, nfe, limits)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
            err.seek(max(0, err.seek(0, io.SEEK_END) - 2000))
            tail = err.read().decode(errors="replace")
    return {"messages": got, "timeout": timed_out, "stderr": tail, "returncode": proc.returncode}


def _pump(stream, lines: queue.Queue) -> None:
    for raw in iter(lambda: stream.readline(20_000_000), b""):
        try:
            lines.put(json.loads(raw))
        except ValueError:
            lines.put({"phase": "garbled"})
    lines.put(None)


def _read(lines: queue.Queue, nfe, limits: ChallengeLimits):
    """The sandbox's messages, phase by phase, each within its limit; (messages, the phase that timed out)."""
    got = []
    waits = ([("start", limits.start), ("build", limits.build)]
             + [(f"sample at {k} NFE", limits.sample) for k in nfe] + [("the end", limits.sample)])
    step = 0
    while step < len(waits):
        name, limit = waits[step]
        try:
            msg = lines.get(timeout=limit)
        except queue.Empty:
            return got, name
        if msg is None:
            return got, None
        got.append(msg)
        if msg.get("phase") == "done" or (msg.get("phase") == "error" and msg.get("where") == "build"):
            return got, None
        step += 1
    return got, None


def score(student: str, run: dict, reference, nfe) -> Entry:
    """One submission's entry: W2 and status at each budget, from the sandbox's messages."""
    import torch

    from utils.metrics import precision_recall, w2

    e = Entry(student, w2={k: None for k in nfe}, statuses={k: "error" for k in nfe})
    msgs = run["messages"]
    denied = sorted({d for m in msgs for d in m.get("denied", [])})
    by_nfe = {m["nfe"]: m for m in msgs if m.get("phase") == "sample"}
    errors = [m for m in msgs if m.get("phase") == "error"]
    for m in errors:
        where = f" ({m['line']})" if m.get("line") else ""
        e.notes.append(f"{m['where']}: {m['message']}{where}")
        if m["where"].startswith("sample at "):
            e.statuses[int(m["where"].split()[2])] = m.get("kind", "error")
    if any(m.get("phase") == "garbled" for m in msgs):
        e.notes.append("the sandbox wrote something that is not the grader's protocol")
    for k in nfe:
        m = by_nfe.get(k)
        if m is None:
            if run["timeout"] and (run["timeout"] in ("start", "build") or run["timeout"] == f"sample at {k} NFE"
                                   or not any(x.startswith(f"sample at {k} ") for x in e.notes)):
                e.statuses[k] = "timeout"
            continue
        e.evaluations[k], e.sensitivity[k] = m["evaluations"], m["sensitivity"]
        e.seconds += m["seconds"]
        if m.get("uncounted"):
            e.statuses[k] = "over budget"
            e.notes.append(f"{k} NFE: {m['uncounted']} network call(s) around the counter")
        elif m["evaluations"] > k + 1e-9:
            e.statuses[k] = "over budget"
            e.notes.append(f"{k} NFE: the network was evaluated {m['evaluations']:g} times ({m['calls']} calls)")
        elif m["repeat_change"] > REPEAT_TOLERANCE:
            e.statuses[k] = "not reproducible"
            e.notes.append(f"{k} NFE: two runs under the same seeds differ by up to {m['repeat_change']:.2g}: "
                           "draw randomness from torch's generators only")
        elif m["sensitivity"] < MIN_SENSITIVITY:
            e.statuses[k] = "ignores network"
            e.notes.append(f"{k} NFE: the samples moved {m['sensitivity']:.2g} per unit offset of the network's "
                           "outputs: they do not come from the network")
        else:
            e.statuses[k] = "ok"
            x = torch.tensor(m["x"], dtype=torch.float64)
            e.w2[k] = w2(x, reference)
            e.precision[k], e.recall[k] = precision_recall(x, reference)
    if run["timeout"]:
        e.notes.append(f"{run['timeout']}: ran past its time limit and was stopped")
    elif not any(m.get("phase") in ("done", "error") for m in msgs[-1:]):
        e.notes.append(f"the submission's process ended before it finished (exit status {run.get('returncode')})")
    if denied:
        e.statuses = {k: "forbidden" for k in nfe}
        e.notes.insert(0, "refused by the sandbox: " + "; ".join(denied[:5]))
    for k in nfe:
        if e.statuses[k] != "ok":
            e.w2[k] = None
    e.status = _worst(list(e.statuses.values()))
    if e.status != "ok" and run.get("stderr") and not denied:
        e.notes.append("last output: " + " ".join(run["stderr"].split())[-300:])
    return e


def _seeds(seed: int | None) -> dict:
    """The run's seeds, all from one master seed (a fresh secret one unless ``seed`` is given)."""
    master = secrets.randbits(62) if seed is None else int(seed)
    rng = random.Random(master)
    return {"master": master, **{k: rng.randrange(2 ** 31) for k in ("reference", "z", "floor", "run", "offset")}}


def grade_challenge(submissions: Path, out: Path, name: str = "fewstep", seed: int | None = None,
                    limits: ChallengeLimits | None = None, jobs: int | None = None, log=print) -> list[Entry]:
    """Grade every submission; write grades.csv, grades.json, leaderboard.csv; print the leaderboard."""
    import torch

    from utils import datasets
    from utils.metrics import w2, w2_floor_stats

    spec, limits = CHALLENGES[name], limits or ChallengeLimits()
    seeds = _seeds(seed)
    sampler = getattr(datasets, spec["data"])
    reference = sampler(spec["n"], seeds["reference"]).double()  # stays in this process
    z = torch.randn(spec["n"], spec["dim"], generator=torch.Generator().manual_seed(seeds["z"]))
    floor, spread = w2_floor_stats(lambda n, s: sampler(n, s).double(), spec["n"], pairs=8, seed=seeds["floor"])
    baseline = w2(z.double(), reference)
    subs = discover(Path(submissions))
    log(f"{name}: {len(subs)} submission(s), W2 at {', '.join(map(str, spec['nfe']))} NFE against {spec['n']} "
        f"{spec['data']} points (floor {floor:.3f} +- {spread:.3f}, do-nothing baseline {baseline:.3f})")

    def one(item):
        student, src = item
        t0 = time.monotonic()
        try:
            run = run_submission(src, z, spec["nfe"], limits, seeds["run"], seeds["offset"])
            e = score(student, run, reference, spec["nfe"])
        except Exception as err:  # never lose a student to a grader bug
            e = Entry(student, "error", {k: None for k in spec["nfe"]}, {k: "error" for k in spec["nfe"]},
                      notes=[f"grading error: {type(err).__name__}: {err}"])
        log(f"graded {student}: {e.status} ({time.monotonic() - t0:.0f} s)")
        return e

    with ThreadPoolExecutor(max_workers=max(1, jobs or os.cpu_count() or 1)) as pool:
        entries = list(pool.map(one, subs))
    meta = {"challenge": name, **spec, "floor": floor, "floor_sd": spread, "baseline": baseline,
            "seed": seeds["master"], "seed_given": seed is not None, "limits": asdict(limits)}
    write_results(Path(out), entries, meta)
    log(leaderboard_text(entries, meta))
    return entries


def _fmt(v) -> str:
    return "" if v is None else f"{v:.4f}"


def write_results(out: Path, entries: list[Entry], meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    nfe = meta["nfe"]
    with open(out / "grades.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "status", *[f"w2_{k}nfe" for k in nfe], "evaluations", "notes"])
        for e in sorted(entries, key=lambda e: e.student):
            w.writerow([e.student, e.status, *[_fmt(e.w2.get(k)) for k in nfe],
                        "/".join(f"{e.evaluations[k]:g}" if k in e.evaluations else "-" for k in nfe),
                        " | ".join(e.notes)])
    with open(out / "leaderboard.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rank", "student", "status", *[f"w2_{k}nfe" for k in nfe], "mean_w2"])
        for r, e in enumerate(sorted(entries, key=Entry.rank_key), 1):
            got = e.valid()
            w.writerow([r, e.student, e.status, *[_fmt(e.w2.get(k)) for k in nfe],
                        _fmt(sum(got) / len(got) if got else None)])
        w.writerow(["", "(floor: two samples of the data)", "", *[_fmt(meta["floor"])] * len(nfe), _fmt(meta["floor"])])
        w.writerow(["", "(baseline: the noise itself)", "", *[_fmt(meta["baseline"])] * len(nfe),
                    _fmt(meta["baseline"])])
    (out / "grades.json").write_text(json.dumps({"challenge": meta, "entries": [asdict(e) for e in entries]},
                                                indent=1) + "\n")


def leaderboard_text(entries: list[Entry], meta: dict) -> str:
    nfe = meta["nfe"]
    head = f"{'rank':>4}  {'student':<20} {'status':<16}" + "".join(f"{f'W2 {k} NFE':>10}" for k in nfe)
    rows = [head, "-" * len(head)]
    for r, e in enumerate(sorted(entries, key=Entry.rank_key), 1):
        rows.append(f"{r:>4}  {e.student[:20]:<20} {e.status:<16}"
                    + "".join(f"{_fmt(e.w2.get(k)) or '-':>10}" for k in nfe))
    rows.append(f"{'':>4}  {'floor (data vs data)':<20} {'':<16}" + f"{meta['floor']:>10.4f}" * len(nfe))
    rows.append(f"{'':>4}  {'baseline (noise)':<20} {'':<16}" + f"{meta['baseline']:>10.4f}" * len(nfe))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from tools.grading.challenge_handout import write_handout

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("assignment", help="write the challenge's template and rules")
    a.add_argument("--out", required=True, type=Path)
    g = sub.add_parser("grade", help="grade a folder of submissions")
    g.add_argument("submissions", type=Path)
    g.add_argument("out", type=Path)
    g.add_argument("--seed", type=int, default=None, help="fix the secret seeds (default: fresh ones)")
    g.add_argument("--jobs", type=int, default=None, help="submissions run at once (default: one a core)")
    p = sub.add_parser("practice", help="try one submission against a public sample (not the graded one)")
    p.add_argument("folder", type=Path)
    for q in (a, g, p):
        q.add_argument("--challenge", default="fewstep", choices=sorted(CHALLENGES))
    for q in (g, p):
        for k, v in asdict(ChallengeLimits()).items():
            q.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    args = ap.parse_args(argv)
    if args.cmd == "assignment":
        print(write_handout(args.out, args.challenge))
        return 0
    limits = ChallengeLimits(**{k: getattr(args, k) for k in asdict(ChallengeLimits())})
    if args.cmd == "grade":
        if not args.submissions.is_dir():
            print(f"error: {args.submissions} is not a folder", file=sys.stderr)
            return 2
        grade_challenge(args.submissions, args.out, args.challenge, args.seed, limits, args.jobs)
        print(f"wrote {args.out / 'grades.csv'}, {args.out / 'leaderboard.csv'} and {args.out / 'grades.json'}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "subs").mkdir()
        os.symlink(args.folder.resolve(), Path(tmp) / "subs" / args.folder.resolve().name)
        grade_challenge(Path(tmp) / "subs", Path(tmp) / "out", args.challenge, 0, limits, 1)
        print("\n".join(f"note: {n}" for n in
                        json.loads((Path(tmp) / "out" / "grades.json").read_text())["entries"][0]["notes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
