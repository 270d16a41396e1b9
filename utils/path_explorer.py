from .widgets.paths import PathExplorer, make_path, T_END, __all__  # noqa: F401  (moved: utils.widgets)
