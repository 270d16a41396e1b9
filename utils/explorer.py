from .widgets.explorer import VectorFieldExplorer, field_on_grid, __all__  # noqa: F401  (moved: utils.widgets)
