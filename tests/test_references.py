"""The converged references (utils.references, weights/): fresh, reproducible, small.

- stale weights: a stored checkpoint whose training code or recipe changed fails, naming it;
- the loaded weights reproduce the metrics the manifest stores;
- weights/ stays under its size cap, and loading takes milliseconds;
- the mechanism itself, on a tiny recipe registered here (hash, training, convergence, storing).
"""
from __future__ import annotations

import json
import time

import pytest
import torch

from utils import make_weights, references
from utils.errors import InputError

NAMES = references.registered()
STORED = sorted(references.manifest())


def test_every_registered_reference_is_trained_and_fresh():
    problems = [why for name in NAMES for why in references.stale(name)]
    assert not problems, ("stale converged references; retrain with `make weights NAMES=...`:\n  "
                          + "\n  ".join(problems))


def test_every_stored_reference_is_registered():
    orphans = [name for name in STORED if name not in NAMES]
    assert not orphans, f"weights/manifest.json lists references no module registers: {orphans}"


@pytest.mark.parametrize("name", STORED)
def test_loaded_weights_reproduce_the_manifest(name):
    model, entry = references.load_reference(name)
    metrics = references._evaluate(references.recipe(name), model)
    for key, stored in entry["metrics"].items():
        assert metrics[key] == pytest.approx(stored, rel=1e-6, abs=1e-8), (
            f"{name}: {key} of the loaded weights is {metrics[key]!r}, the manifest says {stored!r}")


@pytest.mark.parametrize("name", STORED)
def test_manifest_entry_is_complete(name):
    entry = references.manifest()[name]
    for key in ("code_hash", "steps", "seed", "wall_seconds", "machine", "metrics", "trace", "seed_metrics",
                "seed_sd", "converged", "module"):
        assert key in entry, f"{name}: the manifest entry lacks {key!r}"
    assert entry["trace"][-1][0] == entry["steps"]
    assert len(entry["seed_metrics"]) >= 3, f"{name}: the seed spread needs at least 3 seeds"


def test_weights_stay_under_the_cap_and_are_float64():
    paths = list(references.WEIGHTS_DIR.glob("*.pt"))
    total = sum(p.stat().st_size for p in paths)
    assert total <= references.MAX_BYTES, f"weights/ holds {total / 1e6:.1f} MB, over the 10 MiB cap"
    for p in paths:
        state = torch.load(p, weights_only=True)
        floats = [k for k, v in state.items() if v.is_floating_point() and v.dtype != torch.float64]
        assert not floats, f"{p.name}: tensors not in float64: {floats}"


@pytest.mark.parametrize("name", STORED)
def test_loading_takes_milliseconds(name):
    references.load_reference(name)  # the recipe's module is imported once
    start = time.perf_counter()
    references.load_reference(name)
    assert time.perf_counter() - start < 0.5


# ---------------------------------------------------------------- the mechanism, on a tiny recipe


def _tiny_build():
    return torch.nn.Linear(2, 1)


def _tiny_train(model, num_steps, generator, callback):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(num_steps):
        x = torch.randn(64, 2, generator=generator)
        loss = ((model(x)[:, 0] - x.sum(1)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        callback(step + 1)


def _tiny_evaluate(model):
    x = torch.linspace(-1, 1, 20)[:, None].repeat(1, 2)
    return {"mse": ((model(x)[:, 0] - x.sum(1)) ** 2).mean().item()}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setattr(references, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(references, "MANIFEST", tmp_path / "manifest.json")
    rec = references.register_reference("test_tiny", build=_tiny_build, train=_tiny_train,
                                        evaluate=_tiny_evaluate, steps=50, seed=0, spread_seeds=(1, 2))
    yield rec
    references._REGISTRY.pop("test_tiny", None)


def _make(name):
    model, main = references.train_reference(name)
    others = [references.train_reference(name, seed=s)[1] for s in references.recipe(name).spread_seeds]
    data = references._state_bytes(model)
    references.store(name, references.entry_from_runs(name, data, main, others), data)
    return main


def test_training_is_deterministic_and_the_checkpoints_do_not_change_it(tiny):
    a = references.train_reference("test_tiny")[1]
    b = references.train_reference("test_tiny")[1]
    assert a["metrics"] == b["metrics"] and [s for s, _ in a["trace"]] == [10, 20, 30, 40, 50]
    c = references.train_reference("test_tiny", seed=1)[1]
    assert c["metrics"] != a["metrics"]


def test_store_load_and_reproduce(tiny):
    main = _make("test_tiny")
    model, entry = references.load_reference("test_tiny")
    assert next(model.parameters()).dtype == torch.float64
    assert entry["metrics"] == main["metrics"] and entry["converged"] in (True, False)
    assert set(entry["seed_metrics"]) == {"0", "1", "2"} and entry["seed_sd"] > 0
    assert references._evaluate(tiny, model) == pytest.approx(entry["metrics"], rel=1e-12)
    assert references.stale("test_tiny") == []


def test_a_changed_recipe_makes_the_weights_stale_and_names_them(tiny):
    _make("test_tiny")
    tiny.steps = 60  # the recipe changed under the stored checkpoint
    why = references.stale("test_tiny")
    assert why and "test_tiny" in why[0] and "changed" in why[0]
    with pytest.warns(UserWarning, match="test_tiny"):
        references.load_reference("test_tiny")
    tiny.steps = 50
    tiny.train = _tiny_evaluate  # other code, same numbers
    assert references.stale("test_tiny")


def test_code_hash_ignores_comments_and_docstrings():
    def f(x):
        """a docstring"""
        return x + 1  # a comment

    def g(x):
        return x + 1

    def h(x):
        return x + 2

    norm = references._normalised_source
    assert norm(f).replace("'f'", "'g'") == norm(g) != norm(h).replace("'h'", "'g'")


def test_a_replaced_weights_file_is_stale(tiny):
    _make("test_tiny")
    path = references.WEIGHTS_DIR / "test_tiny.pt"
    state = torch.load(path, weights_only=True)
    state["bias"] = state["bias"] + 1
    torch.save(state, path)
    assert any("not the file" in w for w in references.stale("test_tiny"))


def test_the_size_cap_is_enforced(tiny, monkeypatch):
    monkeypatch.setattr(references, "MAX_BYTES", 100)
    with pytest.raises(InputError, match="cap"):
        _make("test_tiny")


def test_clear_messages():
    with pytest.raises(InputError, match="no reference named"):
        references.recipe("no_such_reference")
    with pytest.raises(InputError, match="make weights"):
        references.load_reference("no_such_reference")
    with pytest.raises(InputError, match="file name"):
        references.register_reference("a b", build=_tiny_build, train=_tiny_train, evaluate=_tiny_evaluate, steps=10)


def test_manifest_is_valid_json():
    if references.MANIFEST.exists():
        json.loads(references.MANIFEST.read_text())


def test_train_and_store_is_make_weights_and_keeps_every_seeds_weights(tiny):
    out = make_weights.train_and_store(["test_tiny"], jobs=1, report=lambda line: None)["test_tiny"]
    main = _make("test_tiny")  # the same runs, by hand: the same entry (but for the time it took)
    entry = references.manifest()["test_tiny"]
    assert out["entry"]["metrics"] == main["metrics"] == entry["metrics"]
    assert out["entry"]["seed_metrics"] == entry["seed_metrics"] and set(entry["seed_runs"]) == {"0", "1", "2"}
    assert sorted(out["states"]) == [0, 1, 2]
    for seed, data in out["states"].items():  # every seed's weights give that seed's metrics
        model = references.model_from_state("test_tiny", data)
        assert next(model.parameters()).dtype == torch.float64 and not model.training
        assert references._evaluate(tiny, model) == pytest.approx(entry["seed_runs"][str(seed)], rel=1e-12)
    line = make_weights.verdict_line("test_tiny", entry)
    assert line.startswith("== test_tiny: 50 steps") and ("NOT converged" in line) != entry["converged"]
