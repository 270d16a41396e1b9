"""The course's helper package: ``from utils import check`` and friends.

One concept a module, each naming the notebook that teaches it:

- ``utils.checks``        exercise registry and checks, one module a notebook (00); ``checks.core``
                          runs them (registry, seeding, results), ``checks.expect`` compares answers
- ``utils.errors``        clear messages for bad input (00)
- ``utils.runtime``       device, seeds, progress bars, timing (00)
- ``utils.claims``        checked claims: a sentence about results, tested on the numbers (02 to 07)
- ``utils.references``    converged references: each notebook's recipe trained to convergence, in weights/ (02 to 09)
- ``utils.make_weights``  the loop of ``make weights``: every seed of some recipes trained, stored with its manifest entry
- ``utils.convergence``   the length test's verdicts: a reference trained twice as long, did it still move? (02 to 08)
- ``utils.plotting``      the course's colours and figure helpers (00)
- ``utils.widgets``       the interactive figures, one module a widget: push-forward (00), vector field
                          explorer (03), SDE versus ODE (04), path explorer (05), few-step (08),
                          token by token (09); ``widgets.predict``: predict, then run (00 to 09)
- ``utils.datasets``      2D toy data made on the fly: moons, 8 Gaussians, checkerboard (00)
- ``utils.changevars``    change of variables: densities of push-forwards, Jacobians (01)
- ``utils.flows``         coupling layers, flow stacks, the exact moons density (02)
- ``utils.solvers``       Euler, midpoint, RK4, dopri5, with NFE counting (03)
- ``utils.divergence``    exact and Hutchinson divergence, augmented-ODE log-likelihood (03)
- ``utils.models``        TimeMLP v(x, t) and the label-conditioned ConditionalMLP (03, 07)
- ``utils.sde``           diffusion SDEs (VP, VE) and their kernels; the diffusion/flow time mapping (04)
- ``utils.mixtures``      Gaussian mixtures and their exact scores under the diffusion kernels (04 to 07)
- ``utils.samplers``      reverse SDE (Euler-Maruyama) and probability flow samplers (04, 06)
- ``utils.score_matching`` denoising score matching: the loss, the score model, training (04, 06)
- ``utils.sampler_quality`` W2 against NFE beside its floor and do-nothing baseline (04, 06)
- ``utils.metrics``       exact 2-Wasserstein distance, its finite-sample floor, k-NN precision/recall (04 to 07)
- ``utils.paths``         Gaussian probability paths (OT, VP), conditional and exact marginal fields (05)
- ``utils.fields``        score to velocity for Gaussian paths, exact mixture fields, divergence-free
                          fields: one path, many fields (05)
- ``utils.cfm``           the conditional flow matching loss, training step and loop (05, 06)
- ``utils.couplings``     independent and minibatch-OT couplings (06)
- ``utils.showdown``      path energy and NPE, reflow pairs, quality against NFE (06)
- ``utils.digits``        8x8 digits, reference classifier, nearest-neighbour distances, grids (07)
- ``utils.guidance``      label dropout, classifier-free guidance, the guided sampler (07)
- ``utils.fewstep``       distillation, consistency, shortcut and MeanFlow models and samplers (08)
- ``utils.fewstep_digits`` the four few-step methods, class-conditional, on 07's digits (08)
- ``utils.discrete``      discrete flow matching: mixture paths over tokens, the factorised posterior,
                          the Euler CTMC sampler, guidance (09)

Converged references (``utils.references`` registers and loads them; each notebook's recipe, trained by
``make weights``): 02 and 03 in ``utils.flows`` and ``utils.divergence``, ``utils.score_references`` (04,
with the noise-level sweep), ``utils.cfm_references`` (05), ``utils.showdown_references`` (06),
``utils.digits_references`` (07), ``utils.fewstep_references`` and ``utils.fewstep_digits_references``
(08), ``utils.discrete_references`` (09, with the judge that scores generated digits).
"""
from . import plotting  # noqa: F401  (the course's figure defaults)
from .checks import check
from .claims import claim
from .runtime import get_device, progress, seed_everything, timer

__all__ = ["check", "claim", "get_device", "progress", "seed_everything", "timer"]
