"""The course website (``make site``): ``build`` stages and builds it with Sphinx, ``widgets``
turns each widget into an animation of it on a static page."""
