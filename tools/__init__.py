"""Course tooling, one package an audience (not imported by notebooks):

- ``tools.grading`` (instructors, INSTRUCTORS.md): the autograder (``grade`` and its parts),
  ``assignment`` (notebooks with chosen exercises open), ``nbgrader_export``, ``catalogue``
  (EXERCISES.md from the exercise registry).
- ``tools.site`` (the website): ``build`` (``make site``) and ``widgets`` (widgets as animations).
- ``tools.bench`` (maintainers, ``make bench``): ``run`` (calibrated notebook times, grading time)
  and the sample-quality modules ``quality_*``.
- ``tools.course`` (maintainers): ``lectures`` (lectures/ from solutions/), ``execute``,
  ``workspace`` (the student's my-work/), ``labconfig``, ``lock``, ``weights`` (the converged
  references), ``nbcells`` (exercise cells by their metadata).
"""
