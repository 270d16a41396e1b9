from .widgets.sde import SDEvsODEWidget, __all__  # noqa: F401  (moved: utils.widgets)
