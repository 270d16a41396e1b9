"""Converged references: each notebook's own recipe, trained to convergence and shipped in ``weights/``.

A notebook trains its model for seconds, so the student sees it learn. Several lessons change when
the model is trained to the end, so the notebook then loads the **same recipe** (the same code, the
same seed) trained to convergence, and shows both side by side. Loading takes milliseconds:

    from utils.references import load_reference

    flow, entry = load_reference("02_realnvp")   # the model (float64, eval mode) and its manifest entry
    entry["metrics"]["test_nll"]                  # the metrics `make weights` measured on these weights
    entry["seed_mean"], entry["seed_sd"]          # the metric over the seeds trained (its seed spread)

What is stored (``weights/``, at most ``MAX_BYTES`` = 10 MB in all, nothing downloaded at run time):

- ``weights/<name>.pt``: the model's float64 state dict, trained with the recipe's own seed;
- ``weights/manifest.json``: per name, the hash of the training code and recipe (``code_hash``), the
  steps, the seed, the wall time and the machine, the final metrics, the held-out metric along training
  (``trace``, at every fifth of the steps), the same metric for the other seeds (``seed_metrics``; every
  metric of every seed in ``seed_runs``) and
  the convergence verdict: ``converged`` is true when the metric moved less than its seed spread (the
  standard deviation over the seeds) over the last 20 % of the steps.

Retraining (what a student runs after changing a recipe; minutes, with progress and times):

    make weights                        # every registered reference
    make weights NAMES="02_realnvp"     # some of them; JOBS=2 trains two seeds at once

Registering a recipe: in the module that owns the model (not here), at import time::

    from utils.references import register_reference

    def _train(model, num_steps, generator, callback):   # the notebook's loop; batches from `generator`,
        ...                                              # callback(step + 1) after every optimiser step
    def _evaluate(model):                                # deterministic, on held-out data: a dict of
        return {"test_nll": ...}                         # floats; the first key is judged by default

    register_reference("02_realnvp", build=lambda: realnvp(2, 8, hidden=32), train=_train,
                       evaluate=_evaluate, steps=4000, seed=0, spread_seeds=(1, 2),
                       code=(realnvp, flow_nll), notebook="02", description="RealNVP of notebook 02")

- ``build()`` returns a fresh model; it is called right after ``seed_everything(seed)`` in float64.
- ``train(model, num_steps, generator, callback)`` trains in place with batches drawn from
  ``generator`` (seeded with the seed) and calls ``callback(step)`` after every step; the callback
  measures the held-out metric at the checkpoints (the global RNG state is kept across it).
- ``evaluate(model)`` returns a dict of floats on held-out data; ``metric`` names the one that
  convergence and the seed spread are judged on (lower or higher better does not matter).
- ``code``: the functions, classes or modules the recipe uses beyond ``build``, ``train`` and
  ``evaluate`` themselves. Their source (comments and docstrings stripped) and the recipe's numbers
  (steps, seed, ``params``) make the ``code_hash``; when it no longer matches the manifest,
  ``tests/test_references.py`` fails and names the stale reference, and loading warns.

The module that registers must live under ``utils/`` and contain the text ``register_reference(``:
lookups find recipes by that text, so nothing else has to list them.
"""
from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import io
import json
import math
import os
import platform
import textwrap
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from .errors import InputError
from .runtime import seed_everything

__all__ = ["Recipe", "register_reference", "registered", "recipe", "load_reference", "manifest",
           "train_reference", "code_hash", "stale", "WEIGHTS_DIR", "MANIFEST", "MAX_BYTES", "CHECKPOINTS"]

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = ROOT / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"
MAX_BYTES = 10 * 1024 * 1024  # all of weights/*.pt together
CHECKPOINTS = 5  # the held-out metric is measured at every fifth of the steps: the last two span 20 %


@dataclass
class Recipe:
    """A registered training recipe (see the module docstring)."""

    name: str
    build: Callable[[], nn.Module]
    train: Callable[[nn.Module, int, torch.Generator, Callable[[int], None]], None]
    evaluate: Callable[[nn.Module], dict]
    steps: int
    seed: int = 0
    spread_seeds: tuple[int, ...] = (1, 2)
    metric: str | None = None
    code: tuple = ()
    params: dict = field(default_factory=dict)
    notebook: str = ""
    description: str = ""
    module: str = ""


_REGISTRY: dict[str, Recipe] = {}


def register_reference(name: str, *, build, train, evaluate, steps: int, seed: int = 0,
                       spread_seeds: Sequence[int] = (1, 2), metric: str | None = None,
                       code: Sequence = (), params: dict | None = None, notebook: str = "",
                       description: str = "") -> Recipe:
    """Register a recipe under ``name`` (called at import time by the module that owns the model)."""
    if not name or any(c in name for c in "/\\ ."):
        raise InputError(f"a reference name is one word usable as a file name (e.g. '02_realnvp'), got {name!r}.")
    if int(steps) < CHECKPOINTS:
        raise InputError(f"`steps` must be at least {CHECKPOINTS}, got {steps}.")
    for label, fn in (("build", build), ("train", train), ("evaluate", evaluate)):
        if not callable(fn):
            raise InputError(f"`{label}` must be callable, got {type(fn).__name__}.")
    module = inspect.getmodule(inspect.stack()[1][0])
    rec = Recipe(name, build, train, evaluate, int(steps), int(seed), tuple(int(s) for s in spread_seeds),
                 metric, tuple(code), dict(params or {}), notebook, description,
                 module.__name__ if module is not None else "")
    _REGISTRY[name] = rec
    return rec


def _discover() -> None:
    """Import every module under utils/ that registers references (found by its text)."""
    for path in sorted((ROOT / "utils").rglob("*.py")):
        if path.name == "references.py" or "register_reference(" not in path.read_text(encoding="utf-8"):
            continue
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        importlib.import_module(name)


def registered() -> list[str]:
    """The names of every registered recipe, sorted."""
    _discover()
    return sorted(_REGISTRY)


def recipe(name: str) -> Recipe:
    """The recipe registered under ``name`` (importing its module when the manifest names it)."""
    if name not in _REGISTRY:
        entry = manifest().get(name)
        if entry and entry.get("module"):
            try:
                importlib.import_module(entry["module"])
            except ImportError:
                pass
    if name not in _REGISTRY:
        _discover()
    if name not in _REGISTRY:
        raise InputError(f"no reference named {name!r}; registered: {', '.join(sorted(_REGISTRY)) or 'none'}.")
    return _REGISTRY[name]


# ---------------------------------------------------------------- the code hash


def _normalised_source(obj) -> str:
    """The source of a function, class or module, without comments, docstrings or formatting."""
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return repr(obj)
    try:
        src = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        return repr(obj)
    try:
        tree = ast.parse(src)
    except SyntaxError:  # a lambda cut out of a longer expression: hash the text as it stands
        return src
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


def code_hash(rec: Recipe | str) -> str:
    """sha256 of the recipe's code (build, train, evaluate and ``code``) and numbers; 16 hex digits."""
    rec = recipe(rec) if isinstance(rec, str) else rec
    h = hashlib.sha256()
    for obj in (rec.build, rec.train, rec.evaluate, *rec.code):
        h.update(_normalised_source(obj).encode())
    numbers = dict(steps=rec.steps, seed=rec.seed, metric=rec.metric, params=rec.params)
    h.update(json.dumps(numbers, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- the manifest and loading


def manifest() -> dict:
    """The stored manifest (``weights/manifest.json``), name -> entry; empty when there is none."""
    if not MANIFEST.exists():
        return {}
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def stale(name: str) -> list[str]:
    """Why the stored weights of ``name`` no longer match its recipe (empty: they match)."""
    entry = manifest().get(name)
    if entry is None:
        return [f"{name}: registered but never trained (no manifest entry)"]
    why = []
    now = code_hash(name)
    if entry.get("code_hash") != now:
        why.append(f"{name}: the training code or recipe changed (hash {entry.get('code_hash')} stored, {now} now)")
    path = WEIGHTS_DIR / f"{name}.pt"
    if not path.exists():
        why.append(f"{name}: weights/{path.name} is missing")
    elif entry.get("weights_sha256") != _file_sha(path):
        why.append(f"{name}: weights/{path.name} is not the file the manifest describes")
    return why


@contextmanager
def _float64():
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)


def load_reference(name: str, device: torch.device | str | None = None) -> tuple[nn.Module, dict]:
    """The converged model of recipe ``name`` (float64, eval mode, on ``device`` when given) and its manifest
    entry: ``model, entry = load_reference(name)``; ``entry["metrics"]`` holds what ``make weights`` measured."""
    entry = manifest().get(name)
    path = WEIGHTS_DIR / f"{name}.pt"
    if entry is None or not path.exists():
        raise InputError(f"no stored weights for {name!r} (have: {', '.join(sorted(manifest())) or 'none'}); "
                         f"train them with `make weights NAMES={name}`.")
    rec = recipe(name)
    model = model_from_state(name, path.read_bytes())
    if device is not None:
        model.to(device)
    if entry.get("code_hash") != code_hash(rec):
        warnings.warn(f"the recipe of {name!r} changed since its weights were trained; "
                      f"`make weights NAMES={name}` retrains them", stacklevel=2)
    return model, entry


def model_from_state(name: str, data: bytes) -> nn.Module:
    """The model of recipe ``name`` (built in float64) given a state dict saved by ``_state_bytes``, in eval mode."""
    with _float64():
        model = recipe(name).build()
    model.load_state_dict(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))
    return model.eval()


# ---------------------------------------------------------------- training


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}, torch {torch.__version__}, one thread"


def _evaluate(rec: Recipe, model: nn.Module) -> dict:
    """Metrics of ``model``, leaving the RNGs, the grad mode and train/eval mode as they were."""
    was_training = model.training
    with torch.random.fork_rng(devices=[]), _float64():
        model.eval()
        with torch.no_grad():
            metrics = rec.evaluate(model)
    model.train(was_training)
    if not isinstance(metrics, dict) or not metrics:
        raise InputError(f"the evaluate function of {rec.name!r} must return a non-empty dict of floats.")
    return {k: float(v) for k, v in metrics.items()}


def primary_metric(rec: Recipe, metrics: dict) -> str:
    return rec.metric or next(iter(metrics))


def train_reference(name: str, seed: int | None = None, steps: int | None = None,
                    report: Callable[[str], None] | None = None) -> tuple[nn.Module, dict]:
    """Train recipe ``name`` from scratch (its seed unless ``seed`` is given), in float64 on one thread.

    Returns the model and a record: ``metrics`` (final), ``trace`` (the judged metric at every fifth of
    the steps), ``seconds`` (training wall time, checkpoints excluded), ``seed`` and ``steps``.
    ``report`` receives one progress line per checkpoint.
    """
    rec = recipe(name)
    seed = rec.seed if seed is None else int(seed)
    steps = rec.steps if steps is None else int(steps)
    checkpoints = {max(1, round(k * steps / CHECKPOINTS)) for k in range(1, CHECKPOINTS + 1)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    trace: list[list] = []
    paused = [0.0]
    try:
        with _float64():
            generator = seed_everything(seed)
            model = rec.build()
            model.train()
            start = time.perf_counter()

            def callback(step: int) -> None:
                if step in checkpoints and not any(s == step for s, _ in trace):
                    t0 = time.perf_counter()
                    elapsed = t0 - start - paused[0]
                    metrics = _evaluate(rec, model)
                    key = primary_metric(rec, metrics)
                    trace.append([step, metrics[key]])
                    paused[0] += time.perf_counter() - t0
                    if report is not None:
                        report(f"{name} seed {seed}: step {step}/{steps}, {key} {metrics[key]:.4f} "
                               f"({elapsed:.0f} s of training)")

            rec.train(model, steps, generator, callback)
            seconds = time.perf_counter() - start - paused[0]
            metrics = _evaluate(rec, model)
    finally:
        torch.set_num_threads(threads)
    if not trace or trace[-1][0] != steps:
        key = primary_metric(rec, metrics)
        trace.append([steps, metrics[key]])
    return model, dict(seed=seed, steps=steps, seconds=seconds, metrics=metrics, trace=trace)


def _state_bytes(model: nn.Module) -> bytes:
    state = {k: (v.detach().to("cpu", torch.float64) if v.is_floating_point() else v.detach().cpu())
             for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def entry_from_runs(name: str, data: bytes, main: dict, others: Sequence[dict],
                    previous: dict | None = None, trained_hash: str | None = None) -> dict:
    """The manifest entry of a trained reference: ``data``, its weights file (``_state_bytes``);
    ``main``, the record of its own seed.

    ``others``: records of the same recipe with the spread seeds; with none, the spread stored in
    ``previous`` (the old entry) is kept. ``trained_hash``: the ``code_hash`` taken before training
    (``make weights`` does): the code that trained, even if a source file was edited meanwhile (the
    source of an imported function is then read at shifted lines, and its hash would be wrong).
    """
    rec = recipe(name)
    key = primary_metric(rec, main["metrics"])
    seed_metrics = {str(main["seed"]): main["metrics"][key]}
    seed_metrics.update({str(r["seed"]): r["metrics"][key] for r in others})
    if len(seed_metrics) < 2 and previous:
        seed_metrics = {**previous.get("seed_metrics", {}), str(main["seed"]): main["metrics"][key]}
    seed_runs = {str(r["seed"]): r["metrics"] for r in [main, *others]}  # every metric of every seed
    if len(seed_runs) < 2 and previous:
        seed_runs = {**previous.get("seed_runs", {}), str(main["seed"]): main["metrics"]}
    values = list(seed_metrics.values())
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
    at_80 = [v for s, v in main["trace"] if s <= round(0.8 * main["steps"])]
    drift = abs(main["trace"][-1][1] - at_80[-1]) if at_80 else None
    entry = dict(
        module=rec.module, notebook=rec.notebook, description=rec.description,
        code_hash=trained_hash or code_hash(rec), steps=main["steps"], seed=main["seed"], params=rec.params,
        metric=key, metrics=main["metrics"], trace=main["trace"],
        seed_metrics=seed_metrics, seed_mean=mean, seed_sd=sd, seed_runs=seed_runs,
        drift_last_20pct=drift, converged=bool(sd is not None and drift is not None and drift < sd),
        wall_seconds=round(main["seconds"], 1), machine=_machine(),
        trained=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        weights_bytes=len(data), weights_sha256=hashlib.sha256(data).hexdigest()[:16],
    )
    return entry


def store(name: str, entry: dict, data: bytes) -> None:
    """Write ``weights/<name>.pt`` and its manifest entry; refuse to pass the size cap."""
    WEIGHTS_DIR.mkdir(exist_ok=True)
    others = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*.pt") if p.stem != name)
    if others + len(data) > MAX_BYTES:
        raise InputError(f"storing {name} ({len(data) / 1e6:.2f} MB) would pass the {MAX_BYTES / 2**20:.0f} MiB "
                         f"cap on weights/ (others hold {others / 1e6:.2f} MB): make the model smaller.")
    (WEIGHTS_DIR / f"{name}.pt").write_bytes(data)
    current = manifest()
    current[name] = entry
    MANIFEST.write_text(json.dumps(dict(sorted(current.items())), indent=1) + "\n", encoding="utf-8")
