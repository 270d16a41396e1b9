"""Notebook 05's three flow-matching models (OT, VP, the designed cosine path), trained to convergence.

The recipe is the notebook's own, line for line: a ``TimeMLP`` (3 x 64, SELU) built right after
``seed_everything(0)``, Adam with the constant learning rate 1e-3, batches of 256 fresh moons points
drawn from the seeded generator, one ``utils.cfm.training_step`` per batch (t ~ U[0, T_MAX)). The
notebook stops after ``LIVE_STEPS``; ``make weights`` runs the same loop for ``STEPS``, so the first
``LIVE_STEPS`` steps of a reference are the notebook's live model.

    from utils.references import load_reference
    model, entry = load_reference("05_fm_ot")    # also "05_fm_vp", "05_fm_cosine"

``w2_100`` is the exact W2 between 1000 samples (100 Euler steps from a fixed draw of the noise) and
1000 fixed moons points. The judged metric, ``w2_100_mean8``, is the mean of that W2 over 8 other fixed
draws (``utils.metrics.w2_draws``): the same quantity with about sqrt(8) less sampling noise. ``test_cfm_loss`` is the CFM loss on 20000 fixed
held-out triples (x0, x1, t).
"""
from __future__ import annotations

import math

import torch

from .cfm import T_MAX, cfm_loss, training_step
from .datasets import moons
from .metrics import precision_recall, w2, w2_draws
from .models import TimeMLP, time_features
from .paths import GaussianPath, OTPath, SchedulePath, VPPath
from .solvers import solve_ode

LIVE_STEPS = 1000  # what notebook 05 trains live
STEPS = 12000
RECIPE = dict(batch_size=256, lr=1e-3, sigma_min=0.0, beta_min=0.1, beta_max=20.0)


def cosine_schedule(t: torch.Tensor, sigma_min: float = 0.0):
    """Exercise 5.7's path: a_t = sin(pi t / 2), sigma_t = sigma_min + (1 - sigma_min) cos(pi t / 2)."""
    c = math.pi / 2
    a, da = torch.sin(c * t), c * torch.cos(c * t)
    sigma = sigma_min + (1 - sigma_min) * torch.cos(c * t)
    dsigma = -(1 - sigma_min) * c * torch.sin(c * t)
    return a, sigma, da, dsigma


def fm_path(name: str) -> GaussianPath:
    """The path of recipe ``name``: "ot", "vp" or "cosine", with notebook 05's parameters."""
    if name == "ot":
        return OTPath(sigma_min=RECIPE["sigma_min"])
    if name == "vp":
        return VPPath(beta_min=RECIPE["beta_min"], beta_max=RECIPE["beta_max"])
    if name == "cosine":
        return SchedulePath(lambda t: cosine_schedule(t, RECIPE["sigma_min"]), name="yours")
    raise ValueError(f"unknown path {name!r}")


def train_moons_fm(model: torch.nn.Module, path: GaussianPath, num_steps: int, generator: torch.Generator,
                   callback=None) -> list[float]:
    """Notebook 05's loop: Adam (constant rate), fresh moons batches from ``generator``."""
    optimizer = torch.optim.Adam(model.parameters(), lr=RECIPE["lr"])
    losses = []
    for step in range(num_steps):
        losses.append(training_step(model, optimizer, path, moons(RECIPE["batch_size"], generator), generator))
        if callback is not None:
            callback(step + 1)
    return losses


def evaluate_moons_fm(model: torch.nn.Module, path: GaussianPath) -> dict:
    """Deterministic scores: W2 and precision/recall at 100 Euler steps, the held-out CFM loss."""
    x0 = torch.randn(1000, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    ref = moons(1000, seed=1001).double()
    with torch.no_grad():
        x = solve_ode(model, x0, 0.0, 1.0, num_steps=100, method="euler").x
        g = torch.Generator().manual_seed(3)
        t = torch.rand(20000, generator=g, dtype=torch.float64) * T_MAX
        x1 = moons(20000, g).double()
        loss = cfm_loss(model, path, torch.randn(20000, 2, generator=g, dtype=torch.float64), x1, t).item()
    precision, recall = precision_recall(x, ref)
    judged = w2_draws(lambda z: solve_ode(model, z, 0.0, 1.0, num_steps=100, method="euler").x, moons)
    return {"w2_100": w2(x, ref), "test_cfm_loss": loss, "precision_100": precision, "recall_100": recall,
            "w2_100_mean8": judged}


def _register() -> None:
    from . import cfm, datasets, metrics, paths, solvers
    from .references import register_reference

    code = (TimeMLP, time_features, training_step, cfm_loss, cfm.T_MAX, train_moons_fm, evaluate_moons_fm,
            fm_path, cosine_schedule, datasets.moons, paths.GaussianPath, paths.OTPath, paths.VPPath,
            paths.SchedulePath, metrics.w2, metrics.w2_draws, metrics.precision_recall, solvers.solve_ode)
    labels = {"ot": "the OT path (sigma_min = 0)", "vp": "the VP path (beta 0.1 to 20)",
              "cosine": "exercise 5.7's cosine path (sigma_min = 0)"}
    for key, label in labels.items():
        register_reference(
            f"05_fm_{key}", build=TimeMLP,
            train=lambda m, n, g, cb, key=key: train_moons_fm(m, fm_path(key), n, g, cb),
            evaluate=lambda m, key=key: evaluate_moons_fm(m, fm_path(key)), metric="w2_100_mean8", steps=STEPS,
            seed=0, spread_seeds=(1, 2), code=code, params={**RECIPE, "path": key}, notebook="05",
            description=f"notebook 05's flow-matching model on {label}: TimeMLP 3 x 64, Adam 1e-3 constant, "
                        f"batch 256 of fresh moons, t ~ U[0, T_MAX); W2 of 1000 samples at 100 Euler steps")


_register()
