"""What students get for the few-step challenge (``make assignment CHALLENGE=fewstep OUT=dir``).

``write_handout(out)`` writes ``submission.py`` (a working baseline to improve: OT-CFM trained by
``python submission.py``, sampled by Euler steps), ``README.md`` (the contract, the limits, the
score and what is refused) and ``challenge.json`` (the settings and the grading command).
"""
from __future__ import annotations

import json
from pathlib import Path

TEMPLATE = '''"""My few-step challenge submission: the course's moons in 1, 2 and 4 network evaluations.

The grader imports this file, calls build() once, then sample(net, z, nfe) for nfe = 1, 2, 4 with a
batch z of standard normal noise (N x 2). `net` is your network wrapped by the grader: call it as you
would call your module, on a batch of points (first argument, shape (B, 2)); each call counts B / N
network evaluations, and more than `nfe` voids the score at that budget. Everything outside the
network (arithmetic, your own time grid) is free. Try it with
    python -m tools.grading.challenge practice <this folder>

This baseline is OT-CFM (notebook 06) sampled by `nfe` Euler steps. Beat it: reflow, distillation,
consistency, shortcut or MeanFlow models (notebook 08), a better time grid, ... The samplers of
utils.fewstep take the wrapped net as it is, e.g. `return meanflow_sampler(net)(z, nfe)`.
"""
from pathlib import Path

import torch

from utils.models import TimeMLP

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "weights.pt"


def build() -> torch.nn.Module:
    """The network, ready to sample (loaded from weights in this folder; no training here)."""
    net = TimeMLP()
    net.load_state_dict(torch.load(WEIGHTS, weights_only=True))
    return net.eval()


@torch.no_grad()
def sample(net, z: torch.Tensor, nfe: int) -> torch.Tensor:
    """Map the noise z (N x 2) to N samples with at most `nfe` calls of `net` on a batch of N points."""
    x, dt = z, 1.0 / nfe
    for k in range(nfe):
        x = x + dt * net(x, torch.full((x.shape[0],), k * dt, dtype=x.dtype))
    return x


def train(steps: int = 2000, seed: int = 0) -> None:
    """Train the network and save its weights next to this file (run before submitting)."""
    from utils.cfm import train_cfm
    from utils.datasets import moons

    model, _ = train_cfm(moons, coupling="ot", num_steps=steps, seed=seed)
    torch.save(model.state_dict(), WEIGHTS)


if __name__ == "__main__":
    train()
'''

README = """# The few-step challenge

Generate the course's two moons (`utils.datasets.moons`, as in notebooks 06 and 08) from noise in
**1, 2 and 4 network evaluations (NFE)**. Submit a folder with `submission.py` (start from the one
here) and any weight files it loads:

- `build() -> torch.nn.Module`: your network, built and loaded (weights from files in your folder;
  training here is allowed within the build time limit, but train offline: `python submission.py`);
- `sample(net, z, nfe) -> x`: maps the grader's noise `z` ({n} x {dim}, standard normal, float32) to a
  tensor of the same shape, with at most `nfe` evaluations of `net`.

## How it is scored

- Your samples are compared with a reference sample of the moons that you never see (drawn in the
  grader from a secret seed), by the exact 2-Wasserstein distance W2 (lower is better), at 1, 2 and
  4 NFE. The leaderboard shows beside them the **floor** (W2 between two samples of the data: the
  best an exact sampler scores on average) and the **baseline** (the noise itself, doing nothing).
- Ranking: fewest void budgets first, then the lowest mean W2 over the budgets.
- Try yours against a public sample (not the graded one): `python -m tools.grading.challenge practice <folder>`.

## The rules the grader enforces

- **NFE are counted by the grader.** `net` is your module wrapped in a counter: each call on B points
  counts B / N evaluations (its first argument must be the points, shape (B, 2)). Calling it on two
  stacked copies of z counts 2; calls under `torch.vmap` are refused. Over the budget: score void
  (`over budget`).
- **The samples must come from the network.** The grader runs your sampler again with the network's
  outputs moved by a fixed random offset; samples that do not move are void (`ignores network`).
  Drawing the data (`utils.datasets`, `sklearn.datasets`) while sampling is refused.
- **Reproducible:** the sampler runs twice under the same torch seed and must give the same samples
  (draw randomness from torch's generators only), else `not reproducible`.
- **Output:** a finite tensor of z's shape, else `bad output`.
- **Sandbox:** your code runs in its own process, CPU only, one thread, {memory_mb} MiB of memory,
  at most {max_params} parameters and buffers in the network; {build:g} s for import and `build()`,
  {sample:g} s for each budget (three runs). It may read only its own folder, Python's installation
  and the course's `utils/`; no subprocesses, sockets or ctypes. Anything refused voids the whole
  submission (`forbidden`); running past a limit gives `timeout`.
- What the counter cannot see (work hidden inside your network's forward, such as an ODE solver
  inside `forward`) is against the spirit of the challenge: instructors read the code of the top entries.
"""


def write_handout(out: Path, name: str = "fewstep") -> str:
    """Write the challenge's template, rules and settings to ``out``; return a line saying so."""
    from tools.grading.challenge import CHALLENGES, ChallengeLimits
    from dataclasses import asdict

    spec, limits = CHALLENGES[name], asdict(ChallengeLimits())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "submission.py").write_text(TEMPLATE)
    (out / "README.md").write_text(README.format(**spec, **limits))
    (out / "challenge.json").write_text(json.dumps(
        {"challenge": name, **spec, "limits": limits,
         "grade": f"make grade CHALLENGE={name} SUBMISSIONS=<folder> OUT=<folder>"}, indent=1) + "\n")
    return (f"wrote submission.py, README.md and challenge.json to {out}: the {name} challenge "
            f"(W2 at {', '.join(map(str, spec['nfe']))} NFE on {spec['data']})")
