"""``make bench`` (``python -m tools.bench.run``): calibrated notebook times, grading time, and the
sample-quality modules ``quality_*`` (each a ``run()`` that trains at full length over seeds)."""
