"""Interactive figures built on ipywidgets, one module a widget, all on one rendering path.

- ``utils.widgets.base``         :class:`FigureWidget`: controls above a figure updated in place,
                                 redraws serialised and coalesced (every widget below uses it)
- ``utils.widgets.pushforward``  :class:`PushForwardWidget`, z ~ N(0, 1) pushed through a map (00)
- ``utils.widgets.explorer``     :class:`VectorFieldExplorer`, a field, its flow and density (03 to 06)
- ``utils.widgets.sde``          :class:`SDEvsODEWidget`, reverse SDE and probability flow ODE (04)
- ``utils.widgets.paths``        :class:`PathExplorer`, Gaussian probability paths of a data set (05)
- ``utils.widgets.fewstep``      :class:`FewStepWidget`, few-step samplers side by side as the NFE moves (08)
- ``utils.widgets.discrete``     :class:`TokenByTokenWidget`, digits written token by token by a CTMC (09)
- ``utils.widgets.predict``      :class:`Predict` and :func:`reveal`: predict, then run (every notebook)

Tests set a control's ``value`` and read ``fig`` (the artists) and ``image.value`` (the PNG bytes).
"""
from .base import FigureWidget
from .discrete import TokenByTokenWidget
from .explorer import VectorFieldExplorer, field_on_grid
from .fewstep import FewStepWidget
from .paths import PathExplorer, make_path
from .predict import Predict, reveal
from .pushforward import PUSHFORWARD_MAPS, PushForwardWidget
from .sde import SDEvsODEWidget

__all__ = ["FigureWidget", "PushForwardWidget", "PUSHFORWARD_MAPS", "VectorFieldExplorer", "field_on_grid",
           "SDEvsODEWidget", "PathExplorer", "make_path", "Predict", "reveal", "FewStepWidget",
           "TokenByTokenWidget"]
