"""Course tooling for instructors and maintainers (not imported by notebooks).

- ``tools.lectures``: generate ``lectures/`` from ``solutions/``.
- ``tools.execute``: execute notebooks top to bottom in a clean kernel.
- ``tools.bench``: time every notebook.
- ``tools.lock``: pin requirements.txt and environment.yml.
- ``tools.catalogue``: EXERCISES.md from the exercise registry.
- ``tools.assignment``: student notebooks with only chosen exercises open.
- ``tools.grading.grade``: the autograder (official checks, a kernel per submission).
- ``tools.nbgrader_export``: an nbgrader course from ``solutions/``.
- ``tools.nbcells``: finding exercise cells by their metadata.
- ``tools.quality_*``: sample-quality benchmarks run by ``tools.bench``.
"""
