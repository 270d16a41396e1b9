"""Maintaining the course: ``lectures`` (lectures/ from solutions/), ``execute`` (a notebook top to
bottom in a clean kernel), ``workspace`` (the student's my-work/), ``labconfig`` (a quiet JupyterLab),
``lock`` (the pins), ``weights`` (the converged references), ``nbcells`` (exercise cells by metadata)."""
