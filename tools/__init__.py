"""Course tooling for instructors and maintainers (not imported by notebooks).

- ``tools.lectures``: generate ``lectures/`` from ``solutions/``.
- ``tools.execute``: execute notebooks top to bottom in a clean kernel.
- ``tools.bench``: time every notebook.
- ``tools.lock``: pin requirements.txt and environment.yml.
"""
