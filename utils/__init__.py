"""The course's helper package: ``from utils import check`` and friends.

One concept a module, each naming the notebook that teaches it:

- ``utils.checks``      exercise registry and checks (00)
- ``utils.errors``      clear messages for bad input (00)
- ``utils.runtime``     device, seeds, progress bars, timing (00)
- ``utils.plotting``    the course's colours and figure helpers (00)
- ``utils.widgets``     interactive figures: the push-forward widget (00)
- ``utils.changevars``  change of variables: densities of push-forwards, Jacobians (01)
"""
from .checks import check
from .runtime import get_device, progress, seed_everything, timer

__all__ = ["check", "get_device", "progress", "seed_everything", "timer"]
